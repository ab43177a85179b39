"""``recovery plan``: one case simulated end to end on a virtual clock."""

from __future__ import annotations

import typer

from recovery.cli.common import BAD_INPUT, FAILED, app, fail, now, settings


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
    policy_file: str = typer.Option(
        None, "--policy", help="A policy file (default: RECOVERY_POLICY_FILE, else shipped)."
    ),
    rules_file: str = typer.Option(None, "--rules", help="A calling-rules file."),
    next_retry: str = typer.Option(
        None, help="When the gateway retries the payment by itself, ISO 8601 with offset."
    ),
    retry_in: str = typer.Option(
        None, help="Or: how long after the failure the gateway retries (3d, 36h, ...)."
    ),
    retry_outcome: str = typer.Option(
        None, help="What the gateway's retry brings: paid or failed (default: no event)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate one case end to end on a virtual clock and print its timeline."""
    from recovery.services.plan import PlanArgumentError, run_plan
    from recovery.views.plan import print_plan

    config = settings()
    try:
        plan = run_plan(
            reason=reason,
            phone=phone,
            state=state,
            postal_code=postal_code,
            tz=tz,
            failed_at=failed_at,
            dispositions=dispositions,
            policy_file=policy_file or (str(config.policy_file) if config.policy_file else None),
            rules_file=rules_file,
            next_retry=next_retry,
            retry_in=retry_in,
            retry_outcome=retry_outcome,
            failure_codes_file=str(config.failure_codes_file)
            if config.failure_codes_file
            else None,
            now=now(config),
        )
    except PlanArgumentError as exc:
        fail(str(exc), BAD_INPUT)
    except RuntimeError as exc:
        fail(str(exc), FAILED)
    print_plan(plan, json_output=json_output)
