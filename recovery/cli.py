"""The ``recovery`` command: operators' and scripts' entry point to every part of the system.

Exit codes: 0 when the command did what it was asked, 1 when it failed at run time,
2 for bad arguments or bad input (with a message on stderr saying which).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from sqlalchemy.orm import Session, sessionmaker

from recovery.runtime import Runtime
from recovery.settings import Settings

if TYPE_CHECKING:
    from recovery.contact_center.client import GenesysClient
    from recovery.domain.models import Outcome

app = typer.Typer(
    name="recovery",
    help="Payment recovery: failed payments to lawful, well-timed contact-centre calls.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    app()


# --- foundation commands ---

db_app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)
cases_app = typer.Typer(
    help="Inspect recovery cases; resolve or close the ones a person must act on.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(cases_app, name="cases")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(str(e["msg"]) for e in exc.errors()))


def _runtime(*, check_schema: bool = True) -> Runtime:
    from recovery.logging import install_log_scrubbing
    from recovery.store.migrate import SchemaNotReady

    install_log_scrubbing()
    runtime = Runtime(_settings())
    if check_schema:
        try:
            runtime.require_schema()
        except SchemaNotReady as exc:
            _fail(str(exc), 1)
    return runtime


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the store's tables to the latest revision (safe to run again)."""
    from recovery.store.migrate import current_revision, redact_url, upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(
        f"store {redact_url(settings.database_url)} at revision "
        f"{current_revision(settings.database_url)}"
    )


@db_app.command("current")
def db_current() -> None:
    """Print the store's revision and the revision this code needs."""
    from recovery.store.migrate import current_revision, head_revision, redact_url

    settings = _settings()
    current, head = current_revision(settings.database_url), head_revision(settings.database_url)
    typer.echo(f"{redact_url(settings.database_url)}: {current or 'none'} (code needs {head})")
    if current != head:
        raise typer.Exit(1)


@app.command("api")
def api(
    host: str = typer.Option(None, help="Bind address (default RECOVERY_API_HOST)."),
    port: int = typer.Option(None, help="Port (default RECOVERY_API_PORT)."),
    trigger: bool = typer.Option(
        True, help="Start the ingest deployment after each delivery (needs PREFECT_API_URL)."
    ),
) -> None:
    """Run the receiver (gateway webhooks, disposition callbacks, health)."""
    import uvicorn

    from recovery.api.server import build_receiver

    runtime = _runtime()
    app_, stop = build_receiver(runtime, trigger=trigger)
    try:
        uvicorn.run(
            app_,
            host=host or runtime.settings.api_host,
            port=port or runtime.settings.api_port,
            log_level="info",
            access_log=False,
        )
    finally:
        stop()
        runtime.close()


