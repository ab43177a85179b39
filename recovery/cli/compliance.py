"""``recovery window`` and ``recovery suppress``: the calling rules asked directly, and the
internal suppression list."""

from __future__ import annotations

import typer

from recovery.cli.common import app, existing_store, fail, now, settings, store_or_fail

suppress_app = typer.Typer(help="The internal suppression list (never call).", no_args_is_help=True)
app.add_typer(suppress_app, name="suppress")


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
        window_contact,
        window_history,
    )
    from recovery.store.suppression import find_suppression
    from recovery.views.window import print_verdict, verdict_document

    config = settings()
    try:
        contact = window_contact(
            phone=phone, state=state, postal_code=postal_code, country=country, tz=tz
        )
        when = parse_instant(at, "--at") if at else now(config)
        history = window_history(
            attempts=attempt or (), conversation=conversation, callback_at=callback_at
        )
        rules = load_rules(config.calling_rules_file, config.calling_rules_profile)
    except (WindowArgumentError, RulesFileError) as exc:
        fail(str(exc))
    sessions = existing_store(config, "suppressions")
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
    print_verdict(verdict)


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

    config = settings()
    try:
        check_phone(phone)
        expires_at = parse_instant(expires, "--expires") if expires else None
    except WindowArgumentError as exc:
        fail(str(exc))
    with transaction(store_or_fail(config, "suppressions")) as session:
        row = add_suppression(
            session=session,
            phone_e164=phone,
            reason=reason,
            source=source,
            now=now(config),
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

    config = settings()
    try:
        check_phone(phone)
    except WindowArgumentError as exc:
        fail(str(exc))
    with transaction(store_or_fail(config, "suppressions")) as session:
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

    config = settings()
    at = now(config)
    with store_or_fail(config, "suppressions")() as session:
        rows = [
            {
                "phone": r.phone_e164 if reveal else mask_phone(r.phone_e164),
                "scope": r.scope,
                "reason": r.reason,
                "source": r.source,
                "created_at": r.created_at.isoformat(),
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "active": r.expires_at is None or r.expires_at > at,
            }
            for r in list_suppressions(session=session, now=None if all_rows else at)
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
