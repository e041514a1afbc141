"""End to end (issue 2's acceptance): the demo organisation synced by the Prefect flow against both
sandboxes over loopback HTTP, checked against the sandboxes' own data."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flows.options import RunOptions
from ledger import Ledger
from tests.e2e_support import XeroReader, ZohoReader, running_sandboxes
from zxsync.onboarding import connect_sandbox
from zxsync.runs import run_sync

INVOICE_FIELDS = ["Invoice_Number", "Status", "Grand_Total", "Account_Name", "Currency", "Invoiced_Items",
                  "Xero_Invoice_ID", "Xero_Invoice_Number", "Xero_Status", "Xero_Amount_Paid", "Xero_Amount_Due",
                  "Xero_Sync_Status", "Xero_Payments"]
#: The demo seed's deliberate rejects (docs/demo-universe.md) and the rule each must hit.
BAD_RULES = {"status.unmapped", "tax.unmapped", "contact.missing", "currency.not_enabled", "date.before_year_lock"}


@pytest.fixture()
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        connect_sandbox("demo")
        yield boxes


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def test_first_sync_pushes_every_good_record_and_rejects_the_bad_ones(demo) -> None:
    summary = run_sync("demo", RunOptions(trigger="cli"))
    assert summary["state"] == "COMPLETED", summary
    xero, zoho = XeroReader(demo.xero.url), ZohoReader(demo.zoho.url)

    # One Xero contact per Zoho account and vendor, linked by ContactNumber = the Zoho id.
    # ("Walk-in Customer" was born in Xero: it comes the other way, into Zoho, linked by its ContactID.)
    accounts = zoho.records("Accounts", ["Account_Name", "Xero_Contact_ID"])
    vendors = zoho.records("Vendors", ["Vendor_Name", "Xero_Contact_ID"])
    contacts = xero.all("Contacts")
    by_number = Counter(c.get("ContactNumber") for c in contacts)
    born_in_xero = [a for a in accounts if a["Account_Name"] == "Walk-in Customer"]
    assert [a["Xero_Contact_ID"] for a in born_in_xero] == [c["ContactID"] for c in contacts
                                                            if c["Name"] == "Walk-in Customer"]
    pushed = [r for r in accounts + vendors if r not in born_in_xero]
    for record in pushed:
        assert by_number[record["id"]] == 1, record
        assert record["Xero_Contact_ID"] in {c["ContactID"] for c in contacts if c.get("ContactNumber") == record["id"]}
    assert summary["contacts"]["created"] + summary["vendors"]["created"] == len(pushed)

    # One ACCREC invoice per good Zoho invoice, totals equal under Xero's per-line rounding.
    invoices = zoho.records("Invoices", INVOICE_FIELDS)
    xero_invoices = {i["InvoiceID"]: i for i in xero.all("Invoices", where='Type=="ACCREC"', unitdp=4)}
    good = [i for i in invoices if i.get("Xero_Invoice_ID")]
    bad = [i for i in invoices if not i.get("Xero_Invoice_ID")]
    assert len(good) == len(xero_invoices) == summary["invoices"]["created"] == len(invoices) - 5
    for record in good:
        pushed = xero_invoices[record["Xero_Invoice_ID"]]
        assert pushed["InvoiceNumber"] == record["Invoice_Number"]
        assert _money(pushed["Total"]) == _money(record["Grand_Total"]), record["Invoice_Number"]
        zoho_tax = sum(_money(t.get("value")) for row in record["Invoiced_Items"] for t in row.get("Line_Tax") or [])
        assert _money(pushed["TotalTax"]) == zoho_tax, record["Invoice_Number"]
        zoho_lines = Counter((_money(r["Quantity"]), Decimal(str(r["List_Price"]))) for r in record["Invoiced_Items"])
        xero_lines = Counter((_money(li["Quantity"]), Decimal(str(li["UnitAmount"]))) for li in pushed["LineItems"])
        assert not zoho_lines - xero_lines, record["Invoice_Number"]
        assert record["Xero_Invoice_Number"] == pushed["InvoiceNumber"] and record["Xero_Sync_Status"] == "synced"

    # Each bad record is rejected with its reason, in Zoho and in the ledger's journal.
    assert len(bad) == 5
    for record in bad:
        assert record["Xero_Sync_Status"].startswith("rejected: "), record
    with Ledger.open() as ledger:
        rules = {j.rule for j in ledger.journal_for("demo", run_id=summary["run_id"]) if j.outcome == "rejected"}
    assert BAD_RULES <= rules


def test_second_run_writes_nothing(demo) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    before = demo.writes()
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    assert demo.writes() == before


def test_payments_in_xero_reach_zoho(demo) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    xero, zoho = XeroReader(demo.xero.url), ZohoReader(demo.zoho.url)
    authorised = [i for i in xero.all("Invoices", where='Type=="ACCREC"') if i["Status"] == "AUTHORISED"]
    full, part = authorised[0], authorised[1]
    half = float(_money(Decimal(str(part["AmountDue"])) / 2))
    xero.put("Payments", {"Payments": [
        {"Invoice": {"InvoiceID": full["InvoiceID"]}, "Account": {"Code": "090"}, "Date": "2025-07-01",
         "Amount": full["AmountDue"], "Reference": "paid in full"},
        {"Invoice": {"InvoiceID": part["InvoiceID"]}, "Account": {"Code": "090"}, "Date": "2025-07-02",
         "Amount": half, "Reference": "first half"}]})
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    by_xero = {i["Xero_Invoice_ID"]: i for i in zoho.records("Invoices", INVOICE_FIELDS) if i.get("Xero_Invoice_ID")}
    paid, partly = by_xero[full["InvoiceID"]], by_xero[part["InvoiceID"]]
    assert paid["Xero_Status"] == "PAID" and _money(paid["Xero_Amount_Due"]) == 0
    assert _money(paid["Xero_Amount_Paid"]) == _money(full["AmountDue"])
    assert paid["Xero_Sync_Status"] == "locked-paid"
    assert partly["Xero_Status"] == "AUTHORISED" and _money(partly["Xero_Amount_Paid"]) == _money(half)
    assert _money(partly["Xero_Amount_Due"]) == _money(Decimal(str(part["AmountDue"])) - _money(half))
    assert partly["Xero_Sync_Status"] == "locked-part-paid"
    assert "first half" in (partly.get("Xero_Payments") or "")


def test_an_edited_zoho_invoice_is_the_only_write(demo) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    zoho = ZohoReader(demo.zoho.url)
    target = next(i for i in zoho.records("Invoices", INVOICE_FIELDS)
                  if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    row = target["Invoiced_Items"][0]
    zoho.update("Invoices", {"id": target["id"], "Invoiced_Items": [{"id": row["id"], "Quantity": row["Quantity"] + 1}]})
    mark = len(demo.journal("xero"))
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    writes = [j for j in demo.journal("xero", mark) if j["method"] in ("PUT", "POST", "DELETE")]
    assert [(w["method"], w["path"], w["keys"]) for w in writes] == [
        ("POST", "/api.xro/2.0/Invoices", [target["Invoice_Number"]])]


def test_a_first_dry_run_predicts_the_first_run(demo) -> None:
    before = demo.writes()  # onboarding created the Xero_* fields in Zoho
    dry = run_sync("demo", RunOptions(dry_run=True))
    assert dry["state"] == "COMPLETED" and demo.writes() == before
    real = run_sync("demo", RunOptions())
    for entity in ("contacts", "vendors", "items", "invoices", "purchase_orders"):
        assert dry[entity]["would_create"] == real[entity]["created"], entity
    assert dry["invoices"]["rejected"] == real["invoices"]["rejected"] == 5
