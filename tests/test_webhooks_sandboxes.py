"""The sandboxes send what the real services send: Xero's signed webhook events and its intent to
receive probes, Zoho's /actions/watch channels and their callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import RunningSandbox, start
from tests.e2e_support import XeroReader, ZohoReader
from tests.test_webhooks_support import Received, Receiver, wait_until

KEY = "sandbox-test-webhook-key-0123456789"


def xero_signature(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verifying(received: Received) -> int:
    """A correct receiver: 200 when the signature matches the raw body, else 401."""
    good = hmac.compare_digest(xero_signature(received.body), received.headers.get("x-xero-signature", ""))
    return 200 if good else 401


@pytest.fixture()
def xero() -> Iterator[RunningSandbox]:
    from sandbox.xero.app import XeroSandbox

    running = start(XeroSandbox(None))
    yield running
    running.stop()


@pytest.fixture()
def zoho() -> Iterator[RunningSandbox]:
    from sandbox.zoho.app import ZohoSandbox

    running = start(ZohoSandbox(None))
    yield running
    running.stop()


def put_webhook(xero: RunningSandbox, url: str, **extra: Any) -> dict[str, Any]:
    answer = requests.put(f"{xero.url}/_sandbox/webhooks", json={"url": url, "key": KEY, **extra}, timeout=30)
    answer.raise_for_status()
    return answer.json()


def events_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [e for call in receiver.calls for e in call.json()["events"]]


def new_invoice(reader: XeroReader, contact_id: str, status: str = "AUTHORISED") -> dict[str, Any]:
    return reader.put("Invoices", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Status": status, "DueDate": "2027-01-31",
        "LineItems": [{"Description": "Widget", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200",
                       "TaxType": "OUTPUT2"}]}]})["Invoices"][0]


# --- Xero ------------------------------------------------------------------------------------------
def test_intent_to_receive_passes_only_a_receiver_that_checks_the_signature(xero: RunningSandbox) -> None:
    good, lax = Receiver(verifying), Receiver(lambda _r: 200)
    try:
        ok = put_webhook(xero, good.url + "/xero")
        assert ok["status"] == "OK"
        probes = [c for c in good.calls]
        assert len(probes) == 4 and all(p.json()["events"] == [] for p in probes)
        assert {p.json()["firstEventSequence"] for p in probes} == {0}
        assert sorted(r["signed_correctly"] for r in ok["intent"]) == [False, False, True, True]
        assert all(r["ok"] for r in ok["intent"])

        failed = put_webhook(xero, lax.url + "/xero")
        assert failed["status"] == "Intent to receive failed"
        assert [r["ok"] for r in failed["intent"] if not r["signed_correctly"]] == [False, False]
        # Until intent to receive passes, changes raise no event.
        XeroReader(xero.url).put("Contacts", {"Contacts": [{"Name": "Nobody Hears Ltd"}]})
        assert requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()["events_raised"] == 0
    finally:
        good.close()
        lax.close()


def test_contact_and_invoice_changes_and_a_payment_arrive_signed_in_xero_shape(xero: RunningSandbox) -> None:
    receiver = Receiver(verifying)
    try:
        put_webhook(xero, receiver.url + "/xero")
        probes = len(receiver.calls)
        reader = XeroReader(xero.url)
        contact = reader.put("Contacts", {"Contacts": [{"Name": "Webhook Widgets Ltd"}]})["Contacts"][0]
        invoice = new_invoice(reader, contact["ContactID"])
        reader.put("Payments", {"Payments": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]},
                                              "Account": {"Code": "090"}, "Amount": 20.0}]})
        wait_until(lambda: len(events_of(receiver)) >= 3, what="three events")
        calls = receiver.calls[probes:]
        for call in calls:
            assert call.headers["x-xero-signature"] == xero_signature(call.body)
            body = call.json()
            assert set(body) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
            assert body["lastEventSequence"] - body["firstEventSequence"] + 1 == len(body["events"])
        seen = [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in events_of(receiver)]
        assert seen == [("CONTACT", "CREATE", contact["ContactID"]), ("INVOICE", "CREATE", invoice["InvoiceID"]),
                        ("INVOICE", "UPDATE", invoice["InvoiceID"])]  # the payment (README: a decision)
        event = events_of(receiver)[0]
        assert set(event) == {"resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory",
                              "tenantId", "tenantType"}
        assert event["tenantId"] == reader.tenant and event["tenantType"] == "ORGANISATION"
        assert event["resourceUrl"].endswith(f"/api.xro/2.0/Contacts/{contact['ContactID']}")
        # An unchanged contact written again changes nothing and raises nothing.
        reader.put("Contacts", {"Contacts": [{"ContactID": contact["ContactID"], "Name": "Webhook Widgets Ltd"}]})
        state = requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()
        assert state["events_raised"] == 3 and state["sequence"] == 3
    finally:
        receiver.close()


def test_a_failing_receiver_gets_the_same_payload_again_in_order(xero: RunningSandbox) -> None:
    failures = {"left": 2}

    def flaky(received: Received) -> int:
        if received.json()["events"] and failures["left"] > 0:
            failures["left"] -= 1
            return 503
        return verifying(received)

    receiver = Receiver(flaky)
    try:
        put_webhook(xero, receiver.url + "/xero", retry={"initial": 0.05, "maximum": 0.1})
        reader = XeroReader(xero.url)
        reader.put("Contacts", {"Contacts": [{"Name": "Retry Me Ltd"}]})
        wait_until(lambda: requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()["delivered"] >= 1,
                   what="a delivery")
        reader.put("Contacts", {"Contacts": [{"Name": "After Retry Ltd"}]})
        wait_until(lambda: requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()["delivered"] >= 2,
                   what="the second delivery")
        deliveries = [c for c in receiver.calls if c.json()["events"]]
        assert [c.body for c in deliveries[:3]] == [deliveries[0].body] * 3  # the same bytes, re-sent
        assert [c.json()["firstEventSequence"] for c in deliveries] == [1, 1, 1, 2]
        state = requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()
        assert state["failed_attempts"] == 2
    finally:
        receiver.close()


def test_a_webhook_that_never_recovers_is_disabled_and_replays_after_intent_to_receive(xero: RunningSandbox) -> None:
    down = {"yes": True}
    receiver = Receiver(lambda r: 500 if down["yes"] and r.json()["events"] else verifying(r))
    try:
        put_webhook(xero, receiver.url + "/xero", retry={"initial": 0.02, "maximum": 0.05, "give_up_after": 0.3})
        XeroReader(xero.url).put("Contacts", {"Contacts": [{"Name": "Kept For Later Ltd"}]})
        wait_until(lambda: requests.get(f"{xero.url}/_sandbox/webhooks", timeout=30).json()["status"] == "Disabled",
                   what="the webhook being disabled")
        down["yes"] = False
        again = requests.post(f"{xero.url}/_sandbox/webhooks/intent", timeout=30).json()
        assert again["status"] == "OK"
        wait_until(lambda: events_of(receiver), what="the replay")
        assert events_of(receiver)[0]["eventType"] == "CREATE"
    finally:
        receiver.close()


# --- Zoho ------------------------------------------------------------------------------------------
def watch(zoho: RunningSandbox, reader: ZohoReader, method: str, body: Any = None, **params: Any) -> requests.Response:
    return requests.request(method, f"{zoho.url}/crm/v8/actions/watch", json=body, params=params,
                            headers=reader.headers, timeout=30)


def test_watch_channels_enable_list_update_and_delete_as_documented(zoho: RunningSandbox) -> None:
    reader = ZohoReader(zoho.url)
    assert watch(zoho, reader, "GET").status_code == 204
    enabled = watch(zoho, reader, "POST", {"watch": [{
        "channel_id": "1000000068001", "events": ["Invoices.create", "Invoices.edit", "Accounts.all"],
        "notify_url": "http://127.0.0.1:9/hook", "token": "t" * 50, "channel_expiry": "2099-01-01T00:00:00+00:00"}]})
    assert enabled.status_code == 201
    [item] = enabled.json()["watch"]
    assert item["message"] == "Successfully subscribed for actions-watch of the given module"
    assert [e["resource_name"] for e in item["details"]["events"]] == ["Invoices", "Accounts"]
    # A week at most: further than that is one hour (virtual clock).
    clock = requests.get(f"{zoho.url}/_sandbox/clock", timeout=30).json()["now"]
    from datetime import datetime

    expiry = datetime.fromisoformat(item["details"]["events"][0]["channel_expiry"])
    assert 3500 <= (expiry - datetime.fromisoformat(clock)).total_seconds() <= 3700

    listed = watch(zoho, reader, "GET", module="Invoices").json()
    assert [(w["resource_name"], w["events"], w["token"]) for w in listed["watch"]] == [
        ("Invoices", ["Invoices.create", "Invoices.edit"], "t" * 50)]

    bad = watch(zoho, reader, "POST", {"watch": [
        {"channel_id": "2", "events": ["Invoices.create"], "notify_url": "http://x/h", "token": "t" * 51},
        {"channel_id": "3", "events": ["Nowhere.create"], "notify_url": "http://x/h"},
        {"channel_id": "4", "events": ["Invoices.edit"]}]})
    assert bad.status_code == 400
    assert [(w["code"], w["details"]["api_name"]) for w in bad.json()["watch"]] == [
        ("INVALID_DATA", "token"), ("INVALID_DATA", "events"), ("MANDATORY_NOT_FOUND", "notify_url")]

    replaced = watch(zoho, reader, "PUT", {"watch": [{"channel_id": "1000000068001", "events": ["Invoices.edit"],
                                                      "notify_url": "http://127.0.0.1:9/other", "token": "new"}]})
    assert replaced.status_code == 200
    assert [w["events"] for w in watch(zoho, reader, "GET").json()["watch"]] == [["Invoices.edit"]]
    removed = watch(zoho, reader, "PATCH", {"watch": [{"channel_id": "1000000068001", "events": ["Invoices.edit"],
                                                       "_delete_events": True}]})
    assert removed.json()["watch"][0]["message"] == "Successfully removed the subscribe details"
    assert watch(zoho, reader, "GET").status_code == 204
    gone = watch(zoho, reader, "DELETE", channel_ids="1000000068001")
    assert gone.json()["watch"][0]["code"] == "NOT_SUBSCRIBED"
    assert watch(zoho, reader, "DELETE").json()["code"] == "REQUIRED_PARAM_MISSING"


def test_watched_writes_post_ids_with_the_channel_token_until_the_channel_expires(zoho: RunningSandbox) -> None:
    receiver = Receiver()
    reader = ZohoReader(zoho.url)
    try:
        assert watch(zoho, reader, "POST", {"watch": [{
            "channel_id": "77", "events": ["Invoices.edit"], "notify_url": receiver.url + "/zoho?org=demo",
            "token": "channel-token"}]}).status_code == 201
        invoices = reader.records("Invoices", ["Subject", "Status"])[:2]
        for invoice in invoices:
            reader.update("Invoices", {"id": invoice["id"], "Subject": invoice["Subject"] + " (edited)"})
        account = reader.records("Accounts", ["Account_Name"])[0]
        reader.update("Accounts", {"id": account["id"], "Description": "not watched"})
        wait_until(lambda: len(receiver.calls) >= 2, what="two callbacks")
        bodies = [c.json() for c in receiver.calls]
        assert [(b["module"], b["operation"], b["ids"], b["token"], b["channel_id"]) for b in bodies] == [
            ("Invoices", "update", [i["id"]], "channel-token", "77") for i in invoices]
        assert bodies[0]["query_params"] == {"org": "demo"}
        assert set(bodies[0]) == {"server_time", "query_params", "module", "resource_uri", "ids", "affected_fields",
                                  "operation", "channel_id", "token"}
        requests.put(f"{zoho.url}/_sandbox/clock", json={"advance_seconds": 3700}, timeout=30)
        reader = ZohoReader(zoho.url)  # fresh token on the advanced clock
        reader.update("Invoices", {"id": invoices[0]["id"], "Subject": "after expiry"})
        assert requests.get(f"{zoho.url}/_sandbox/notifications", timeout=30).json()["sent"] == 2
    finally:
        receiver.close()
