"""Zoho CRM credits (issue 5: "when the remaining credits fall below [the reserve], the run stops
cleanly with a clear message, never mid-batch"), end to end on both sandboxes; plus two small Zoho
sandbox rules: ``per_page`` capped at 200, and the subform update rules on ``Purchase_Items``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_sandbox_zoho_support import ZohoCaller, connected

from flows.options import RunOptions
from ledger import Ledger
from tests.e2e_support import Sandboxes, XeroReader, ZohoReader, running_sandboxes
from zxsync.onboarding import connect_sandbox
from zxsync.runs import format_summary, run_sync
from zxsync.settings import get_settings

#: Credits kept in reserve for the org's other users and integrations in this test.
RESERVE = 25
#: The demo org's credit pool for the day, small enough for a first sync (about 45 credits after
#: onboarding's 31) to reach the reserve part-way, big enough that Zoho's X-API-CREDITS-REMAINING
#: (sent once half the pool is used) shows up before it does.
POOL = 90
DAY = 86400


def _limits(boxes: Sandboxes) -> dict[str, Any]:
    return requests.get(f"{boxes.zoho.url}/_sandbox/limits", timeout=30).json()


def _credits(boxes: Sandboxes) -> dict[str, int]:
    (org,) = _limits(boxes)["orgs"].values()
    return org


@pytest.fixture()
def small_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[Sandboxes]:
    monkeypatch.setenv("ZX_ZOHO_CREDIT_RESERVE", str(RESERVE))
    get_settings.cache_clear()
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        connect_sandbox("demo")
        answer = requests.put(f"{boxes.zoho.url}/_sandbox/limits", json={"credits_per_day": POOL}, timeout=30)
        assert answer.status_code == 200, answer.text
        yield boxes


def _xero_state(boxes: Sandboxes) -> tuple[Counter, Counter]:
    xero = XeroReader(boxes.xero.url)
    contacts = Counter(c.get("ContactNumber") for c in xero.all("Contacts") if c.get("ContactNumber"))
    invoices = Counter(i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"'))
    return contacts, invoices


def test_reaching_the_credit_reserve_stops_the_run_cleanly_and_the_next_run_finishes(small_pool: Sandboxes) -> None:
    boxes = small_pool
    zoho_calls = len(boxes.journal("zoho"))

    stopped = run_sync("demo", RunOptions(trigger="cli"))

    # Failed, with a message naming the reserve, the credits left and when they come back.
    assert stopped["state"] == "FAILED", stopped
    error = stopped["error"]
    assert "credit reserve" in error and f"{RESERVE} are kept in reserve" in error, error
    assert "credits left" in error and "come back" in error and "reset" in error and "UTC" in error, error
    assert "next run" in error
    printed = format_summary(stopped)
    assert "FAILED" in printed and "credit reserve" in printed and "UTC" in printed
    # The run stopped part-way: it had done something (its counts are in the summary) ...
    assert stopped.get("run_id") and sum(v for row in stopped.values() if isinstance(row, dict)
                                         for v in row.values()) > 0, stopped
    first_contacts, first_invoices = _xero_state(boxes)
    assert first_contacts, "the run pushed something before the stop"
    # ... never dipped into the reserve, and was never throttled by Zoho (it stopped itself).
    credits = _credits(boxes)
    assert credits["credits_remaining"] >= RESERVE, credits
    assert boxes.stats("zoho")["rate_limited"] == 0
    assert not [j for j in boxes.journal("zoho", zoho_calls) if j.get("status") == 429]
    # The ledger knows the run failed and what it did; the journal holds what was written.
    with Ledger.open() as ledger:
        run = ledger.get_run(stopped["run_id"])
        assert run is not None and str(getattr(run.state, "value", run.state)) == "failed" and run.counts
        assert ledger.journal_for("demo", run_id=stopped["run_id"])
    # Not everything is synced yet.
    zoho = ZohoReader(boxes.zoho.url)
    invoices = zoho.records("Invoices", ["Invoice_Number", "Xero_Invoice_ID"])
    assert len([i for i in invoices if i.get("Xero_Invoice_ID")]) < len(invoices) - 5

    # A day later the credits are back (Zoho's pool is a rolling 24 hours): the next run completes
    # the rest, and nothing is duplicated.
    requests.put(f"{boxes.zoho.url}/_sandbox/clock", json={"advance_seconds": DAY + 60}, timeout=30).raise_for_status()
    assert _credits(boxes)["credits_used"] == 0
    done = run_sync("demo", RunOptions(trigger="cli"))
    assert done["state"] == "COMPLETED", done

    contacts, xero_invoices = _xero_state(boxes)
    assert all(n == 1 for n in contacts.values()), contacts
    assert all(n == 1 for n in xero_invoices.values()), xero_invoices
    assert first_contacts.keys() <= contacts.keys() and first_invoices.keys() <= xero_invoices.keys()
    zoho = ZohoReader(boxes.zoho.url)  # a fresh token: the old one expired with the clock's jump
    invoices = zoho.records("Invoices", ["Invoice_Number", "Xero_Invoice_ID", "Xero_Sync_Status"])
    good = [i for i in invoices if i.get("Xero_Invoice_ID")]
    assert len(good) == len(invoices) - 5 == len(xero_invoices)  # the demo's 5 deliberate rejects
    assert len({i["Xero_Invoice_ID"] for i in good}) == len(good)
    accounts = zoho.records("Accounts", ["Account_Name", "Xero_Contact_ID"])
    assert all(a.get("Xero_Contact_ID") for a in accounts)
    # Converged: one more run writes nothing anywhere.
    before = boxes.writes()
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    assert boxes.writes() == before


# --- the Zoho sandbox: per_page, and subform rules on Purchase_Items ------------------------------------------


@pytest.fixture()
def zoho(tmp_path: Path) -> Iterator[ZohoCaller]:
    yield from connected(tmp_path)


def test_per_page_is_capped_at_200(zoho: ZohoCaller) -> None:
    """Zoho documents ``per_page`` 1-200 but not the answer to more; the sandbox serves at most 200
    (its README, fidelity note 7), and says so in ``info.per_page``, so a client asking for more
    still pages correctly."""
    asked = zoho.get("/Accounts", fields="Account_Name", per_page=500)
    assert asked.status_code == 200, asked.text
    info = asked.json()["info"]
    assert info["per_page"] == 200 and info["count"] <= 200, info


def _purchase_order(zoho: ZohoCaller, products: list[str], lines: list[tuple[int, float, float]]) -> str:
    vendor = zoho.first("Vendors")["id"]
    body = {"Subject": "Credit reserve PO", "Vendor_Name": {"id": vendor}, "Purchase_Items": [
        {"Product_Name": {"id": products[i]}, "Quantity": qty, "List_Price": price} for i, qty, price in lines]}
    answer = zoho.ok(zoho.post("/Purchase_Orders", {"data": [body], "trigger": []}), 201)
    return answer["data"][0]["details"]["id"]


def test_purchase_items_follow_zohos_subform_rules(zoho: ZohoCaller) -> None:
    products = [p["id"] for p in zoho.ok(zoho.get("/Products", fields="Product_Name", sort_by="id",
                                                  sort_order="asc"))["data"]]
    rid = _purchase_order(zoho, products, [(0, 1, 100.0), (1, 2, 50.0), (2, 3, 10.0)])
    rows = zoho.record("Purchase_Orders", rid)["Purchase_Items"]
    assert len(rows) == 3
    keep, change, drop = (r["id"] for r in rows)

    # A row with id is updated, `_delete` removes one, a row without id is appended; the rest stay.
    zoho.ok(zoho.put("/Purchase_Orders", {"data": [{"id": rid, "Purchase_Items": [
        {"id": change, "Quantity": 5}, {"id": drop, "_delete": None},
        {"Product_Name": {"id": products[3]}, "Quantity": 1, "List_Price": 1}]}]}))
    after = zoho.record("Purchase_Orders", rid)
    lines = after["Purchase_Items"]
    assert [r["id"] for r in lines][:2] == [keep, change] and len(lines) == 3
    assert [(r["Product_Name"]["id"], r["Quantity"]) for r in lines] == [
        (products[0], 1.0), (products[1], 5.0), (products[3], 1.0)]
    assert [r["Sequence_Number"] for r in lines] == [1, 2, 3]
    assert after["Sub_Total"] == 100.0 + 250.0 + 1.0

    # `_delete: true` (the SDK's form) works too; re-sending a row without id appends a duplicate.
    zoho.ok(zoho.put("/Purchase_Orders", {"data": [{"id": rid, "Purchase_Items": [
        {"id": lines[2]["id"], "_delete": True}, {"Product_Name": {"id": products[0]}, "Quantity": 1,
                                                  "List_Price": 100}]}]}))
    again = zoho.record("Purchase_Orders", rid)["Purchase_Items"]
    assert [(r["Product_Name"]["id"], r["Quantity"]) for r in again] == [
        (products[0], 1.0), (products[1], 5.0), (products[0], 1.0)]

    # An unknown row id is refused; the lines stay as they were.
    unknown = zoho.put("/Purchase_Orders", {"data": [{"id": rid, "Purchase_Items": [
        {"id": "8100000019999999999", "Quantity": 1}]}]})
    assert unknown.status_code == 400 and unknown.json()["data"][0]["details"] == {
        "api_name": "id", "json_path": "$.data[0].Purchase_Items[0].id"}
    assert len(zoho.record("Purchase_Orders", rid)["Purchase_Items"]) == 3

    # An empty array removes every row.
    zoho.ok(zoho.put("/Purchase_Orders", {"data": [{"id": rid, "Purchase_Items": []}]}))
    emptied = zoho.record("Purchase_Orders", rid)
    assert emptied["Purchase_Items"] == [] and emptied["Grand_Total"] == 0.0
