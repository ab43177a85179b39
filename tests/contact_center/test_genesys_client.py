"""The Genesys client against the emulator over real HTTP: batching, idempotent retries,
re-authentication, 429 and 5xx handling, throttling, poisoned contacts, DNC, delete."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import httpx
import pytest

from recovery.contact_center.client import (
    REGION_DOMAINS,
    GenesysClient,
    login_url_for,
    region_urls,
)
from recovery.contact_center.contacts import (
    CONTACT_COLUMNS,
    ContactRequest,
    contact_columns,
    contact_id_for,
    redact,
)
from recovery.contact_center.errors import (
    AuthenticationFailed,
    CardDataRefused,
    ContactRejected,
    TransientContactCenterError,
)
from recovery.contact_center.throttle import (
    RequestRateLimiter,
    Throttle,
    parse_rate_limit_headers,
)
from recovery.settings import Settings
from tests.support import emulator as served_emulator
from tests.support.emulator import CONTACT_LIST, DNC_LIST, Emulator, SleepRecorder

emulator_server = served_emulator.emulator_server
emulator = served_emulator.emulator


def request_for(
    i: int, *, phone: str | None = None, zone: str = "America/New_York"
) -> ContactRequest:
    return ContactRequest(
        case_key=f"stripe:in_{i:05d}",
        attempt=1,
        phone_e164=phone or f"+1415555{i % 10_000:04d}",
        transaction_id=f"in_{i:05d}",
        failure_reason="insufficient_funds",
        amount=Decimal("19.99"),
        currency="usd",
        next_retry_window="2026-03-04T09:00:00-05:00/2026-03-04T20:00:00-05:00",
        time_zone=zone,
    )


class RecordingTransport(httpx.HTTPTransport):
    """Counts the contacts in each add request the client really sends."""

    def __init__(self) -> None:
        super().__init__()
        self.add_sizes: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/contacts"):
            self.add_sizes.append(len(json.loads(request.content)))
        return super().handle_request(request)


# -- the contact builder ----------------------------------------------------------------------


def test_contact_ids_are_deterministic_per_case_and_attempt() -> None:
    assert contact_id_for("stripe:in_1", 1) == contact_id_for("stripe:in_1", 1)
    assert contact_id_for("stripe:in_1", 1) != contact_id_for("stripe:in_1", 2)
    assert contact_id_for("stripe:in_1", 1) != contact_id_for("stripe:in_2", 1)
    assert len(contact_id_for("x" * 255, 9999)) <= 64


def test_writable_contact_has_only_sanitised_string_columns() -> None:
    contact = ContactRequest(
        case_key="stripe:in_1",
        attempt=2,
        phone_e164="+1 (415) 555-2671",
        transaction_id="in_1\r\nInjected: header",
        failure_reason="x" * 1000,
        amount=Decimal("1234.50"),
        currency="eur",
        next_retry_window="tomorrow\x00",
        time_zone="Europe/Paris",
    )
    wire = contact.to_writable("L1")
    assert wire["id"] == contact_id_for("stripe:in_1", 2)
    assert wire["contactListId"] == "L1"
    data = wire["data"]
    assert all(isinstance(v, str) for v in data.values())
    assert data["phone"] == "+14155552671"
    assert data["transactionId"] == "in_1Injected: header"
    assert len(data["failureReason"]) == 200
    assert data["nextRetryWindow"] == "tomorrow"
    assert data["amountOwed"] == "1234.50"
    assert data["currency"] == "EUR"
    assert data["attemptCount"] == "2"
    assert data["pciSensitive"] == "true"
    assert data["timeZone"] == "Europe/Paris"


@pytest.mark.parametrize(
    "field",
    [
        "transaction_id",
        "failure_reason",
        "next_retry_window",
        "case_key",
        "payment_link",
        "disposition_code",
    ],
)
@pytest.mark.parametrize("card", ["4111111111111111", "4111 1111 1111 1111", "378282246310005"])
def test_card_numbers_are_refused_and_never_echoed(field: str, card: str) -> None:
    values = request_for(1).model_dump()
    values[field] = f"https://pay.example.com/{card}" if field == "payment_link" else f"ref {card}"
    with pytest.raises(CardDataRefused) as caught:
        ContactRequest(**values)
    assert card not in str(caught.value)
    assert caught.value.field == field


def test_every_column_is_sent_always_and_the_outcome_update_is_not_dialable() -> None:
    first = request_for(7).model_copy(
        update={
            "last_attempt_date": "2026-03-03",
            "payment_link": "https://invoice.stripe.com/i/acct_1/test_x?s=ap",
        }
    )
    first = ContactRequest(**first.model_dump())
    wire = first.to_writable("L1", phone_column="mobile")
    assert sorted(wire["data"]) == sorted(contact_columns("mobile"))
    assert wire["callable"] is True
    assert wire["data"]["lastAttemptDate"] == "2026-03-03"
    assert wire["data"]["pciTokenized"] == "true" and wire["data"]["dispositionCode"] == ""
    assert wire["data"]["paymentLink"] == "https://invoice.stripe.com/i/acct_1/test_x?s=ap"
    update = ContactRequest(
        **{**first.model_dump(), "disposition_code": "promise_to_pay", "dialable": False}
    )
    after = update.to_writable("L1")
    assert after["id"] == wire["id"] and after["callable"] is False
    assert after["data"]["dispositionCode"] == "promise_to_pay"
    assert tuple(request_for(1).data()) == CONTACT_COLUMNS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payment_link", "http://pay.example.com/i/1"),
        ("payment_link", "javascript:alert(1)"),
        ("last_attempt_date", "yesterday"),
    ],
)
def test_a_link_that_is_not_https_or_a_date_that_is_not_one_is_refused(
    field: str, value: str
) -> None:
    with pytest.raises(ValueError):
        ContactRequest(**{**request_for(1).model_dump(), field: value})


def test_bad_phone_and_zone_are_refused_with_the_phone_masked() -> None:
    values = request_for(1).model_dump()
    with pytest.raises(ValueError) as caught:
        ContactRequest(**{**values, "phone_e164": "0415552671"})
    assert "0415552671" not in str(caught.value)
    with pytest.raises(ValueError):
        ContactRequest(**{**values, "time_zone": "Mars/Olympus_Mons"})


def test_redact_masks_phones_and_removes_cards() -> None:
    text = redact("number +14155552671 card 4111-1111-1111-1111")
    assert "4155552671" not in text and "***2671" in text
    assert "4111" not in text


# -- regions and headers ------------------------------------------------------------------


def test_regions_and_login_hosts() -> None:
    assert region_urls("us-east-1") == (
        "https://api.mypurecloud.com",
        "https://login.mypurecloud.com",
    )
    assert region_urls("us-west-2")[0] == "https://api.usw2.pure.cloud"
    assert region_urls("eu-central-1")[1] == "https://login.mypurecloud.de"
    assert region_urls("mypurecloud.ie")[0] == "https://api.mypurecloud.ie"
    with pytest.raises(ValueError):
        region_urls("moon-1")
    assert login_url_for("https://api.euw2.pure.cloud") == "https://login.euw2.pure.cloud"
    assert login_url_for("http://127.0.0.1:8900/") == "http://127.0.0.1:8900"
    client = GenesysClient(client_id="a", client_secret="b", region="ap-southeast-2")
    assert client.base_url == "https://api.mypurecloud.com.au"
    assert client.login_url == "https://login.mypurecloud.com.au"
    client.close()


def test_every_region_the_official_sdk_knows() -> None:
    """The region table is the SDK's own (``PureCloudRegionHosts``), mx-central-1 and the
    EU sovereign cloud included; login hosts follow the SDK's ``//api.`` to ``//login.``."""
    from PureCloudPlatformClientV2 import PureCloudRegionHosts

    sdk = {r.name.replace("_", "-"): r.get_api_host() for r in PureCloudRegionHosts}
    ours = {name: region_urls(name)[0] for name in REGION_DOMAINS}
    assert ours == sdk
    assert region_urls("mx-central-1") == (
        "https://api.mxc1.pure.cloud",
        "https://login.mxc1.pure.cloud",
    )
    assert region_urls("eusc_de_east_1")[1] == "https://login.edee1.eusc-pure.cloud"


