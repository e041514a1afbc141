"""Issue 7's scenarios: the complete two-way sync on the sandboxes, each asserting both systems.

Every scenario drives the real flow (``run_sync``) against both sandboxes over loopback HTTP and
then reads Xero and Zoho back through their own APIs with fresh tokens (tests.e2e_support).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.options import RunOptions
from ledger import JournalEntry, Ledger
from tests.e2e_support import XeroReader, ZohoReader, running_sandboxes
from zxsync.onboarding import onboard_sandbox_org
from zxsync.restore import purge, restore
from zxsync.runs import run_sync
from zxsync.settings import REPO_ROOT, get_settings

FIELDS = ["Invoice_Number", "Subject", "Status", "Grand_Total", "Account_Name", "Invoiced_Items", "Xero_Invoice_ID",
          "Xero_Invoice_Number", "Xero_Status", "Xero_Amount_Paid", "Xero_Amount_Due", "Xero_Sync_Status",
          "Xero_Payments"]


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def org_variant(monkeypatch: pytest.MonkeyPatch, folder: Path, slug: str, **changes: Any) -> str:
    """orgs/demo.yaml under another slug with ``changes`` merged in (dotted keys)."""
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    data["slug"] = slug
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()
    return slug


@pytest.fixture()
def boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, onboard=None) as running:
        yield running


def sync(org: str = "demo", **options: Any) -> dict[str, Any]:
    summary = run_sync(org, RunOptions(**options))
    assert summary["state"] == "COMPLETED", summary
    return summary


def rules_of(org: str, run_id: str) -> Counter[str]:
    with Ledger.open() as ledger:
        return Counter(j.rule for j in ledger.journal_for(org, run_id=run_id) if j.rule)


# --- 1 ---------------------------------------------------------------------------------------------
def test_fresh_org_with_purchase_orders_quotes_and_sales_orders(boxes, tmp_path, monkeypatch) -> None:
    org = org_variant(monkeypatch, tmp_path / "orgs", "fresh", **{
        "modules.purchase_orders": {"enabled": True, "direction": "to-xero", "target": "purchase_order"},
        "modules.sales_orders": {"enabled": True, "direction": "to-xero"},
        "modules.quotes": {"enabled": True, "direction": "to-xero"}})
    onboard_sandbox_org(org)
    first = sync(org)
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    orders = xero.all("PurchaseOrders")
    zoho_orders = zoho.records("Purchase_Orders", ["PO_Number", "Xero_PO_ID", "Xero_Number", "Xero_Status"])
    assert len(orders) == len(zoho_orders) == first["purchase_orders"]["created"] > 0
    assert {o["PurchaseOrderID"] for o in orders} == {z["Xero_PO_ID"] for z in zoho_orders}
    drafts = [i for i in xero.all("Invoices", where='Type=="ACCREC"') if i["Status"] == "DRAFT"]
    quotes = zoho.records("Quotes", ["Quote_Number"])
    sales_orders = zoho.records("Sales_Orders", ["SO_Number"])
    references = {i.get("Reference") for i in drafts}
    assert {q["Quote_Number"] for q in quotes} <= references and {s["SO_Number"] for s in sales_orders} <= references
    assert first["quotes"]["created"] == len(quotes) and first["sales_orders"]["created"] == len(sales_orders)
    writes = boxes.writes()
    sync(org)
    assert boxes.writes() == writes


# --- 2 ---------------------------------------------------------------------------------------------
def test_existing_xero_data_is_linked_not_duplicated_and_history_stays(boxes, tmp_path, monkeypatch) -> None:
    org = org_variant(monkeypatch, tmp_path / "orgs", "existing", sync_from="2025-09-01")
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    accounts = zoho.records("Accounts", ["Account_Name"])
    people = zoho.records("Contacts", ["Email", "Account_Name", "First_Name", "Last_Name"])
    products = zoho.records("Products", ["Product_Code", "Product_Name", "Unit_Price"])
    invoices = [i for i in zoho.records("Invoices", ["Invoice_Number", "Invoice_Date", "Account_Name", "Status"])
                if i["Invoice_Date"] >= "2025-09-01" and i["Status"] == "Created" and i.get("Account_Name")]
    by_name = accounts[0]
    person = next(p for p in people if p.get("Email") and p["Account_Name"]["id"] != by_name["id"])
    existing = xero.put("Contacts", {"Contacts": [
        {"Name": by_name["Account_Name"]},
        {"Name": "A different name", "EmailAddress": person["Email"]}]})["Contacts"]
    xero.put("Items", {"Items": [{"Code": products[0]["Product_Code"], "Name": "Existing item"}]})
    invoice = invoices[0]
    xero.put("Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": existing[0]["ContactID"]},
                                        "InvoiceNumber": invoice["Invoice_Number"], "Date": invoice["Invoice_Date"],
                                        "LineItems": [{"Description": "placeholder", "Quantity": 1,
                                                       "UnitAmount": 1, "AccountCode": "200"}]}]})
    onboard_sandbox_org(org)
    summary = sync(org)
    contacts = xero.all("Contacts")
    names = Counter(c["Name"] for c in contacts)
    assert all(n == 1 for n in names.values()), names
    links = {a["id"]: a["Xero_Contact_ID"] for a in zoho.records("Accounts", ["Xero_Contact_ID"])}
    assert links[by_name["id"]] == existing[0]["ContactID"]  # matched by name
    assert links[person["Account_Name"]["id"]] == existing[1]["ContactID"]  # matched by email
    assert Counter(c.get("ContactNumber") for c in contacts)[person["Account_Name"]["id"]] == 1
    codes = Counter(i["Code"] for i in xero.get("Items")["Items"])
    assert codes[products[0]["Product_Code"]] == 1
    numbers = Counter(i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"'))
    assert numbers[invoice["Invoice_Number"]] == 1 and all(n == 1 for n in numbers.values())
    # Nothing dated before sync_from was pushed.
    all_invoices = zoho.records("Invoices", ["Invoice_Number", "Invoice_Date"])
    old = {i["Invoice_Number"] for i in all_invoices if i["Invoice_Date"] < "2025-09-01"}
    assert old and not old & set(numbers)
    # Each old one was skipped (or, for the seed's deliberately bad ones, rejected first).
    assert summary["invoices"]["skipped"] + summary["invoices"]["rejected"] >= len(old)


# --- 3 ---------------------------------------------------------------------------------------------
def test_invoice_lifecycle_with_xero_lock_rules(boxes) -> None:
    onboard_sandbox_org("demo")
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    target = next(i for i in zoho.records("Invoices", FIELDS) if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    xid = target["Xero_Invoice_ID"]
    assert xero.get(f"Invoices/{xid}")["Invoices"][0]["Status"] == "DRAFT"

    zoho.update("Invoices", {"id": target["id"], "Status": "Approved"})
    sync()
    pushed = xero.get(f"Invoices/{xid}", unitdp=4)["Invoices"][0]
    assert pushed["Status"] == "AUTHORISED"
    line_ids = {li["LineItemID"] for li in pushed["LineItems"]}

    row = zoho.record("Invoices", target["id"])["Invoiced_Items"][0]
    zoho.update("Invoices", {"id": target["id"], "Invoiced_Items": [{"id": row["id"], "Quantity": row["Quantity"] + 2}]})
    sync()
    edited = xero.get(f"Invoices/{xid}", unitdp=4)["Invoices"][0]
    assert edited["Status"] == "AUTHORISED" and money(edited["Total"]) > money(pushed["Total"])
    assert {li["LineItemID"] for li in edited["LineItems"]} == line_ids  # Xero kept its lines

    part = float(money(Decimal(str(edited["AmountDue"])) / 3))
    xero.put("Payments", {"Payments": [{"Invoice": {"InvoiceID": xid}, "Account": {"Code": "090"},
                                        "Date": "2025-08-01", "Amount": part, "Reference": "deposit"}]})
    sync()
    record = zoho.record("Invoices", target["id"])
    assert record["Xero_Sync_Status"] == "locked-part-paid" and money(record["Xero_Amount_Paid"]) == money(part)
    assert "deposit" in record["Xero_Payments"]

    row = record["Invoiced_Items"][0]
    zoho.update("Invoices", {"id": target["id"], "Invoiced_Items": [{"id": row["id"], "Quantity": row["Quantity"] + 5}]})
    summary = sync()
    assert money(xero.get(f"Invoices/{xid}")["Invoices"][0]["Total"]) == money(edited["Total"])  # not pushed
    assert rules_of("demo", summary["run_id"])["lock.part_paid"] == 1
    assert zoho.record("Invoices", target["id"])["Xero_Sync_Status"] == "locked-part-paid"
    writes = boxes.writes()
    sync()  # a reported lock is not reported again and again
    assert boxes.writes() == writes

    rest = xero.get(f"Invoices/{xid}")["Invoices"][0]["AmountDue"]
    xero.put("Payments", {"Payments": [{"Invoice": {"InvoiceID": xid}, "Account": {"Code": "090"},
                                        "Date": "2025-08-15", "Amount": rest, "Reference": "balance"}]})
    sync()
    record = zoho.record("Invoices", target["id"])
    assert record["Xero_Status"] == "PAID" and record["Xero_Sync_Status"] == "locked-paid"


# --- 4 and 5 ---------------------------------------------------------------------------------------
def test_credit_notes_and_records_created_in_xero_reach_zoho(boxes) -> None:
    onboard_sandbox_org("demo")
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    target = next(i for i in zoho.records("Invoices", FIELDS) if i.get("Xero_Invoice_ID") and i["Status"] == "Approved")
    invoice = xero.get(f"Invoices/{target['Xero_Invoice_ID']}")["Invoices"][0]
    note = xero.put("CreditNotes", {"CreditNotes": [{
        "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Contact": {"ContactID": invoice["Contact"]["ContactID"]},
        "Date": "2025-08-01", "LineItems": [{"Description": "goodwill", "Quantity": 1, "UnitAmount": 10,
                                             "AccountCode": "200", "TaxType": "NONE"}]}]})["CreditNotes"][0]
    xero.put(f"CreditNotes/{note['CreditNoteID']}/Allocations", {"Allocations": [
        {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 10, "Date": "2025-08-01"}]})

    customer = xero.put("Contacts", {"Contacts": [{"Name": "Born In Xero Ltd", "EmailAddress": "ap@born.example"}]}
                        )["Contacts"][0]
    product = zoho.records("Products", ["Product_Code", "Xero_Item_ID"])[0]
    born = xero.put("Invoices", {"Invoices": [{
        "Type": "ACCREC", "Status": "AUTHORISED", "Contact": {"ContactID": customer["ContactID"]},
        "Date": "2025-08-02", "DueDate": "2025-08-30",
        "LineItems": [{"ItemCode": product["Product_Code"], "Description": "from Xero", "Quantity": 2,
                       "UnitAmount": 50, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})["Invoices"][0]
    sync()
    record = zoho.record("Invoices", target["id"])
    assert money(record["Xero_Amount_Due"]) == money(Decimal(str(invoice["AmountDue"])) - 10)
    assert note["CreditNoteNumber"] in record["Xero_Payments"]
    accounts = {a["Account_Name"]: a for a in zoho.records("Accounts", ["Account_Name", "Xero_Contact_ID"])}
    assert accounts["Born In Xero Ltd"]["Xero_Contact_ID"] == customer["ContactID"]
    created = [i for i in zoho.records("Invoices", FIELDS) if i.get("Xero_Invoice_ID") == born["InvoiceID"]]
    assert len(created) == 1
    assert created[0]["Xero_Invoice_Number"] == born["InvoiceNumber"] and created[0]["Invoice_Number"]
    assert created[0]["Invoice_Number"] != born["InvoiceNumber"]  # both numbers kept
    writes = boxes.writes()
    sync()
    assert boxes.writes() == writes  # no ping-pong of what came from Xero


# --- 6 ---------------------------------------------------------------------------------------------
def test_cancellations_void_or_delete_only_when_the_org_opts_in(boxes, tmp_path, monkeypatch) -> None:
    onboard_sandbox_org("demo")
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    records = [i for i in zoho.records("Invoices", FIELDS) if i.get("Xero_Invoice_ID")]
    draft = next(i for i in records if i["Status"] == "Created")
    approved = next(i for i in records if i["Status"] == "Approved")
    for record in (draft, approved):
        zoho.update("Invoices", {"id": record["id"], "Status": "Cancelled"})
    summary = sync()  # demo does not opt in: reported, untouched
    assert rules_of("demo", summary["run_id"])["cancel.not_enabled"] == 2
    assert xero.get(f"Invoices/{draft['Xero_Invoice_ID']}")["Invoices"][0]["Status"] == "DRAFT"

    org = org_variant(monkeypatch, tmp_path / "orgs", "demo", **{"deletes.enabled": True})
    sync(org)
    assert xero.get(f"Invoices/{draft['Xero_Invoice_ID']}")["Invoices"][0]["Status"] == "DELETED"
    assert xero.get(f"Invoices/{approved['Xero_Invoice_ID']}")["Invoices"][0]["Status"] == "VOIDED"


# --- 8 and 9 ---------------------------------------------------------------------------------------
def test_restore_puts_back_what_a_bad_mapping_changed_and_purge_keeps_links(boxes, tmp_path, monkeypatch) -> None:
    onboard_sandbox_org("demo")
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    target = next(i for i in zoho.records("Invoices", FIELDS) if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    good = {li["AccountCode"] for li in xero.get(f"Invoices/{target['Xero_Invoice_ID']}")["Invoices"][0]["LineItems"]}
    before_bad = datetime.now(UTC)
    org_variant(monkeypatch, tmp_path / "orgs", "demo", **{
        "accounts.by_category": {"Hardware": "270", "Software": "270", "Services": "270"},
        "accounts.by_product_code": {}, "accounts.defaults.invoices": "270"})
    sync("demo", window={"kind": "record-ids", "record_ids": [target["id"]]})
    bad = {li["AccountCode"] for li in xero.get(f"Invoices/{target['Xero_Invoice_ID']}")["Invoices"][0]["LineItems"]}
    assert "270" in bad and bad != good
    result = restore("demo", target["id"], to=before_bad)
    assert result.outcome == "ok", result
    restored = xero.get(f"Invoices/{target['Xero_Invoice_ID']}")["Invoices"][0]["LineItems"]
    assert {li["AccountCode"] for li in restored} == good

    with Ledger.open() as ledger:
        links = len(ledger.links_by_zoho("demo", "invoice"))
        ledger.record([JournalEntry(org="demo", action="update", outcome="ok", entity="invoice", zoho_id="old",
                                    time=datetime.now(UTC) - timedelta(days=40))])
        assert any(j.zoho_id == "old" for j in ledger.journal_for("demo", zoho_id="old"))
    assert purge(30)["journal_and_intents"] >= 1
    with Ledger.open() as ledger:
        assert not ledger.journal_for("demo", zoho_id="old")
        assert len(ledger.links_by_zoho("demo", "invoice")) == links
        assert ledger.journal_for("demo", zoho_id=target["id"])  # recent history stays


# --- 10 --------------------------------------------------------------------------------------------
def test_two_runs_at_once_one_waits_and_nothing_is_written_twice(boxes) -> None:
    onboard_sandbox_org("demo")
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(run_sync("demo", RunOptions()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["state"] for r in results] == ["COMPLETED", "COMPLETED"]
    created = sorted(r["invoices"]["created"] for r in results)
    assert created == [0, 145]  # the second run waited for the first and found everything done
    puts = [k for j in boxes.journal("xero") if j["method"] == "PUT" and j["path"].endswith("/Invoices")
            for k in j["keys"]]
    assert len(puts) == len(set(puts))
