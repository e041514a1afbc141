"""The receivers of ``zxsync webhooks``: Xero signatures and intent to receive, Zoho channel tokens,
signed trigger links, replays and duplicates — what gets queued in the ledger and what is refused."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

with warnings.catch_warnings():  # starlette's notice about its httpx-based test client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ledger import Ledger
from tests.test_webhooks_support import wait_until
from zxsync.settings import REPO_ROOT, get_settings
from zxsync.webhooks import (
    Intake,
    create_app,
    rotate_trigger_key,
    sign_trigger,
    store_xero_key,
    xero_signature,
)
from zxsync.webhooks.intake import ZOHO_CHANNEL

TENANT = "3a1f6c2e-7b4d-4e8a-9c5f-1d2e3f4a5b6c"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
KEY = "xero-webhook-key-for-tests-0123456789abcdef"


def write_org(folder: Path, slug: str, tenant: str, **webhooks: Any) -> None:
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    data.update(slug=slug, webhooks=webhooks)
    data["xero"]["tenant_id"] = tenant
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture()
def orgs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "orgs"
    folder.mkdir()
    write_org(folder, "demo", TENANT, xero_key="harbour-app", zoho_notifications=True, trigger_key="demo-trigger")
    write_org(folder, "twin", TENANT, xero_key="harbour-app")  # a second org on the same tenant and app
    write_org(folder, "quiet", OTHER_TENANT)  # no webhooks
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()
    return folder


@pytest.fixture()
def ledger(orgs: Path) -> Iterator[Ledger]:
    with Ledger.open() as opened:
        store_xero_key(opened, "harbour-app", KEY)
        yield opened


@pytest.fixture()
def client(ledger: Ledger) -> Iterator[TestClient]:
    with TestClient(create_app(Intake(lambda: ledger))) as test_client:
        yield test_client


def xero_body(*events: tuple[str, str, str], first: int = 1, tenant: str = TENANT) -> bytes:
    """A Xero webhook body: (category, type, resource id) per event."""
    rows = [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/{c.title()}s/{rid}", "resourceId": rid,
             "eventDateUtc": "2026-12-01T10:00:00.123", "eventType": t, "eventCategory": c, "tenantId": tenant,
             "tenantType": "ORGANISATION"} for c, t, rid in events]
    return json.dumps({"events": rows, "firstEventSequence": first, "lastEventSequence": first + len(rows) - 1,
                       "entropy": "ABCDEFGHIJKLMNOPQRST"}).encode()


def post_xero(client: TestClient, body: bytes, signature: str | None, key_name: str = "harbour-app") -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-xero-signature"] = signature
    return client.post(f"/webhooks/xero/{key_name}", content=body, headers=headers)


# --- Xero ------------------------------------------------------------------------------------------
def test_a_correctly_signed_xero_event_is_queued_for_every_org_of_its_tenant(client, ledger) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-1"), ("CONTACT", "CREATE", "con-1"))
    answer = post_xero(client, body, xero_signature(body, KEY))
    assert answer.status_code == 200 and answer.content == b""
    assert "set-cookie" not in answer.headers
    assert ledger.pending_ids("demo") == ["inv-1", "con-1"]
    assert ledger.pending_ids("twin") == ["inv-1", "con-1"]
    assert ledger.pending_ids("quiet") == []


@pytest.mark.parametrize("signature", [None, "", "not-base64-at-all", xero_signature(b"another body", KEY),
                                       xero_signature(xero_body(("INVOICE", "UPDATE", "inv-1")), "wrong-key")])
def test_a_missing_or_bad_signature_is_401_and_queues_nothing(client, ledger, signature) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-1"))
    answer = post_xero(client, body, signature)
    assert answer.status_code == 401 and answer.content == b""
    assert ledger.pending_events() == []


def test_the_signature_is_checked_on_the_raw_bytes_not_on_reparsed_json(client, ledger) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-1"))
    signature = xero_signature(body, KEY)
    reformatted = json.dumps(json.loads(body), indent=2).encode()  # same JSON, other bytes
    assert post_xero(client, reformatted, signature).status_code == 401
    assert post_xero(client, body, signature).status_code == 200


def test_an_unknown_key_name_is_401(client, ledger) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-1"))
    assert post_xero(client, body, xero_signature(body, KEY), key_name="someone-else").status_code == 401
    assert post_xero(client, body, xero_signature(body, KEY), key_name="..%2Fx").status_code in (401, 404)


def test_intent_to_receive_both_ways(client, ledger) -> None:
    probe = json.dumps({"events": [], "lastEventSequence": 0, "firstEventSequence": 0,
                        "entropy": "S0m3r4Nd0mt3xt"}).encode()
    good = post_xero(client, probe, xero_signature(probe, KEY))
    assert good.status_code == 200 and good.content == b""
    bad = post_xero(client, probe, xero_signature(probe, "deliberately-wrong"))
    assert bad.status_code == 401 and bad.content == b""
    assert ledger.pending_events() == []


def test_replayed_and_duplicated_events_queue_each_record_once(client, ledger) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-1"), ("INVOICE", "UPDATE", "inv-1"), ("INVOICE", "CREATE", "inv-2"))
    signature = xero_signature(body, KEY)
    for _ in range(3):  # Xero redelivers (at least once) and replays after an outage
        assert post_xero(client, body, signature).status_code == 200
    later = xero_body(("INVOICE", "UPDATE", "inv-2"), first=4)
    assert post_xero(client, later, xero_signature(later, KEY)).status_code == 200
    assert ledger.pending_ids("demo") == ["inv-1", "inv-2"]
    [batch_items] = [ledger.claim_events("demo", "b1")]
    assert [i for i, _ in batch_items] == ["inv-1", "inv-2"]
    # Once a run holds them, a new change of the same record is queued again for the next run.
    assert post_xero(client, later, xero_signature(later, KEY)).status_code == 200
    assert ledger.pending_ids("demo") == ["inv-2"]


def test_events_of_other_tenants_and_categories_are_answered_but_not_queued(client, ledger) -> None:
    body = xero_body(("INVOICE", "UPDATE", "inv-9"), tenant=OTHER_TENANT)
    assert post_xero(client, body, xero_signature(body, KEY)).status_code == 200
    credit = xero_body(("CREDITNOTE", "UPDATE", "cn-1"))
    assert post_xero(client, credit, xero_signature(credit, KEY)).status_code == 200
    assert ledger.pending_events() == []


def test_a_ledger_that_cannot_store_answers_500_so_xero_retries(orgs, ledger, monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(ledger, "enqueue_events", broken)
    with TestClient(create_app(Intake(lambda: ledger))) as client:
        body = xero_body(("INVOICE", "UPDATE", "inv-1"))
        assert post_xero(client, body, xero_signature(body, KEY)).status_code == 500


# --- Zoho ------------------------------------------------------------------------------------------
def zoho_callback(ids: list[str], *, token: str = "channel-token", channel: Any = "1234567890123",
                  module: str = "Invoices", operation: str = "update") -> dict[str, Any]:
    return {"server_time": 1718117126473, "query_params": {}, "module": module,
            "resource_uri": f"https://www.zohoapis.com/crm/v8/{module}", "ids": ids, "affected_fields": [],
            "operation": operation, "channel_id": channel, "token": token}


def test_zoho_callbacks_are_verified_by_the_channel_token(client, ledger) -> None:
    ledger.save_webhook_secret(ZOHO_CHANNEL.format(org="demo"), "zoho_channel", "channel-token", org="demo",
                               meta={"channel_id": "1234567890123"})
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z1", "z2"])).status_code == 200
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z2"], channel=1234567890123)).status_code == 200
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z3"], token="guess")).status_code == 401
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z3"], token="")).status_code == 401
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z3"], channel="999")).status_code == 401
    assert client.post("/webhooks/zoho/twin", json=zoho_callback(["z3"])).status_code == 401  # no channel wanted
    assert client.post("/webhooks/zoho/nobody", json=zoho_callback(["z3"])).status_code == 401
    assert client.post("/webhooks/zoho/demo", json=zoho_callback(["z4"], operation="delete")).status_code == 200
    assert ledger.pending_ids("demo") == ["z1", "z2"]
    assert [s for _, s in ledger.claim_events("demo", "b")] == ["zoho:Invoices"] * 2


# --- trigger links ---------------------------------------------------------------------------------
def trigger_params(key: str, record_id: str = "810000001000001", module: str = "Invoices",
                   expires: int | None = None, org: str = "demo") -> dict[str, Any]:
    expires = expires or int(time.time()) + 300
    return {"module": module, "id": record_id, "exp": expires, "sig": sign_trigger(key, org, module, record_id,
                                                                                     expires)}


def test_a_signed_trigger_link_queues_its_record_and_nothing_else(client, ledger) -> None:
    key = rotate_trigger_key(ledger, "demo-trigger", "demo")
    params = trigger_params(key)
    page = client.get("/webhooks/trigger/demo", params=params)
    assert page.status_code == 200 and "within a minute" in page.text
    assert ledger.pending_ids("demo") == ["810000001000001"]
    assert key not in str(page.url)

    tampered = {**params, "id": "810000001000002"}  # the same signature for another record
    assert client.get("/webhooks/trigger/demo", params=tampered).status_code == 401
    assert client.post("/webhooks/trigger/twin", json=params).status_code == 401  # another org, no key
    expired = trigger_params(key, expires=int(time.time()) - 1)
    assert client.post("/webhooks/trigger/demo", json=expired).status_code == 401
    assert client.post("/webhooks/trigger/demo", json={**params, "sig": ""}).status_code == 401
    # Deluge's hmacsha256 gives hex or standard base64: both verify, as a form post too.
    import base64
    import hashlib
    import hmac as hmac_

    from zxsync.webhooks.signing import trigger_message

    raw = hmac_.new(key.encode(), trigger_message("demo", "Invoices", "810000001000003", params["exp"]),
                    hashlib.sha256).digest()
    for sig in (raw.hex(), base64.b64encode(raw).decode()):
        answer = client.post("/webhooks/trigger/demo", data={**params, "id": "810000001000003", "sig": sig})
        assert answer.status_code == 200 and answer.json()["queued"] is True
    assert ledger.pending_ids("demo") == ["810000001000001", "810000001000003"]
    rotate_trigger_key(ledger, "demo-trigger", "demo")  # a rotated key voids old links
    assert client.get("/webhooks/trigger/demo", params=params).status_code == 401


# --- the real server, probed by the Xero sandbox -------------------------------------------------
def test_the_xero_sandbox_passes_intent_to_receive_against_zxsync_webhooks(ledger, orgs) -> None:
    from sandbox.server import start
    from sandbox.xero.app import XeroSandbox
    from zxsync.webhooks import WebhookServer, WebhookSettings

    class NoRuns:
        def start(self, *args: Any, **kwargs: Any) -> str:
            raise AssertionError("no run expected")

        def state(self, run_id: str) -> str:
            return "waiting"

    server = WebhookServer(settings=WebhookSettings(port=0, coalesce_seconds=3600), launcher=NoRuns(),
                           ledger=lambda: ledger, channels_enabled=False)
    xero = start(XeroSandbox(None))
    try:
        url = server.start()
        answer = requests.put(f"{xero.url}/_sandbox/webhooks", json={"url": f"{url}/webhooks/xero/harbour-app",
                                                                     "key": KEY}, timeout=30).json()
        assert answer["status"] == "OK", answer["intent"]
        wrong = requests.put(f"{xero.url}/_sandbox/webhooks", json={"url": f"{url}/webhooks/xero/harbour-app",
                                                                    "key": "not-the-stored-key"}, timeout=30).json()
        assert wrong["status"] == "Intent to receive failed"  # a correctly signed probe got 401
        requests.put(f"{xero.url}/_sandbox/webhooks", json={"url": f"{url}/webhooks/xero/harbour-app", "key": KEY},
                     timeout=30)
        from tests.e2e_support import XeroReader

        contact = XeroReader(xero.url).put("Contacts", {"Contacts": [{"Name": "Evented Ltd"}]})["Contacts"][0]
        wait_until(lambda: ledger.pending_ids("demo") == [contact["ContactID"]], what="the contact's event")
    finally:
        xero.stop()
        server.stop()


def test_a_broken_org_file_does_not_stop_the_other_orgs_events(client, ledger, orgs) -> None:
    (orgs / "broken.yaml").write_text("slug: broken\nname: [unterminated\n")
    body = xero_body(("INVOICE", "UPDATE", "inv-1"))
    assert post_xero(client, body, xero_signature(body, KEY)).status_code == 200
    assert ledger.pending_ids("demo") == ["inv-1"]


def test_cli_stores_keys_and_signs_a_link_the_receiver_accepts(orgs, monkeypatch) -> None:
    from urllib.parse import urlsplit

    from typer.testing import CliRunner

    from zxsync.cli import app
    from zxsync.webhooks.settings import get_webhook_settings

    monkeypatch.setenv("ZX_WEBHOOKS_PUBLIC_URL", "https://sync.example.com")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_webhook_settings.cache_clear()
    runner = CliRunner()
    try:
        made = runner.invoke(app, ["webhooks", "trigger-key", "demo"])
        assert made.exit_code == 0, made.output
        stored = runner.invoke(app, ["webhooks", "xero-key", "harbour-app"], env={"ZX_XERO_WEBHOOK_KEY": KEY})
        assert stored.exit_code == 0 and KEY not in stored.output
        assert "https://sync.example.com/webhooks/xero/harbour-app" in stored.output
        signed = runner.invoke(app, ["webhooks", "sign", "demo", "Invoices", "810000001000042", "--ttl", "300"])
        assert signed.exit_code == 0, signed.output
        link = urlsplit(signed.output.strip())
        assert link.netloc == "sync.example.com" and link.path == "/webhooks/trigger/demo"
        with Ledger.open() as ledger, TestClient(create_app(Intake(lambda: ledger))) as client:
            assert client.get(f"{link.path}?{link.query}").status_code == 200
            assert ledger.pending_ids("demo") == ["810000001000042"]
            body = xero_body(("CONTACT", "UPDATE", "c-1"))
            assert post_xero(client, body, xero_signature(body, KEY)).status_code == 200
        serve = runner.invoke(app, ["webhooks"])
        assert serve.exit_code != 0 and "PREFECT_API_URL" in serve.output
    finally:
        get_webhook_settings.cache_clear()