def test_client_from_settings_uses_the_emulator_address() -> None:
    settings = Settings(
        genesys_base_url="http://127.0.0.1:9999", genesys_batch_size=25, _env_file=None
    )
    with GenesysClient.from_settings(settings) as client:
        assert client.base_url == "http://127.0.0.1:9999"
        assert client.login_url == "http://127.0.0.1:9999"
        assert client.batch_size == 25
    settings = Settings(genesys_region="us-west-2", _env_file=None)
    with GenesysClient.from_settings(settings) as client:
        assert client.login_url == "https://login.usw2.pure.cloud"


def test_rate_limit_headers_of_both_kinds() -> None:
    genesys = parse_rate_limit_headers(
        {
            "inin-ratelimit-count": "250",
            "inin-ratelimit-allowed": "300",
            "inin-ratelimit-reset": "12",
        }
    )
    assert genesys is not None
    assert (genesys.limit, genesys.remaining, genesys.reset_seconds) == (300, 50, 12.0)
    other = parse_rate_limit_headers({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "5"})
    assert other is not None
    assert (other.limit, other.remaining, other.reset_seconds) == (100, 5, 60.0)
    assert parse_rate_limit_headers({}) is None


def test_throttle_spreads_the_remaining_budget_below_20_percent() -> None:
    now = [100.0]
    sleeps = SleepRecorder()
    throttle = Throttle(sleep=sleeps, monotonic=lambda: now[0])

    def headers(remaining: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": "30",
        }

    throttle.before_request()
    throttle.finish(headers(20))
    throttle.before_request()
    assert sleeps.waits == []  # 20 % left: not yet below the threshold
    throttle.finish(headers(10))
    throttle.before_request()
    throttle.before_request()
    assert sleeps.waits == [pytest.approx(3.0), pytest.approx(6.0)]


