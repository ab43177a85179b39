"""Errors of the contact-centre client.

Messages never carry card data, and phone numbers in them are masked to their last four digits,
so an error can be logged or stored as it is.
"""

from __future__ import annotations


class ContactCenterError(Exception):
    """Any failure talking to the contact centre."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class TransientContactCenterError(ContactCenterError):
    """Retriable: rate limited for too long, 5xx, connection error or timeout.

    Nothing is lost: every contact carries a deterministic id, so sending it again upserts.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PermanentContactCenterError(ContactCenterError):
    """Not retriable as it is: the request itself is wrong (4xx other than 401/429)."""


class AuthenticationFailed(PermanentContactCenterError):
    """The login host refused the client credentials, or a fresh token was refused too."""


class ContactRejected(PermanentContactCenterError):
    """The contact centre refused one contact; the reason is the service's own message."""

    def __init__(
        self,
        contact_id: str,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
    ):
        super().__init__(f"contact {contact_id} rejected: {reason}", status=status, code=code)
        self.contact_id = contact_id
        self.reason = reason


class CardDataRefused(Exception):
    """A value bound for the contact centre looks like a card number; it is never sent.

    Deliberately not a ``ValueError``: pydantic would fold it into a ``ValidationError``, and a
    caller must be able to tell card data apart from an ordinary bad value.
    """

    def __init__(self, field: str):
        super().__init__(f"{field} looks like a card number; refused")
        self.field = field