@app.command("ingest")
def ingest_command(
    batch_size: int = typer.Option(
        None, min=1, help="Rows per batch (RECOVERY_INGEST_BATCH_SIZE)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Drain the inbox into cases now, in this process (the ingest deployment does the same)."""
    import json

    from recovery.ingest import drain

    runtime = _runtime()
    summary = drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=batch_size or runtime.settings.ingest_batch_size,
        lookup=runtime.customer_lookup(),
    )
    runtime.close()
    if json_output:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        results = ", ".join(f"{k} {v}" for k, v in sorted(summary.results.items())) or "nothing"
        typer.echo(f"ingested {summary.rows} inbox rows in {summary.batches} batches: {results}")


@cases_app.command("list")
def cases_list(
    status: str = typer.Option(None, help="A status (open, needs_contact_info, ...) or outcome."),
    limit: int = typer.Option(100, min=1, max=100_000),
    json_output: bool = typer.Option(False, "--json", help="One JSON array."),
    reveal: bool = typer.Option(False, help="Show phone numbers in full."),
) -> None:
    """List cases, oldest first."""
    from recovery.inspect import case_summary, print_case_table
    from recovery.store.cases import list_cases

    runtime = _runtime()
    with runtime.sessions() as session:
        rows = [
            case_summary(c, reveal=reveal)
            for c in list_cases(session=session, status=status, limit=limit)
        ]
    runtime.close()
    if json_output:
        import json

        typer.echo(json.dumps(rows, default=str))
    else:
        print_case_table(rows)


@cases_app.command("show")
def cases_show(
    key: str = typer.Argument(..., help="gateway:business_key, or the business key alone."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
    reveal: bool = typer.Option(False, help="Show the phone number in full."),
) -> None:
    """One case and its whole history (every decision, with reasons)."""
    from recovery.inspect import case_detail, print_case_detail
    from recovery.store.cases import find_case

    runtime = _runtime()
    with runtime.sessions() as session:
        case = find_case(session=session, key=key)
        if case is None:
            runtime.close()
            _fail(f"no case {key!r} (use gateway:business_key when ambiguous)", 1)
        detail = case_detail(session, case, reveal=reveal)
    runtime.close()
    if json_output:
        import json

        typer.echo(json.dumps(detail, default=str))
    else:
        print_case_detail(detail)


def _unknown_case(key: str) -> NoReturn:
    _fail(f"no case {key!r} (use gateway:business_key when ambiguous)", 1)


@cases_app.command("resolve")
def cases_resolve(
    key: str = typer.Argument(..., help="gateway:business_key, or the business key alone."),
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
    import json

    from recovery.store.cases import (
        CLEARABLE_FIELDS,
        CaseActionRefused,
        find_case_for_update,
        person_note,
        resolve_review,
    )
    from recovery.store.db import transaction

    fields = list(clear or ())
    unknown = [name for name in fields if name not in CLEARABLE_FIELDS]
    if unknown:
        _fail(
            f"cannot clear {', '.join(repr(n) for n in unknown)}: --clear takes "
            + ", ".join(CLEARABLE_FIELDS)
        )
    if not person_note(note):
        _fail("--note is empty: say who resolved the review and why")
    runtime = _runtime()
    try:
        with transaction(runtime.sessions) as session:
            case = find_case_for_update(session=session, key=key)
            if case is None:
                _unknown_case(key)
            resolved = resolve_review(
                session=session, case=case, note=note, clear=fields, now=runtime.clock.now()
            )
    except CaseActionRefused as exc:
        _fail(str(exc), 1)
    finally:
        runtime.close()
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "key": resolved.key,
                    "action": "resolved",
                    "status": resolved.status,
                    "next_due_at": resolved.next_due_at.isoformat(),
                    "cleared": list(resolved.cleared),
                }
            )
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


# What each outcome a person may set means (recovery.store.cases.MANUAL_OUTCOMES).
_MANUAL_OUTCOMES_HELP = {
    "recovered": "the customer paid another way",
    "disputed": "the customer disputes the charge",
    "unreachable": "no number reaches the customer",
}


@cases_app.command("close")
def cases_close(
    key: str = typer.Argument(..., help="gateway:business_key, or the business key alone."),
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
    import json

    from recovery.domain.models import Outcome
    from recovery.store.cases import MANUAL_OUTCOMES, person_note

    allowed = {o.value: o for o in MANUAL_OUTCOMES}
    if outcome not in allowed:
        _fail(f"--outcome {outcome!r}: a person closes a case as {', '.join(allowed)}")
    if not person_note(note):
        _fail("--note is empty: say who closed the case and why")
    runtime = _runtime()
    try:
        closed = _close_by_hand(runtime, key, Outcome(outcome), note)
    finally:
        runtime.close()
    if json_output:
        typer.echo(json.dumps(closed))
        return
    removed, gone = closed["removed_from_contact_list"], closed["not_on_contact_list"]
    parts = [f"{removed} queued contact(s) removed from the contact list"] if removed else []
    parts += [f"{gone} queued contact(s) not on the contact list (any more)"] if gone else []
    contacts = ", ".join(parts) or "no contact was queued"
    typer.echo(f"closed {closed['key']} as {closed['outcome']}: {contacts}")


def _close_by_hand(runtime: Runtime, key: str, outcome: Outcome, note: str) -> dict[str, Any]:
    """Hold the case (as a worker's lease would), remove its queued contacts from the contact
    centre with the close-on-payment code, then close it; on a contact-centre failure the
    hold is given back and nothing is recorded."""
    import uuid
    from collections import Counter

    from recovery.contact_center.errors import ContactCenterError
    from recovery.reconcile import remove_closed
    from recovery.store.cases import (
        CaseActionRefused,
        close_by_hand,
        find_case_for_update,
        hold_for_closing,
        release_hold,
    )
    from recovery.store.db import transaction

    now = runtime.clock.now()
    owner = f"person-{uuid.uuid4().hex[:12]}"
    try:
        with transaction(runtime.sessions) as session:
            case = find_case_for_update(session=session, key=key)
            if case is None:
                _unknown_case(key)
            hold = hold_for_closing(
                session=session,
                case=case,
                owner=owner,
                now=now,
                until=now + runtime.real_seconds(runtime.settings.lease_seconds),
            )
    except CaseActionRefused as exc:
        _fail(str(exc), 1)
    counts: Counter[str] = Counter()
    withdrawn: dict[int, bool] = {}
    if hold.contacts:
        client = _interactive_contact_center(runtime)
        try:
            for contact in hold.contacts:
                if contact.state == "created":
                    # Removed and recorded (contact_removed) as when a payment closes a case.
                    counts += remove_closed(
                        sessions=runtime.sessions,
                        client=client,
                        contacts=[(contact.row_id, contact.contact_list_id, contact.contact_id)],
                        now=now,
                    )
                else:
                    # Planned, perhaps sent before a crash: recorded as withdrawn on closing.
                    found = client.remove_contact(contact.contact_list_id, contact.contact_id)
                    withdrawn[contact.row_id] = found
                    counts["removed" if found else "already_gone"] += 1
        except ContactCenterError as exc:
            with transaction(runtime.sessions) as session:
                release_hold(session=session, hold=hold)
            done = sum(counts.values())
            what = (
                "nothing changed"
                if done == 0
                else f"{done} of its {len(hold.contacts)} queued contacts were removed"
            )
            _fail(
                f"the contact centre could not remove the queued contact of {hold.key} "
                f"({exc}): {what}, the case is not closed; try again",
                1,
            )
        except BaseException:
            with transaction(runtime.sessions) as session:
                release_hold(session=session, hold=hold)
            raise
        finally:
            client.close()
    try:
        with transaction(runtime.sessions) as session:
            close_by_hand(
                session=session,
                hold=hold,
                outcome=outcome,
                note=note,
                now=now,
                withdrawn=withdrawn,
            )
    except CaseActionRefused as exc:
        with transaction(runtime.sessions) as session:
            release_hold(session=session, hold=hold)
        _fail(str(exc), 1)
    return {
        "key": hold.key,
        "action": "closed",
        "outcome": outcome.value,
        "removed_from_contact_list": counts["removed"],
        "not_on_contact_list": counts["already_gone"],
    }


def _interactive_contact_center(runtime: Runtime) -> GenesysClient:
    from recovery.contact_center.throttle import RetryPolicy

    client = runtime.contact_center()
    # A person is waiting: give up within seconds rather than the minute a flow's task may
    # wait; they are told that nothing changed and run the command again.
    client.retry = RetryPolicy(server_error_backoff=(1.0, 2.0), max_retry_after=10.0)
    return client


prefect_app = typer.Typer(help="Prefect set-up for the flows.", no_args_is_help=True)
app.add_typer(prefect_app, name="prefect")


@prefect_app.command("setup")
def prefect_setup(
    work_pool: bool = typer.Option(True, help="Also create the process work pool 'recovery'."),
) -> None:
    """Create the contact-centre rate limit (strict, from the settings) and the work pool."""
    from flows.ops import setup

    for line in setup(_settings(), work_pool=work_pool):
        typer.echo(line)


@app.command("serve")
def serve_command(
    prefect_port: int = typer.Option(4200, help="Port of the local Prefect server."),
    emulator: bool = typer.Option(
        None, help="Run the Genesys emulator (default: when no real region is configured)."
    ),
    emulator_port: int = typer.Option(8900, help="Port of the emulator."),
    scenario: str = typer.Option("mixed", help="The emulator's call-outcome scenario."),
    dial_interval: float = typer.Option(5.0, min=0, help="Seconds between the emulator's dials."),
) -> None:
    """Run everything on this machine: Prefect (unless PREFECT_API_URL is set), the flows with
    their schedules, the emulator and the receiver. Ctrl-C stops it all."""
    import os

    from recovery.serve import run_embedded

    settings = _settings()
    with_emulator = emulator if emulator is not None else settings.genesys_region == "emulator"
    try:
        run_embedded(
            settings,
            env=dict(os.environ),
            prefect_port=prefect_port,
            with_emulator=with_emulator,
            emulator_port=emulator_port,
            scenario=scenario,
            dial_interval=dial_interval,
            say=typer.echo,
        )
    except RuntimeError as exc:
        _fail(str(exc), 1)


# --- compliance commands (window, suppress) ---

suppress_app = typer.Typer(help="The internal suppression list (never call).", no_args_is_help=True)
app.add_typer(suppress_app, name="suppress")


def _store(settings: Settings) -> sessionmaker[Session] | None:
    """Sessions on the store, or None when it has no suppressions table (yet).

    Creates nothing, not even an empty SQLite file: the schema is the migrations' business.
    """
    from pathlib import Path

    from sqlalchemy import inspect

    from recovery.store.db import make_engine, make_sessionmaker

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return None
    engine = make_engine(url)
    if not inspect(engine).has_table("suppressions"):
        engine.dispose()
        return None
    return make_sessionmaker(engine)


def _store_or_fail(settings: Settings) -> sessionmaker[Session]:
    sessions = _store(settings)
    if sessions is None:
        _fail("the store has no suppressions table yet: run `recovery db upgrade`", 1)
    return sessions


def _now(settings: Settings) -> datetime:
    from recovery.clock import parse_clock

    return parse_clock(settings.clock, settings.data_dir).now()


@app.command("window")
def window_command(
    phone: str = typer.Option(..., help="The number to call, E.164 (+13055550123)."),
    state: str | None = typer.Option(None, help="Billing-address state (two letters)."),
    postal_code: str | None = typer.Option(None, help="Billing-address postal code."),
    country: str = typer.Option("US", help="Billing-address country."),
    tz: str | None = typer.Option(None, help="The customer's time zone (IANA), if known."),
    at: str | None = typer.Option(None, help="The instant asked about, ISO 8601 (default: now)."),
    attempt: list[str] | None = typer.Option(None, help="An earlier dial attempt (repeatable)."),  # noqa: B008
    conversation: str | None = typer.Option(None, help="The last conversation, ISO 8601."),
    callback_at: str | None = typer.Option(None, help="A callback time the customer asked for."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """May this number be called now (or --at), and if not, when next and why."""
    from recovery.domain.compliance import RulesFileError, load_rules, permitted
    from recovery.domain.compliance.window import (
        WindowArgumentError,
        parse_instant,
        verdict_document,
        verdict_rows,
        window_contact,
        window_history,
    )
    from recovery.store.suppression import find_suppression

    settings = _settings()
    try:
        contact = window_contact(
            phone=phone, state=state, postal_code=postal_code, country=country, tz=tz
        )
        when = parse_instant(at, "--at") if at else _now(settings)
        history = window_history(
            attempts=attempt or (), conversation=conversation, callback_at=callback_at
        )
        rules = load_rules(settings.calling_rules_file, settings.calling_rules_profile)
    except (WindowArgumentError, RulesFileError) as exc:
        _fail(str(exc))
    sessions = _store(settings)
    if sessions is not None:
        with sessions() as session:
            row = find_suppression(session=session, phone_e164=phone, now=when)
            if row is not None:
                history = history.model_copy(update={"suppression": row.reason})
    verdict = permitted(contact, history, when, rules)
    if json_output:
        import json

        typer.echo(json.dumps(verdict_document(verdict)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for label, text in verdict_rows(verdict):
        table.add_row(label, text)
    Console().print(table)


@suppress_app.command("add")
def suppress_add(
    phone: str = typer.Argument(..., help="The number, E.164."),
    reason: str = typer.Option(..., help="Why: do_not_call, consent_revoked, wrong_number, ..."),
    source: str = typer.Option("operator", help="Who asked for it."),
    customer: str | None = typer.Option(None, help="Only for this customer ref (default: all)."),
    expires: str | None = typer.Option(None, help="When it lapses, ISO 8601 (default: never)."),
) -> None:
    """Suppress a number (idempotent)."""
    from recovery.domain.compliance.window import WindowArgumentError, check_phone, parse_instant
    from recovery.domain.compliance.zones import mask_phone
    from recovery.store.db import transaction
    from recovery.store.suppression import add_suppression

    settings = _settings()
    try:
        check_phone(phone)
        expires_at = parse_instant(expires, "--expires") if expires else None
    except WindowArgumentError as exc:
        _fail(str(exc))
    with transaction(_store_or_fail(settings)) as session:
        row = add_suppression(
            session=session,
            phone_e164=phone,
            reason=reason,
            source=source,
            now=_now(settings),
            scope=customer or "*",
            expires_at=expires_at,
        )
        scope, kept_reason, until = row.scope, row.reason, row.expires_at
    who = "every customer" if scope == "*" else f"customer {scope}"
    lapse = until.isoformat() if until else "never"
    typer.echo(f"suppressed {mask_phone(phone)} for {who}: {kept_reason} (expires {lapse})")


@suppress_app.command("remove")
def suppress_remove(
    phone: str = typer.Argument(..., help="The number, E.164."),
    customer: str | None = typer.Option(None, help="The customer ref of a per-customer row."),
) -> None:
    """Lift a suppression."""
    from recovery.domain.compliance.window import WindowArgumentError, check_phone
    from recovery.domain.compliance.zones import mask_phone
    from recovery.store.db import transaction
    from recovery.store.suppression import remove_suppression

    settings = _settings()
    try:
        check_phone(phone)
    except WindowArgumentError as exc:
        _fail(str(exc))
    with transaction(_store_or_fail(settings)) as session:
        removed = remove_suppression(session=session, phone_e164=phone, scope=customer or "*")
    verb = "lifted the suppression of" if removed else "no suppression to lift for"
    typer.echo(f"{verb} {mask_phone(phone)} ({customer or 'every customer'})")


@suppress_app.command("list")
def suppress_list(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON array."),
    reveal: bool = typer.Option(False, help="Show phone numbers in full."),
    all_rows: bool = typer.Option(False, "--all", help="Include expired rows."),
) -> None:
    """List suppressions (active ones unless --all), oldest first."""
    from recovery.domain.compliance.zones import mask_phone
    from recovery.store.suppression import list_suppressions

    settings = _settings()
    now = _now(settings)
    with _store_or_fail(settings)() as session:
        rows = [
            {
                "phone": r.phone_e164 if reveal else mask_phone(r.phone_e164),
                "scope": r.scope,
                "reason": r.reason,
                "source": r.source,
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "active": r.expires_at is None or r.expires_at > now,
            }
            for r in list_suppressions(session=session, now=None if all_rows else now)
        ]
    if json_output:
        import json

        typer.echo(json.dumps(rows))
        return
    for r in rows:
        who = "everyone" if r["scope"] == "*" else f"customer {r['scope']}"
        state = "" if r["active"] else " (expired)"
        typer.echo(
            f"{r['phone']}  {who}  {r['reason']}  by {r['source']}  since {r['created_at']}  "
            f"until {r['expires_at'] or 'never'}{state}"
        )
    if not rows:
        typer.echo("no suppressions")


# --- policy commands (plan) ---


@app.command("plan")
def plan_command(
    reason: str = typer.Option(
        ..., help="A failure category (insufficient_funds, ...) or a Stripe decline code."
    ),
    phone: str = typer.Option(..., help="The customer's phone, E.164 (+13055550123)."),
    state: str = typer.Option(None, help="Billing-address state (two letters)."),
    postal_code: str = typer.Option(None, help="Billing-address postal code."),
    tz: str = typer.Option(None, help="The customer's time zone (IANA name), if known."),
    failed_at: str = typer.Option(None, help="When the payment failed, ISO 8601 with offset."),
    dispositions: str = typer.Option(
        "",
        help="Call outcomes in order, e.g. no_answer,promise_to_pay:2026-12-12,"
        "callback_requested:2026-12-03T15:00:00-05:00 (then no_answer).",
    ),
    policy_file: str = typer.Option(None, "--policy", help="A policy file (default: shipped)."),
    rules_file: str = typer.Option(None, "--rules", help="A calling-rules file."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate one case end to end on a virtual clock and print its timeline."""
    from recovery.domain.simulate import PlanArgumentError, print_plan, run_plan

    try:
        plan = run_plan(
            reason=reason,
            phone=phone,
            state=state,
            postal_code=postal_code,
            tz=tz,
            failed_at=failed_at,
            dispositions=dispositions,
            policy_file=policy_file,
            rules_file=rules_file,
        )
    except PlanArgumentError as exc:
        _fail(str(exc), 2)
    except RuntimeError as exc:
        _fail(str(exc), 1)
    print_plan(plan, json_output=json_output)


# --- contact centre commands (emulator) ---


@app.command("emulator")
def emulator_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8900, help="Port to listen on."),
    client_id: str | None = typer.Option(None, help="OAuth client id (default: settings)."),
    client_secret: str | None = typer.Option(None, help="OAuth client secret (default: settings)."),
    contact_list: list[str] | None = typer.Option(  # noqa: B008
        None, help="Contact list id (repeatable)."
    ),
    dnc_list: list[str] | None = typer.Option(  # noqa: B008
        None, help="Internal DNC list id (repeatable)."
    ),
    requests_per_minute: int | None = typer.Option(
        None, min=1, help="Budget per token (default: settings)."
    ),
    callback_url: str | None = typer.Option(None, help="Where outcomes are pushed."),
    callback_secret: str | None = typer.Option(None, help="Signing secret of the pushes."),
    scenario: str = typer.Option("mixed", help="Call-outcome scenario."),
    seed: int = typer.Option(0, help="Seed of the scenario's outcomes."),
    dial_interval: float = typer.Option(5.0, min=0, help="Seconds between dials; 0: never."),
) -> None:
    """Run the Genesys Cloud emulator (login, contact lists, DNC, a dialer that pushes)."""
    from recovery.clock import parse_clock
    from recovery.contact_center.emulator.serve import config_from_settings, serve

    settings = _settings()
    try:
        config = config_from_settings(
            settings,
            client_id=client_id,
            client_secret=client_secret,
            contact_lists=contact_list,
            dnc_lists=dnc_list,
            requests_per_minute=requests_per_minute,
            callback_url=callback_url,
            callback_secret=callback_secret,
            scenario=scenario,
            seed=seed,
            dial_interval_seconds=dial_interval,
        )
        from recovery.contact_center.emulator.scenarios import get_scenario

        get_scenario(scenario)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(
        f"Genesys emulator on http://{host}:{port}: lists {', '.join(config.contact_lists)}, "
        f"DNC {', '.join(config.dnc_lists)}, {config.requests_per_minute} requests/min, "
        f"scenario {scenario} (seed {seed}), pushes to {config.callback_url}"
    )
    serve(config, clock=parse_clock(settings.clock, settings.data_dir), host=host, port=port)


# --- backfill and reporting commands ---


@app.command("backfill")
def backfill_command(
    file: str = typer.Argument(..., help="JSON lines of Stripe events (or pages), or a CSV."),
    since: str | None = typer.Option(None, help="Only events at or after this ISO instant."),
    until: str | None = typer.Option(None, help="Only events before this ISO instant."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Parse and report; write nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay an export through the webhook path (card-number guard, dedupe, inbox) into
    cases; a second run changes nothing."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    from sqlalchemy.exc import SQLAlchemyError

    from recovery.backfill import BackfillError, check_range, open_export, parse_bound
    from recovery.backfill import run_backfill as run

    try:
        start = parse_bound(since, "--since") if since else None
        end = parse_bound(until, "--until") if until else None
        check_range(start, end)
        export = open_export(file)
    except BackfillError as exc:
        _fail(str(exc))
    runtime = _runtime()
    columns = ("{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task(export.path.name, total=export.size or 1)
            summary = run(
                export=export,
                sessions=runtime.sessions,
                codes=runtime.failure_codes,
                clock_now=runtime.clock.now,
                since=start,
                until=end,
                dry_run=dry_run,
                lookup=runtime.customer_lookup(),
                on_progress=lambda done, _total, _summary: progress.update(task, completed=done),
                marker=runtime.settings.redaction_marker(),
            )
    except SQLAlchemyError as exc:
        _fail(f"the store failed ({type(exc).__name__}); what was recorded stays, run again", 1)
    finally:
        runtime.close()
    if json_output:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        for line in summary.lines():
            typer.echo(line)


@app.command("report")
def report_command(
    since: str | None = typer.Option(None, help="Cases whose payment failed at or after this."),
    until: str | None = typer.Option(None, help="Cases whose payment failed before this."),
    json_output: bool = typer.Option(False, "--json", help="Print every figure as one object."),
    out: str | None = typer.Option(None, help="Folder for report.md and the chart."),
) -> None:
    """Recovery figures: funnel, amounts, rates by category and disposition, compliance blocks;
    writes report.md and recoveries.png (default folder: <data dir>/reports)."""
    import json
    from pathlib import Path

    from recovery.backfill import BackfillError, check_range, parse_bound
    from recovery.report import compute_report, report_document, table_rows, write_report

    try:
        start = parse_bound(since, "--since") if since else None
        end = parse_bound(until, "--until") if until else None
        check_range(start, end)
    except BackfillError as exc:
        _fail(str(exc))
    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            report = compute_report(
                session=session, now=runtime.clock.now(), since=start, until=end
            )
    finally:
        runtime.close()
    folder = Path(out) if out else runtime.settings.data_dir / "reports"
    try:
        markdown, chart = write_report(report, folder)
    except OSError as exc:
        _fail(f"cannot write the report to {folder}: {exc.strerror or exc}", 1)
    if json_output:
        typer.echo(json.dumps(report_document(report, markdown=markdown, chart=chart)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{report.cases} cases whose payment failed in the period")
    for title, (header, rows) in table_rows(report).items():
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"report: {markdown}\nchart: {chart}")


if __name__ == "__main__":
    main()