def test_throttle_counts_requests_in_flight_against_the_budget() -> None:
    now = [100.0]
    sleeps = SleepRecorder()
    throttle = Throttle(sleep=sleeps, monotonic=lambda: now[0])
    for _ in range(4):
        throttle.before_request()  # four requests in flight
    # 22 % left, but three other requests are still out: 19 really left.
    throttle.finish({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "22"})
    assert throttle.interval == pytest.approx(60.0 / 19)


def test_local_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    sleeps = SleepRecorder()
    limiter = RequestRateLimiter(120, burst=2, sleep=sleeps, monotonic=lambda: now[0])
    for _ in range(4):
        limiter(1)
    assert sleeps.waits == [pytest.approx(0.5), pytest.approx(1.0)]


# -- against the emulator -----------------------------------------------------------------


def test_120_contacts_go_in_three_requests_of_at_most_50(emulator: Emulator) -> None:
    transport = RecordingTransport()
    with emulator.client(transport=transport) as client:
        result = client.add_contacts(CONTACT_LIST, [request_for(i) for i in range(120)])
    assert transport.add_sizes == [50, 50, 20]
    assert result.requests == 3
    assert len(result.created) == 120 and result.rejected == []
    assert emulator.counters()["contacts_created"] == 120
    stored = {c["id"] for c in emulator.contacts()}
    assert stored == {contact_id_for(f"stripe:in_{i:05d}", 1) for i in range(120)}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "apply": True},
        {"status": 503, "apply": True, "delay_seconds": 1.0},  # the client times out
    ],
    ids=["503-after-apply", "timeout-after-apply"],
)
def test_a_batch_retried_after_being_applied_upserts(
    emulator: Emulator, fault: dict[str, object]
) -> None:
    sleeps = SleepRecorder()
    with emulator.client(sleep=sleeps, timeout=0.4, rng=random.Random(1)) as client:
        client.add_contacts(CONTACT_LIST, [request_for(0)])  # log in first
        emulator.fault(**fault)  # type: ignore[arg-type]
        result = client.add_contacts(CONTACT_LIST, [request_for(i) for i in range(1, 51)])
    assert len(result.created) == 50
    assert len(sleeps.waits) == 1 and 3.0 <= sleeps.waits[0] <= 3.6
    counters = emulator.counters()
    assert counters["contacts_created"] == 51
    assert counters["upserts"] == 50
    assert counters["duplicates"] == 0
    contacts = emulator.contacts()
    assert len(contacts) == 51
    assert all(c["queued"] for c in contacts)


