"""``recovery cases``: inspect cases; resolve or close the ones a person must act on."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail, print_json, runtime

cases_app = typer.Typer(
    help="Inspect recovery cases; resolve or close the ones a person must act on.",
    no_args_is_help=True,
)
app.add_typer(cases_app, name="cases")

KEY_HELP = "gateway:business_key, or the business key alone."


@cases_app.command("list")
def cases_list(
    status: str = typer.Option(None, help="A status (open, needs_contact_info, ...) or outcome."),
    limit: int = typer.Option(100, min=1, max=100_000),
    json_output: bool = typer.Option(False, "--json", help="One JSON array."),
    reveal: bool = typer.Option(False, help="Show phone numbers in full."),
) -> None:
    """List cases, oldest first."""
    from recovery.services.cases import list_summaries
    from recovery.views.cases import print_case_table

    built = runtime()
    try:
        rows = list_summaries(sessions=built.sessions, status=status, limit=limit, reveal=reveal)
    finally:
        built.close()
    if json_output:
        print_json(rows)
    else:
        print_case_table(rows)


@cases_app.command("show")
def cases_show(
    key: str = typer.Argument(..., help=KEY_HELP),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
    reveal: bool = typer.Option(False, help="Show the phone number in full."),
) -> None:
    """One case and its whole history (every decision, with reasons), and the address of its
    event timeline in the Prefect UI (when PREFECT_API_URL is set)."""
    from recovery.services.cases import UnknownCase, detail_of
    from recovery.views.cases import print_case_detail

    built = runtime()
    try:
        detail = detail_of(
            sessions=built.sessions,
            key=key,
            reveal=reveal,
            prefect_api_url=built.settings.prefect_api_url,
        )
    except UnknownCase as exc:
        fail(str(exc), FAILED)
    finally:
        built.close()
    if json_output:
        print_json(detail)
    else:
        print_case_detail(detail)


@cases_app.command("resolve")
def cases_resolve(
    key: str = typer.Argument(..., help=KEY_HELP),
    note: str = typer.Option(
        ..., help="Who resolved the review and why (kept in the history, card numbers redacted)."
    ),
    clear: list[str] | None = typer.Option(  # noqa: B008
        None,
        help="Empty this field before the release (repeatable): amount, currency or "
        "customer_name, for a value the contact centre refused.",
    ),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Release a case parked for review: a note in its history, the review flag cleared, and
    the case due now so that the next advance run decides it again."""
    from recovery.services.review import (
        CaseActionRefused,
        UnknownCase,
        check_clearable,
        note_or_refuse,
        resolve,
    )

    fields = list(clear or ())
    try:
        check_clearable(fields)
        note_or_refuse(note, "resolved the review")
    except ValueError as exc:
        fail(str(exc))
    built = runtime()
    try:
        resolved = resolve(
            sessions=built.sessions, key=key, note=note, clear=fields, now=built.clock.now()
        )
    except (UnknownCase, CaseActionRefused) as exc:
        fail(str(exc), FAILED)
    finally:
        built.close()
    if json_output:
        print_json(
            {
                "key": resolved.key,
                "action": "resolved",
                "status": resolved.status,
                "next_due_at": resolved.next_due_at.isoformat(),
                "cleared": list(resolved.cleared),
            }
        )
        return
    if resolved.status == "closed":
        typer.echo(f"resolved the review of {resolved.key}: it stays closed")
        return
    cleared = f", cleared {', '.join(resolved.cleared)}" if resolved.cleared else ""
    typer.echo(
        f"resolved the review of {resolved.key}{cleared}: {resolved.status}, due at "
        f"{resolved.next_due_at.isoformat()} for the next advance run to decide"
    )


# What each outcome a person may set means (recovery.store.review.MANUAL_OUTCOMES).
_MANUAL_OUTCOMES_HELP = {
    "recovered": "the customer paid another way",
    "disputed": "the customer disputes the charge",
    "unreachable": "no number reaches the customer",
}


@cases_app.command("close")
def cases_close(
    key: str = typer.Argument(..., help=KEY_HELP),
    outcome: str = typer.Option(
        ...,
        help="; ".join(f"{name}: {meaning}" for name, meaning in _MANUAL_OUTCOMES_HELP.items())
        + ". (A customer who asks not to be called: `recovery suppress add`.)",
    ),
    note: str = typer.Option(
        ..., help="Who closed it and why (kept in the history, card numbers redacted)."
    ),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Close a case by hand. A contact still queued at the contact centre is first removed
    from its contact list; if the contact centre cannot be reached, nothing changes."""
    import uuid

    from recovery.domain.models import Outcome
    from recovery.event_feed import send_case_events
    from recovery.services.review import (
        MANUAL_OUTCOMES,
        CaseActionRefused,
        ContactCenterUnavailable,
        UnknownCase,
        close_by_hand,
        note_or_refuse,
    )

    allowed = {o.value: o for o in MANUAL_OUTCOMES}
    if outcome not in allowed:
        fail(f"--outcome {outcome!r}: a person closes a case as {', '.join(allowed)}")
    try:
        note_or_refuse(note, "closed the case")
    except ValueError as exc:
        fail(str(exc))
    built = runtime()
    now = built.clock.now()
    try:
        closed = close_by_hand(
            sessions=built.sessions,
            contact_center=built.interactive_contact_center,
            key=key,
            outcome=Outcome(outcome),
            note=note,
            now=now,
            hold_until=now + built.real_seconds(built.settings.lease_seconds),
            owner=f"person-{uuid.uuid4().hex[:12]}",
        )
    except (UnknownCase, CaseActionRefused, ContactCenterUnavailable) as exc:
        fail(str(exc), FAILED)
    finally:
        built.close()
    send_case_events(built.settings.prefect_api_url, closed.events)
    if json_output:
        print_json(closed.as_dict())
        return
    removed, gone = closed.removed_from_contact_list, closed.not_on_contact_list
    parts = [f"{removed} queued contact(s) removed from the contact list"] if removed else []
    parts += [f"{gone} queued contact(s) not on the contact list (any more)"] if gone else []
    contacts = ", ".join(parts) or "no contact was queued"
    typer.echo(f"closed {closed.key} as {closed.outcome}: {contacts}")
