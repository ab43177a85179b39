"""The official Genesys Cloud Python SDK against the emulator: if the SDK can log in, add,
read and DNC through it, the emulator speaks the real wire format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import PureCloudPlatformClientV2 as genesys
import pytest

from tests.support import emulator as served_emulator
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    DNC_LIST,
    NOON_EASTERN,
    Emulator,
)

emulator_server = served_emulator.emulator_server
emulator = served_emulator.emulator


@pytest.fixture
def outbound(emulator: Emulator) -> Iterator[genesys.OutboundApi]:
    previous = genesys.configuration.host
    genesys.configuration.host = emulator.base_url
    try:
        api_client = genesys.api_client.ApiClient().get_client_credentials_token(
            CLIENT_ID, CLIENT_SECRET
        )
        yield genesys.OutboundApi(api_client)
    finally:
        genesys.configuration.host = previous


def writable(contact_id: str, phone: str) -> genesys.WritableDialerContact:
    contact = genesys.WritableDialerContact()
    contact.id = contact_id
    contact.contact_list_id = CONTACT_LIST
    contact.data = {"phone": phone, "timeZone": "America/New_York", "attemptCount": "1"}
    contact.callable = True
    return contact


def test_sdk_round_trip(emulator: Emulator, outbound: genesys.OutboundApi) -> None:
    emulator.control("POST", "/scenario", {"name": "all-no-answer"})
    created = outbound.post_outbound_contactlist_contacts(
        CONTACT_LIST,
        [writable("c1", "+14155552671"), writable("c2", "+14155552672")],
        priority=True,
        clear_system_data=False,
        do_not_queue=False,
    )
    assert [c.id for c in created] == ["c1", "c2"]
    assert emulator.counters()["contacts_created"] == 2

    one = outbound.get_outbound_contactlist_contact(CONTACT_LIST, "c1")
    assert one.id == "c1" and one.contact_list_id == CONTACT_LIST
    assert one.data["phone"] == "+14155552671"
    assert not one.call_records

    emulator.dial()
    both = outbound.post_outbound_contactlist_contacts_bulk(CONTACT_LIST, ["c1", "c2"])
    assert {c.id for c in both} == {"c1", "c2"}
    for contact in both:
        record = contact.call_records["phone"]
        assert record.last_result == "ININ-OUTBOUND-NO-ANSWER"
        assert isinstance(record.last_attempt, datetime)
        assert record.last_attempt == NOON_EASTERN

    outbound.post_outbound_dnclist_phonenumbers(DNC_LIST, ["+14155552673"])
    assert emulator.control("GET", f"/dnc-lists/{DNC_LIST}") == ["14155552673"]

    outbound.delete_outbound_contactlist_contact(CONTACT_LIST, "c2")
    assert {c["id"] for c in emulator.contacts()} == {"c1"}


def test_sdk_sees_service_errors(emulator: Emulator, outbound: genesys.OutboundApi) -> None:
    with pytest.raises(genesys.rest.ApiException) as caught:
        outbound.get_outbound_contactlist_contact(CONTACT_LIST, "missing")
    assert caught.value.status == 404