def test_server_errors_back_off_then_give_up_as_transient(emulator: Emulator) -> None:
    sleeps = SleepRecorder()
    emulator.fault(503, count=4)
    with emulator.client(sleep=sleeps, rng=random.Random(2)) as client:
        with pytest.raises(TransientContactCenterError) as caught:
            client.add_contacts(CONTACT_LIST, [request_for(1)])
    assert caught.value.status == 503
    assert [round(w) for w in sleeps.waits] == [3, 9, 27] or all(
        base <= w <= base * 1.2 for w, base in zip(sleeps.waits, (3, 9, 27), strict=True)
    )
    assert emulator.contacts() == []


def test_a_500_is_transient_and_not_retried_in_place(emulator: Emulator) -> None:
    sleeps = SleepRecorder()
    emulator.fault(500)
    with emulator.client(sleep=sleeps) as client:
        with pytest.raises(TransientContactCenterError):
            client.add_contacts(CONTACT_LIST, [request_for(1)])
        assert sleeps.waits == []
        # The next attempt (a task retry) succeeds.
        assert client.add_contacts(CONTACT_LIST, [request_for(1)]).created


def test_a_revoked_token_is_replaced_once(emulator: Emulator) -> None:
    with emulator.client() as client:
        client.add_contacts(CONTACT_LIST, [request_for(1)])
        assert client.logins == 1
        emulator.control("POST", "/revoke-tokens")
        assert client.get_contact(CONTACT_LIST, contact_id_for("stripe:in_00001", 1)) is not None
        assert client.logins == 2
        client.get_contact(CONTACT_LIST, contact_id_for("stripe:in_00001", 1))
        assert client.logins == 2  # cached


def test_an_expiring_token_is_refreshed_before_use(emulator: Emulator) -> None:
    from datetime import timedelta

    emulator.control("POST", "/token-lifetime", {"seconds": 600})
    with emulator.client() as client:
        client.add_contacts(CONTACT_LIST, [request_for(1)])
        emulator.clock.advance(timedelta(seconds=590))  # inside the early-refresh margin
        client.add_contacts(CONTACT_LIST, [request_for(2)])
        assert client.logins == 2
    assert emulator.counters()["auth_failures"] == 0


def test_wrong_credentials_fail_authentication(emulator: Emulator) -> None:
    with GenesysClient(
        client_id="emulator-client",
        client_secret="wrong",
        base_url=emulator.base_url,
        sleep=SleepRecorder(),
    ) as client:
        with pytest.raises(AuthenticationFailed):
            client.add_contacts(CONTACT_LIST, [request_for(1)])


@pytest.mark.parametrize(("retry_after", "expected"), [(2, 2.0), (None, 3.0)])
def test_429_waits_retry_after_or_3_seconds(
    emulator: Emulator, retry_after: int | None, expected: float
) -> None:
    sleeps = SleepRecorder()
    emulator.fault(429, retry_after=retry_after)
    with emulator.client(sleep=sleeps, rng=random.Random(3)) as client:
        result = client.add_contacts(CONTACT_LIST, [request_for(1)])
    assert result.created
    assert len(sleeps.waits) == 1
    assert expected <= sleeps.waits[0] <= expected * 1.2


def test_retry_after_beyond_3_minutes_gives_up_as_transient(emulator: Emulator) -> None:
    sleeps = SleepRecorder()
    emulator.fault(429, retry_after=600)
    with emulator.client(sleep=sleeps) as client:
        with pytest.raises(TransientContactCenterError) as caught:
            client.add_contacts(CONTACT_LIST, [request_for(1)])
    assert caught.value.status == 429 and caught.value.retry_after == 600
    assert sleeps.waits == []


def test_real_rate_limit_429_is_waited_out(emulator: Emulator) -> None:
    sleeps = SleepRecorder()
    emulator.control("POST", "/rate-limit", {"requests_per_minute": 2, "window": "fixed"})
    with emulator.client(sleep=sleeps, low_water=0.0) as client:
        client.add_contacts(CONTACT_LIST, [request_for(1)])
        client.add_contacts(CONTACT_LIST, [request_for(2)])
        with pytest.raises(TransientContactCenterError):
            client.add_contacts(CONTACT_LIST, [request_for(3)])
    # The recorder does not really wait, so every retry meets the limit again.
    assert len(sleeps.waits) == 5 and all(50 <= w <= 72 for w in sleeps.waits)
    assert emulator.counters()["rate_limited"] == 6


