"""Each class of failure is retried in one layer only: what the contact-centre client already
retried in place, a task does not retry again; what the client does not retry, the task does."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from recovery.contact_center.errors import (
    AuthenticationFailed,
    PermanentContactCenterError,
    TransientContactCenterError,
)
from tasks.retry import is_transient, retried_by_client


def gave_up_after_transport_error() -> TransientContactCenterError:
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as exc:
            raise TransientContactCenterError("add 50 contacts: request failed") from exc
    except TransientContactCenterError as error:
        return error


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_what_the_client_retried_in_place_the_task_does_not(status: int) -> None:
    error = TransientContactCenterError("gave up", status=status)
    assert retried_by_client(error)
    assert not is_transient(error)


def test_a_connection_the_client_gave_up_on_is_not_retried_again() -> None:
    error = gave_up_after_transport_error()
    assert retried_by_client(error) and not is_transient(error)


@pytest.mark.parametrize("status", [500, 501, 505])
def test_a_server_error_the_client_does_not_retry_the_task_does(status: int) -> None:
    error = TransientContactCenterError("HTTP error", status=status)
    assert not retried_by_client(error)
    assert is_transient(error)


def test_an_answer_that_leaves_out_contacts_is_retried_by_the_task() -> None:
    assert is_transient(TransientContactCenterError("2 of 50 contacts missing from the answer"))


def test_store_failures_are_retried_by_the_task() -> None:
    assert is_transient(OperationalError("insert", {}, Exception("database is locked")))


@pytest.mark.parametrize(
    "error",
    [
        PermanentContactCenterError("bad request", status=400),
        AuthenticationFailed("login refused", status=401),
        ValueError("bad data"),
    ],
)
def test_refusals_and_bad_data_are_never_retried(error: Exception) -> None:
    assert not is_transient(error)
