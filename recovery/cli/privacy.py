"""``recovery forget`` and ``recovery retention``: erasing personal data."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail, print_json, runtime


@app.command("forget")
def forget_command(
    customer: str | None = typer.Option(None, "--customer", help="A customer reference."),
    phone: str | None = typer.Option(None, "--phone", help="A phone number, E.164."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Erase a person's data: their cases close and lose their personal fields (replaced by
    keyed fingerprints), their contacts are deleted from the contact list, their events in the
    inbox are scrubbed, a suppression of their number is kept as a fingerprint (the number
    stays blocked), and an audit line naming no personal data is stored and logged. Exit 2 for
    bad arguments, 1 when the contact centre or a worker is in the way (nothing changed)."""
    import uuid

    from recovery.event_feed import send_case_events
    from recovery.services.privacy import (
        ContactCenterUnavailable,
        ForgetRefused,
        check_subject,
        forget,
    )
    from recovery.store.privacy import ErasureRefused

    try:
        check_subject(customer, phone)
    except ForgetRefused as exc:
        fail(str(exc))
    built = runtime()
    now = built.clock.now()
    try:
        erased = forget(
            sessions=built.sessions,
            contact_center=built.interactive_contact_center,
            fingerprint=built.settings.fingerprint(),
            now=now,
            hold_until=now + built.real_seconds(built.settings.lease_seconds),
            owner=f"person-{uuid.uuid4().hex[:12]}",
            customer_ref=customer,
            phone_e164=phone,
        )
    except (ContactCenterUnavailable, ErasureRefused) as exc:
        fail(str(exc), FAILED)
    finally:
        built.close()
    send_case_events(built.settings.prefect_api_url, erased.events)
    if json_output:
        print_json(erased.as_dict())
    else:
        typer.echo(erased.line())


@app.command("retention")
def retention_command(
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Erase now the personal fields of cases closed longer than RECOVERY_RETENTION_DAYS (the
    retention flow does the same every day)."""
    from recovery.services.privacy import purge_expired

    built = runtime()
    try:
        erased = purge_expired(
            sessions=built.sessions,
            fingerprint=built.settings.fingerprint(),
            now=built.clock.now(),
            retention_days=built.settings.retention_days,
        )
    finally:
        built.close()
    if json_output:
        print_json(erased.as_dict())
    else:
        typer.echo(erased.line())
