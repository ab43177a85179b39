"""The demo's campaign: payment failures across US places and decline reasons, with
re-deliveries, payments mid-way, card numbers where none belong and invalid phones, as signed
Stripe webhooks at their virtual times."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from recovery.gateways import samples

SECRET = "whsec_demo_0123456789abcdef"

# --- the campaign ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    state: str
    postal_code: str
    area_code: str
    weight: int


# Billing addresses and phones across the US. 208 (Idaho) spans Mountain and Pacific time,
# 850 (Florida panhandle) Eastern and Central, 907 (Alaska) Alaska and Hawaii-Aleutian time;
# when the address and the phone disagree, calling must be lawful in both zones.
PLACES = (
    Place("CA", "94103", "415", 9),
    Place("CA", "90012", "213", 9),
    Place("WA", "98101", "206", 4),
    Place("OR", "97201", "503", 3),
    Place("NV", "89101", "702", 3),
    Place("AZ", "85004", "602", 4),
    Place("CO", "80202", "303", 4),
    Place("UT", "84101", "801", 3),
    Place("ID", "83702", "208", 4),
    Place("ID", "83814", "208", 3),
    Place("TX", "75201", "214", 6),
    Place("TX", "77002", "713", 6),
    Place("TX", "79901", "915", 3),
    Place("IL", "60601", "312", 5),
    Place("MN", "55401", "612", 3),
    Place("FL", "33131", "305", 6),
    Place("FL", "32501", "850", 4),
    Place("FL", "32301", "850", 3),
    Place("GA", "30303", "404", 4),
    Place("NY", "10001", "212", 7),
    Place("MA", "02108", "617", 5),
    Place("RI", "02903", "401", 4),
    Place("PA", "19103", "215", 4),
    Place("MI", "48226", "313", 3),
    Place("AK", "99501", "907", 4),
    Place("HI", "96813", "808", 2),
)

# (Stripe error code, decline code, share): a subscription business's usual mix of declines.
REASONS = (
    ("card_declined", "insufficient_funds", 28),
    ("card_declined", "generic_decline", 12),
    ("card_declined", "do_not_honor", 8),
    ("expired_card", None, 18),
    ("card_declined", "lost_card", 5),
    ("card_declined", "stolen_card", 2),
    ("incorrect_cvc", None, 3),
    ("processing_error", None, 9),
    ("authentication_required", "authentication_required", 10),
    ("card_declined", "try_again_later", 5),
)
PRICES = (900, 1500, 1999, 2900, 4900, 9900, 14900)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jon")
LAST_NAMES = ("Alvarez", "Brooks", "Chen", "Diallo", "Evans", "Fischer", "Garcia", "Hughes")
# Stripe's published test card numbers: the receiver must strip them wherever they appear.
TEST_PANS = ("4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005")


@dataclass(frozen=True)
class Delivery:
    """One webhook, posted once the virtual clock reaches ``at``."""

    at: datetime
    event: dict[str, Any]
    kind: str  # failure | redelivery | success


@dataclass
class CampaignPlan:
    deliveries: list[Delivery]
    payments: int
    paid_on_their_own: int
    paid_before_failure_arrived: int
    with_card_number: int
    invalid_phone: int


class _Where(TypedDict):
    phone: str
    state: str
    postal_code: str


@dataclass(frozen=True)
class _Payment:
    number: int
    customer: str
    name: str
    place: Place
    phone: str
    code: str
    decline: str | None
    amount: int
    failed_at: datetime

    @property
    def invoice(self) -> str:
        return f"in_demo{self.number:04d}"

    @property
    def intent(self) -> str:
        return f"pi_demo{self.number:04d}"

    def where(self) -> _Where:
        return {
            "phone": self.phone,
            "state": self.place.state,
            "postal_code": self.place.postal_code,
        }


def _failure_events(p: _Payment, shape: float) -> list[dict[str, Any]]:
    """The events Stripe sends about one failed payment, oldest first."""
    tag = f"evt_demo{p.number:04d}"
    if shape >= 0.8:
        # A one-off charge (an upgrade, an add-on): no invoice; the intent is the payment.
        return [
            samples.intent_failed(
                event_id=f"{tag}_pi",
                intent_id=p.intent,
                created=p.failed_at,
                code=p.code,
                decline_code=p.decline,
                amount=p.amount,
                customer=p.customer,
                **p.where(),
            )
        ]
    # A renewal: the payment intent (or, on older integrations, the charge) fails with the
    # decline reason, and the invoice's failure follows.
    if shape < 0.6:
        detail = samples.intent_failed(
            event_id=f"{tag}_pi",
            intent_id=p.intent,
            invoice_id=p.invoice,
            created=p.failed_at,
            code=p.code,
            decline_code=p.decline,
            amount=p.amount,
            customer=p.customer,
            **p.where(),
        )
    else:
        detail = samples.charge_event(
            event_id=f"{tag}_ch",
            charge_id=f"ch_demo{p.number:04d}",
            created=p.failed_at,
            invoice_id=p.invoice,
            intent_id=p.intent,
            failure_code=p.code,
            amount=p.amount,
            **p.where(),
        )
        detail["data"]["object"]["outcome"]["reason"] = p.decline or p.code
    invoice = samples.invoice_failed(
        event_id=f"{tag}_inv",
        invoice_id=p.invoice,
        created=p.failed_at + timedelta(seconds=2),
        customer=p.customer,
        amount_due=p.amount,
        name=p.name,
        **p.where(),
    )
    return [detail, invoice]


def _success_event(p: _Payment, *, renewal: bool, at: datetime) -> dict[str, Any]:
    if renewal:
        return samples.invoice_failed(
            event_id=f"evt_demo{p.number:04d}_paid",
            invoice_id=p.invoice,
            created=at,
            customer=p.customer,
            amount_due=p.amount,
            event_type="invoice.paid",
            **p.where(),
        )
    event = samples.intent_failed(
        event_id=f"evt_demo{p.number:04d}_paid",
        intent_id=p.intent,
        created=at,
        amount=p.amount,
        customer=p.customer,
        **p.where(),
    )
    event["type"] = "payment_intent.succeeded"
    event["data"]["object"].update(status="succeeded", last_payment_error=None)
    return event


def build_campaign(
    *, payments: int, start: datetime, spread: timedelta, rng: random.Random
) -> CampaignPlan:
    """The webhooks of ``payments`` failed payments spread over ``spread`` from ``start``, in
    the shapes Stripe sends them, with re-deliveries and some payments arriving later."""
    plan = CampaignPlan([], payments, 0, 0, 0, 0)
    used: Counter[str] = Counter()
    customers: list[tuple[str, str, Place, str]] = []
    for i in range(payments):
        if customers and rng.random() < 0.06:
            # A second subscription of a customer: the same number, a case of its own.
            customer, name, place, phone = rng.choice(customers)
        else:
            place = rng.choices(PLACES, weights=[p.weight for p in PLACES], k=1)[0]
            used[place.area_code] += 1
            # 555-0100 to 555-0199: numbers reserved for fiction.
            phone = f"+1{place.area_code}55501{used[place.area_code] % 100:02d}"
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            customer = f"cus_demo{i:04d}"
            customers.append((customer, name, place, phone))
        code, decline, _ = rng.choices(REASONS, weights=[r[2] for r in REASONS], k=1)[0]
        if i % 97 == 13:
            phone = "+1 555 0100"  # too short: the case opens closed as unreachable
            plan.invalid_phone += 1
        payment = _Payment(
            number=i,
            customer=customer,
            name=name,
            place=place,
            phone=phone,
            code=code,
            decline=decline,
            amount=rng.choice(PRICES),
            failed_at=start + spread * rng.random(),
        )
        shape = rng.random()
        events = _failure_events(payment, shape)
        if i % 41 == 7:
            # A card number typed where none belongs: the receiver replaces it on arrival.
            obj = events[-1]["data"]["object"]
            pan = TEST_PANS[plan.with_card_number % len(TEST_PANS)]
            if "customer_name" in obj:
                obj["customer_name"] = f"{payment.name} {pan}"
            else:
                obj["metadata"] = {"note": f"customer read out card {pan} to the agent"}
            plan.with_card_number += 1
        early_success = i % 53 == 11
        for event in events:
            at = datetime.fromtimestamp(event["created"], UTC)
            if early_success:
                at += timedelta(minutes=30)  # held up in transit: the success overtakes it
            plan.deliveries.append(Delivery(at, event, "failure"))
            if rng.random() < 0.15:
                # Stripe delivers at least once: some events come again, minutes later.
                again = at + timedelta(minutes=rng.uniform(1, 90))
                plan.deliveries.append(Delivery(again, event, "redelivery"))
        if early_success:
            # The gateway's own retry succeeded minutes later, and its success arrives first:
            # the older failure must not open a case.
            paid_at = payment.failed_at + timedelta(minutes=10)
            plan.paid_before_failure_arrived += 1
        elif rng.random() < 0.14:
            # The customer pays on their own (a gateway retry, a new card in the portal).
            paid_at = payment.failed_at + timedelta(hours=rng.uniform(2, 10 * 24))
            plan.paid_on_their_own += 1
        else:
            continue
        success = _success_event(payment, renewal=shape < 0.8, at=paid_at)
        plan.deliveries.append(Delivery(paid_at, success, "success"))
    plan.deliveries.sort(key=lambda d: d.at)
    return plan
