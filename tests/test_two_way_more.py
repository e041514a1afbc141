"""Issue 7, the audit's gaps: per-org journal retention, links left in Zoho by a previous tool, the
last-days rerun window, deferred documents picked up once their contact is fixed, and
``zxsync ledger restore`` through the CLI.

The sync scenarios drive the real flow (``run_sync``) against both sandboxes and read Xero and
Zoho back through their own APIs (tests.e2e_support), like tests/test_two_way.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import update
from typer.testing import CliRunner

from connectors.xero_limits import forget_limiters
from flows.options import RunOptions
from ledger import JournalEntry, Ledger
from ledger.models import IntentRecord
from tests.e2e_support import XeroReader, ZohoReader, running_sandboxes
from zxsync.cli import app
from zxsync.onboarding import onboard_sandbox_org
from zxsync.runs import run_sync
from zxsync.settings import REPO_ROOT, get_settings

INVOICE_FIELDS = ["Invoice_Number", "Invoice_Date", "Status", "Account_Name", "Currency", "Xero_Invoice_ID",
                  "Xero_Sync_Status"]


def org_file(folder: Path, slug: str, **changes: Any) -> Path:
    """orgs/demo.yaml under another slug, with top-level ``changes`` (value ``None`` drops the key)."""
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    data["slug"] = slug
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def use_orgs(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()


def demo_variant(monkeypatch: pytest.MonkeyPatch, folder: Path, **dotted: Any) -> None:
    """The demo org with ``dotted`` keys changed (a new mapping, as an operator would edit it)."""
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    for path, value in dotted.items():
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    use_orgs(monkeypatch, folder)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# --- per-org retention ---------------------------------------------------------------------------
AGES = (5, 10, 25, 60, 100)


def test_purge_honours_each_orgs_retention_and_days_overrides_all(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "orgs"
    org_file(folder, "keeper", retention_days=90)
    org_file(folder, "brief", retention_days=7)
    org_file(folder, "plain", retention_days=None)  # sets none: ZX_RETENTION_DAYS
    (folder / "broken.yaml").write_text("slug: broken\nname: [unclosed\n")  # unreadable: kept whole
    use_orgs(monkeypatch, folder)
    monkeypatch.setenv("ZX_RETENTION_DAYS", "20")
    get_settings.cache_clear()
    now = datetime.now(UTC)
    orgs = ("keeper", "brief", "plain", "orphan", "broken")  # orphan: no org file, the global default
    with Ledger.open() as ledger:
        ledger.record([JournalEntry(org=org, action="update", outcome="ok", entity="invoice",
                                    zoho_id=f"{org}-{age}", time=now - timedelta(days=age))
                       for org in orgs for age in AGES])
        intents = {}
        for org in ("keeper", "plain"):
            intents[org] = ledger.open_intent(org, "invoice", batch_key=f"b-{org}", idempotency_key=f"k-{org}",
                                              natural_keys=[], payload_digest="d")
            ledger.settle_intent(intents[org])
        table = IntentRecord.__table__
        with ledger.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id.in_(list(intents.values())))
                               .values(settled_at=now - timedelta(days=40)))
        ledger.upsert_links("brief", "invoice", [{"zoho_id": "brief-100", "xero_id": "x-100"}])

    result = cli("ledger", "purge")
    assert result.exit_code == 0, result.output
    kept_days = {"keeper": 90, "brief": 7, "plain": 20, "orphan": 20, "broken": 1000}
    with Ledger.open() as ledger:
        for org in orgs:
            left = {j.zoho_id for j in ledger.journal_for(org)}
            assert left == {f"{org}-{age}" for age in AGES if age < kept_days[org]}, org
        # Settled intents follow their org's retention too: keeper keeps its 40-day-old one.
        assert ledger.get_intent(intents["keeper"]) is not None
        assert _intent_gone(ledger, intents["plain"])
        assert set(ledger.links_by_zoho("brief", "invoice")) == {"brief-100"}  # links stay
        # What the housekeeping flow calls (ledger.purge() with no days) applies the same rules.
        assert ledger.purge() == 0

    result = cli("ledger", "purge", "--days", "3")  # explicit: one retention for every org
    assert result.exit_code == 0, result.output
    with Ledger.open() as ledger:
        for org in orgs:
            assert ledger.journal_for(org) == [], org
        assert _intent_gone(ledger, intents["keeper"])


def _intent_gone(ledger: Ledger, intent_id: Any) -> bool:
    try:
        return ledger.get_intent(intent_id) is None
    except KeyError:
        return True


# --- end to end --------------------------------------------------------------------------------
@pytest.fixture()
def boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    # Fresh sandboxes have fresh API budgets: forget the in-process per-tenant limiters of the
    # previous test (same tenant id), which would otherwise wait out its minute budget.
    forget_limiters()
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, onboard=None) as running:
        onboard_sandbox_org("demo")
        yield running


def sync(**options: Any) -> dict[str, Any]:
    summary = run_sync("demo", RunOptions(**options))
    assert summary["state"] == "COMPLETED", summary
    return summary


def good_invoices(zoho: ZohoReader) -> list[dict[str, Any]]:
    """Invoices the demo mapping pushes (after sync_from, a mapped status, an account, NZD)."""
    return [i for i in zoho.records("Invoices", INVOICE_FIELDS)
            if i["Invoice_Date"] >= "2025-01-01" and i["Status"] in ("Created", "Approved")
            and i.get("Account_Name") and i.get("Currency") in (None, "NZD")]


def journal(run_id: str, **match: Any) -> list[Any]:
    with Ledger.open() as ledger:
        return [j for j in ledger.journal_for("demo", run_id=run_id)
                if all(getattr(j, k) == v for k, v in match.items())]


def test_links_left_in_zoho_by_a_previous_tool_are_adopted_not_duplicated(boxes) -> None:
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    invoice = good_invoices(zoho)[0]
    account = invoice["Account_Name"]
    # A previous tool pushed the account and the invoice under other names/numbers (no natural key
    # of ours matches) and left their Xero ids in Zoho's Xero_* fields.
    contact = xero.put("Contacts", {"Contacts": [{"Name": "Legacy tool's name for the account"}]})["Contacts"][0]
    legacy = xero.put("Invoices", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "InvoiceNumber": "LEGACY-0001",
        "Date": invoice["Invoice_Date"], "LineItems": [{"Description": "legacy", "Quantity": 1, "UnitAmount": 1,
                                                        "AccountCode": "200"}]}]})["Invoices"][0]
    zoho.update("Accounts", {"id": account["id"], "Xero_Contact_ID": contact["ContactID"]})
    zoho.update("Invoices", {"id": invoice["id"], "Xero_Invoice_ID": legacy["InvoiceID"]})

    summary = sync()
    adopted = journal(summary["run_id"], action="adopt-link")
    assert {(j.entity, j.zoho_id, j.xero_id) for j in adopted} >= {
        ("contact", account["id"], contact["ContactID"]), ("invoice", invoice["id"], legacy["InvoiceID"])}
    # Xero: the legacy records were updated in place, never created a second time.
    contacts = xero.all("Contacts")
    assert [c["ContactID"] for c in contacts if c.get("ContactNumber") == account["id"]
            or c["ContactID"] == contact["ContactID"]] == [contact["ContactID"]]
    assert Counter(c["Name"] for c in contacts)[account["name"]] == 1
    invoices = xero.all("Invoices", where='Type=="ACCREC"')
    numbers = Counter(i["InvoiceNumber"] for i in invoices)
    assert numbers[invoice["Invoice_Number"]] == 1 and all(n == 1 for n in numbers.values()), numbers
    mine = [i for i in invoices if i["InvoiceNumber"] == invoice["Invoice_Number"]]
    assert [i["InvoiceID"] for i in mine] == [legacy["InvoiceID"]] and "LEGACY-0001" not in numbers
    assert mine[0]["Contact"]["ContactID"] == contact["ContactID"]
    # Zoho: the ids the previous tool left are the links we keep.
    assert zoho.record("Accounts", account["id"])["Xero_Contact_ID"] == contact["ContactID"]
    record = zoho.record("Invoices", invoice["id"])
    assert record["Xero_Invoice_ID"] == legacy["InvoiceID"] and record["Xero_Sync_Status"] == "synced"
    writes = boxes.writes()
    sync()
    assert boxes.writes() == writes


def test_a_last_days_window_rereads_records_older_than_the_watermark(boxes, tmp_path, monkeypatch) -> None:
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    target = next(i for i in good_invoices(zoho) if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    xid = target["Xero_Invoice_ID"]
    good = {li["AccountCode"] for li in xero.get(f"Invoices/{xid}")["Invoices"][0]["LineItems"]}
    assert "270" not in good
    # Later, one other invoice is edited and synced: the Invoices watermark moves past every record
    # the first run read and wrote back (the overlap included).
    requests.put(f"{boxes.zoho.url}/_sandbox/clock", json={"advance_seconds": 900}, timeout=30).raise_for_status()
    other = next(i for i in zoho.records("Invoices", INVOICE_FIELDS) if i["Status"] == "On Hold")
    zoho.update("Invoices", {"id": other["id"], "Subject": "edited later"})
    sync(modules=["invoices"])
    with Ledger.open() as ledger:
        mark = ledger.get_watermark("demo", "zoho:Invoices")
    assert mark is not None and mark > datetime.now(UTC) + timedelta(minutes=10)
    # A mapping change touches no Zoho record: since the last run, nothing changed.
    demo_variant(monkeypatch, tmp_path / "orgs", **{
        "accounts.by_category": {"Hardware": "270", "Software": "270", "Services": "270"},
        "accounts.by_product_code": {}, "accounts.defaults.invoices": "270"})
    quiet = sync(modules=["invoices"])
    assert quiet["invoices"]["updated"] == 0
    assert {li["AccountCode"] for li in xero.get(f"Invoices/{xid}")["Invoices"][0]["LineItems"]} == good
    # The rerun tool reads everything modified in the window again, older than the watermark or not.
    rerun = sync(modules=["invoices"], window={"kind": "last-days", "days": 3650})
    assert rerun["invoices"]["updated"] >= 1
    codes = {li["AccountCode"] for li in xero.get(f"Invoices/{xid}")["Invoices"][0]["LineItems"]}
    assert "270" in codes and codes != good
    assert any(j.zoho_id == target["id"] and j.action == "update" and j.outcome == "ok"
               for j in journal(rerun["run_id"]))
    numbers = Counter(i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"'))
    assert all(n == 1 for n in numbers.values()), numbers  # updated in place, nothing re-created


def test_a_document_deferred_by_its_failed_contact_goes_through_once_the_contact_is_fixed(
        boxes, tmp_path, monkeypatch) -> None:
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    # The demo's country lookup made strict (every country the seed uses listed): a country missing
    # from it rejects the account.
    seen = {a["Billing_Country"] for a in zoho.records("Accounts", ["Billing_Country"]) if a.get("Billing_Country")}
    assert "ZZ" not in seen
    contacts = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())["fields"]["contacts"]
    country = next(m for m in contacts if m["source"] == "Billing_Country")
    for transform in country["transforms"]:
        if isinstance(transform, dict) and "lookup" in transform:
            transform["lookup"] = {**{c: c for c in seen}, **transform["lookup"]}
            transform["strict"] = True
    demo_variant(monkeypatch, tmp_path / "orgs", **{"fields.contacts": contacts})
    invoice = good_invoices(zoho)[0]
    account = invoice["Account_Name"]
    # "ZZ" is not in the lookup: the account is rejected, its invoices must wait.
    zoho.update("Accounts", {"id": account["id"], "Billing_Country": "ZZ"})
    first = sync()
    with Ledger.open() as ledger:
        contact_link = ledger.links_by_zoho("demo", "contact", [account["id"]]).get(account["id"])
        invoice_link = ledger.links_by_zoho("demo", "invoice", [invoice["id"]]).get(invoice["id"])
    assert contact_link is not None and contact_link.state == "rejected" and not contact_link.xero_id
    assert invoice_link is not None and invoice_link.state == "deferred" and not invoice_link.xero_id
    deferred = journal(first["run_id"], zoho_id=invoice["id"], outcome="deferred")
    assert deferred and deferred[-1].rule.startswith(("dependency.contact_failed", "contact.not_linked"))
    assert first["contacts"]["rejected"] == 1  # only that account
    numbers = {i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"')}
    assert invoice["Invoice_Number"] not in numbers
    assert not zoho.record("Invoices", invoice["id"]).get("Xero_Invoice_ID")

    zoho.update("Accounts", {"id": account["id"], "Billing_Country": "NZ"})  # the invoice itself is untouched
    second = sync()
    assert second["invoices"]["created"] >= 1
    contacts = [c for c in xero.all("Contacts") if c.get("ContactNumber") == account["id"]]
    assert len(contacts) == 1
    mine = [i for i in xero.all("Invoices", where='Type=="ACCREC"') if i["InvoiceNumber"] == invoice["Invoice_Number"]]
    assert len(mine) == 1 and mine[0]["Contact"]["ContactID"] == contacts[0]["ContactID"]
    record = zoho.record("Invoices", invoice["id"])
    assert record["Xero_Invoice_ID"] == mine[0]["InvoiceID"] and record["Xero_Sync_Status"] == "synced"
    writes = boxes.writes()
    sync()
    assert boxes.writes() == writes  # no longer retried once it went through


def test_ledger_restore_through_the_cli_puts_the_earlier_payload_back(boxes, tmp_path, monkeypatch) -> None:
    sync()
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    target = next(i for i in good_invoices(zoho) if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    xid = target["Xero_Invoice_ID"]
    good = {li["AccountCode"] for li in xero.get(f"Invoices/{xid}")["Invoices"][0]["LineItems"]}
    before_bad = datetime.now(UTC)
    demo_variant(monkeypatch, tmp_path / "orgs", **{
        "accounts.by_category": {"Hardware": "270", "Software": "270", "Services": "270"},
        "accounts.by_product_code": {}, "accounts.defaults.invoices": "270"})
    sync(window={"kind": "record-ids", "record_ids": [target["id"]]})
    bad = {li["AccountCode"] for li in xero.get(f"Invoices/{xid}")["Invoices"][0]["LineItems"]}
    assert "270" in bad and bad != good

    missing = cli("ledger", "restore", "demo", "no-such-record")
    assert missing.exit_code == 2
    result = cli("ledger", "restore", "demo", target["Invoice_Number"], "--to", before_bad.isoformat())
    assert result.exit_code == 0, result.output
    assert "restored" in result.output
    restored = xero.get(f"Invoices/{xid}")["Invoices"][0]
    assert {li["AccountCode"] for li in restored["LineItems"]} == good
    assert restored["InvoiceNumber"] == target["Invoice_Number"]
    with Ledger.open() as ledger:
        entries = [j for j in ledger.journal_for("demo", zoho_id=target["id"]) if j.action == "restore"]
    assert [j.outcome for j in entries] == ["ok"]
    count = Counter(i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"'))
    assert count[target["Invoice_Number"]] == 1