def test_client_slows_down_below_20_percent_remaining(emulator: Emulator) -> None:
    sleeps = SleepRecorder()
    emulator.control("POST", "/rate-limit", {"requests_per_minute": 10, "window": "sliding"})
    with emulator.client(sleep=sleeps) as client:
        for i in range(8):
            client.add_contacts(CONTACT_LIST, [request_for(i)])
        assert sleeps.waits == []  # 2 of 10 left: 20 %, not below
        client.add_contacts(CONTACT_LIST, [request_for(8)])  # 1 left now
        assert sleeps.waits == []
        client.add_contacts(CONTACT_LIST, [request_for(9)])
        assert client.throttle.last_state is not None
    # The last request waited for the budget's remaining time rather than bursting.
    assert len(sleeps.waits) == 1 and 50 <= sleeps.waits[0] <= 60
    assert emulator.counters()["rate_limited"] == 0


def test_acquire_hook_sees_every_request(emulator: Emulator) -> None:
    slots: list[int] = []
    with emulator.client(acquire=slots.append) as client:
        client.add_contacts(CONTACT_LIST, [request_for(i) for i in range(60)])
        client.get_contacts(CONTACT_LIST, [contact_id_for("stripe:in_00001", 1)])
    assert slots == [1, 1, 1, 1]  # login, two batches, one bulk get


def test_a_poisoned_contact_is_isolated_from_its_batch(emulator: Emulator) -> None:
    requests = [request_for(i) for i in range(50)]
    bad = requests[17].contact_id
    emulator.control("POST", "/poison", {"contact_id": bad, "reason": "Phone +14155550017 refused"})
    with emulator.client() as client:
        result = client.add_contacts(CONTACT_LIST, requests)
    assert [r.contact_id for r in result.rejected] == [bad]
    assert result.rejected[0].status == 400
    assert "refused" in result.rejected[0].reason
    assert "4155550017" not in result.rejected[0].reason  # masked
    assert len(result.created) == 49 and bad not in result.created
    assert {c["id"] for c in emulator.contacts()} == {r.contact_id for r in requests} - {bad}
    assert result.requests <= 2 * 6 + 1


def test_single_contact_errors_are_typed(emulator: Emulator) -> None:
    emulator.control("POST", "/poison", {"contact_id": "c-bad", "reason": "bad contact"})
    with emulator.client() as client:
        with pytest.raises(ContactRejected) as caught:
            client.get_contact(CONTACT_LIST, "c-bad")
    assert caught.value.contact_id == "c-bad" and caught.value.status == 400


def test_get_bulk_get_and_delete(emulator: Emulator) -> None:
    requests = [request_for(i) for i in range(3)]
    with emulator.client() as client:
        client.add_contacts(CONTACT_LIST, requests)
        one = client.get_contact(CONTACT_LIST, requests[0].contact_id)
        assert one is not None and one.data["transactionId"] == "in_00000"
        many = client.get_contacts(CONTACT_LIST, [r.contact_id for r in requests] + ["nope"])
        assert {c.id for c in many} == {r.contact_id for r in requests}
        assert client.remove_contact(CONTACT_LIST, requests[0].contact_id) is True
        assert client.get_contact(CONTACT_LIST, requests[0].contact_id) is None
        assert client.remove_contact(CONTACT_LIST, requests[0].contact_id) is False
    remaining = emulator.contacts()
    assert {c["id"] for c in remaining} == {r.contact_id for r in requests[1:]}
    assert emulator.counters()["deleted"] == 1


def test_dnc_append(emulator: Emulator) -> None:
    with emulator.client() as client:
        assert client.append_dnc(DNC_LIST, ["+14155552671", "+14155552671", "+442071838750"]) == 2
    assert emulator.control("GET", f"/dnc-lists/{DNC_LIST}") == ["14155552671", "442071838750"]
