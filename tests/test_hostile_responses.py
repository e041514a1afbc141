"""Hostile answers (issue 10, acceptance 5): HTML 502 pages, truncated JSON, the wrong content type
and empty 200s, from both sandboxes, on reads, writes, inserts and token refreshes. Each is retried
or fails the run with a clear error; nothing is recorded as synced that wasn't; the next run
converges with no duplicate — including the records born in Xero that the sync inserts into Zoho,
whose insert is the one write that carries no idempotency key.

The first test pins the sandbox frame's new fault kinds themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from flows.options import RunOptions
from ledger import Ledger
from sandbox.server import start
from tests.chaos_support import (
    SandboxOrg,
    SecretWatch,
    baseline,
    check_accounting,
    clear_faults,
    converged,
    create_org,
    delta,
    fast_limits,
    injected,
    report_rows,
    results_in,
    set_faults,
    use_orgs_dir,
)
from tests.e2e_support import running_sandboxes
from tests.test_sandbox_common import CounterSandbox
from zxsync.runs import format_summary, run_sync

pytestmark = pytest.mark.chaos

HOSTILE = ("html_502", "truncated", "wrong_type", "empty_200")
XERO_INVOICES = "/api.xro/2.0/Invoices"


# --- the frame ---------------------------------------------------------------------------------------
@pytest.fixture()
def toy(tmp_path: Path):
    running = start(CounterSandbox(tmp_path))
    yield running
    running.stop()


def test_hostile_answer_kinds_of_the_sandbox_frame(toy) -> None:
    url = toy.url
    rules = [{"method": "PUT", "path": f"/things/{kind}", "kind": kind, "count": 1} for kind in HOSTILE]
    requests.put(f"{url}/_sandbox/faults", json={"rules": rules}).raise_for_status()
    answers = {kind: requests.put(f"{url}/things/{kind}") for kind in HOSTILE}

    gateway = answers["html_502"]
    assert gateway.status_code == 502 and gateway.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in gateway.text
    truncated = answers["truncated"]
    assert truncated.status_code == 200 and truncated.headers["content-type"].startswith("application/json")
    assert truncated.content and len(truncated.content) == int(truncated.headers["content-length"])
    with pytest.raises(ValueError):
        json.loads(truncated.text)
    assert json.dumps({"id": "truncated"}).replace(" ", "").startswith(truncated.text.replace(" ", ""))
    wrong = answers["wrong_type"]
    assert wrong.status_code == 200 and wrong.headers["content-type"].startswith("text/html")
    assert json.loads(wrong.text) == {"id": "wrong_type"}  # the real answer, mislabelled
    empty = answers["empty_200"]
    assert empty.status_code == 200 and empty.content == b""

    # The gateway page never reached the API; the three garbled answers were committed first.
    assert sorted(requests.get(f"{url}/things").json()) == ["empty_200", "seeded", "truncated", "wrong_type"]
    assert requests.get(f"{url}/_sandbox/stats").json()["writes"] == 3
    journal = requests.get(f"{url}/_sandbox/journal").json()
    assert [(j["fault"], j["status"]) for j in journal[:4]] == [("html_502", 502), ("truncated", 200),
                                                           ("wrong_type", 200), ("empty_200", 200)]
    # Counted once each, then gone.
    assert requests.get(f"{url}/_sandbox/faults").json()["injected"] == {k: 1 for k in HOSTILE}
    assert all(requests.put(f"{url}/things/{kind}").status_code == 200 for kind in HOSTILE)


# --- through the whole sync -------------------------------------------------------------------------
def _born_in_xero(org: SandboxOrg, base: Any) -> dict[str, str]:
    """A customer and an invoice typed straight into Xero (the sync inserts them into Zoho); the
    invoice sells an item Xero already had under a Zoho product's code (linked by the first sync)."""
    xero = org.xero()
    product = next(p for p in base.manifest.products.values())
    xero.put("Items", {"Items": [{"Code": product["Product_Code"], "Name": product["Product_Name"],
                                  "SalesDetails": {"UnitPrice": product["Unit_Price"], "AccountCode": "200"}}]})
    contact = xero.put("Contacts", {"Contacts": [{"Name": "Walk-in Buyer", "EmailAddress": "walkin@buyer.example"}]})
    contact_id = contact["Contacts"][0]["ContactID"]
    invoice = xero.put("Invoices", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Status": "AUTHORISED", "Date": "2025-07-03",
        "DueDate": "2025-08-03", "LineItems": [{"ItemCode": product["Product_Code"], "Description": "Counter sale",
                                                 "Quantity": 2, "UnitAmount": 45, "AccountCode": "200",
                                                 "TaxType": "OUTPUT2"}]}]})
    return {contact_id: "Accounts", invoice["Invoices"][0]["InvoiceID"]: "Invoices"}


def _synced_claims(org: SandboxOrg) -> list[str]:
    """Everything that says "synced" but is not in Xero: ledger links and Zoho's Xero_* fields."""
    xero = org.xero()
    contacts = {c["ContactID"] for c in xero.all("Contacts")}
    invoices = {i["InvoiceID"] for i in xero.all("Invoices", where='Type=="ACCREC"')}
    items = {i["ItemID"] for i in xero.get("Items")["Items"]}
    lies: list[str] = []
    with Ledger.open() as ledger:
        for entity, known in (("contact", contacts), ("item", items), ("invoice", invoices)):
            for zoho_id, link in ledger.links_by_zoho(org.slug, entity).items():
                if link.xero_id and link.xero_id not in known:
                    lies.append(f"ledger {entity} {zoho_id} -> {link.xero_id} ({link.state}) not in Xero")
    zoho = org.zoho()
    for record in zoho.records("Invoices", ["Invoice_Number", "Xero_Invoice_ID", "Xero_Sync_Status"]):
        if record.get("Xero_Invoice_ID") and record["Xero_Invoice_ID"] not in invoices:
            lies.append(f"Zoho invoice {record['Invoice_Number']} points at a Xero invoice that does not exist")
        if record.get("Xero_Sync_Status") == "synced" and not record.get("Xero_Invoice_ID"):
            lies.append(f"Zoho invoice {record['Invoice_Number']} says synced without a Xero invoice")
    for module, field, known in (("Accounts", "Xero_Contact_ID", contacts), ("Products", "Xero_Item_ID", items)):
        for record in zoho.records(module, [field]):
            if record.get(field) and record[field] not in known:
                lies.append(f"Zoho {module} {record['id']} points at a Xero record that does not exist")
    return lies


ONCE_EACH = [
    # Xero: reads, writes (the idempotency key replays what the lost answer hid), the token endpoint.
    ("xero", "GET", XERO_INVOICES, "html_502"), ("xero", "GET", "/api.xro/2.0/Organisation", "truncated"),
    ("xero", "GET", "/api.xro/2.0/Contacts", "wrong_type"), ("xero", "GET", "/api.xro/2.0/Items", "empty_200"),
    ("xero", "PUT", XERO_INVOICES, "html_502"), ("xero", "PUT", XERO_INVOICES, "truncated"),
    ("xero", "PUT", XERO_INVOICES, "wrong_type"), ("xero", "PUT", XERO_INVOICES, "empty_200"),
    ("xero", "PUT", "/api.xro/2.0/Contacts", "truncated"), ("xero", "PUT", "/api.xro/2.0/Items", "empty_200"),
    ("xero", "POST", "/connect/token", "empty_200"),
    # Zoho: reads, COQL, write-backs, and the inserts of records born in Xero (no idempotency key).
    ("zoho", "GET", "/crm/v8/Invoices", "truncated"), ("zoho", "POST", "/crm/v8/coql", "html_502"),
    ("zoho", "GET", "/crm/v8/settings/fields", "wrong_type"), ("zoho", "PUT", "/crm/v8/Invoices", "wrong_type"),
    ("zoho", "PUT", "/crm/v8/Accounts", "empty_200"), ("zoho", "POST", "/crm/v8/Accounts", "truncated"),
    ("zoho", "POST", "/crm/v8/Invoices", "empty_200"), ("zoho", "POST", "/oauth/v2/token", "html_502"),
]


def test_every_hostile_answer_is_retried_or_fails_clearly_and_nothing_false_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str]) -> None:
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    monkeypatch.setenv("ZX_XERO_BATCH_SIZE", "10")
    monkeypatch.setenv("ZX_TASK_RETRIES", "1")
    outputs: list[str] = []
    rows: list[dict[str, Any]] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes, \
            results_in(tmp_path / "prefect-results") as results:
        fast_limits(boxes, monkeypatch)
        org = create_org(boxes, orgs_dir, "garbled", invoices=60)
        base = baseline(org)
        base.expected.xero_born.update(_born_in_xero(org, base))
        watch = SecretWatch(boxes)
        # Both tokens have to be fetched again, through the hostile token endpoints.
        with Ledger.open() as ledger:
            for system in ("xero", "zoho"):
                conn = ledger.load_connection(org.slug, system)
                ledger.save_connection(conn.model_copy(update={"access_token": None, "access_expires_at": None}))
        watch.collect([org.slug])

        # 1. Each hostile kind once on each kind of call: retried, the run completes and converges.
        for system in ("xero", "zoho"):
            set_faults(getattr(boxes, system).url, [
                {"method": method, "path": path, "kind": kind, "count": 1}
                for s, method, path, kind in ONCE_EACH if s == system])
        first = run_sync(org.slug, RunOptions(trigger="cli"))
        fired = {s: clear_faults(getattr(boxes, s).url) for s in ("xero", "zoho")}
        outputs.append(format_summary(first))
        watch.collect([org.slug])
        assert first["state"] == "COMPLETED", first
        assert check_accounting(first) == [], (check_accounting(first), first)
        assert all(fired[s].get(k) for s, _, _, k in ONCE_EACH), fired
        report = converged(org, base)
        assert _synced_claims(org) == []
        runs = 1
        if not report.converged:  # an insert whose answer was lost is settled by the next run
            second = run_sync(org.slug, RunOptions(trigger="cli"))
            outputs.append(format_summary(second))
            runs += 1
            report = converged(org, base)
        assert report.converged, report.text()
        rows.append({"scenario": "hostile answers, once each", "size": "60 invoices + 2 born in Xero",
                     "faults": {f"{s}:{k}": n for s in fired for k, n in fired[s].items()}, "runs": runs,
                     "duplicates": report.duplicates, "lost": report.missing, "differing": report.differing,
                     "outcome": "converged"})

        # 2. A gateway that answers every invoice write with its HTML page: the run fails, saying so;
        #    nothing it could not write is recorded as written; the next run catches up.
        zoho = org.zoho()
        edited = [r for r in zoho.records("Invoices", ["Invoice_Number", "Invoiced_Items", "Status"])
                  if r["Status"] == "Created" and r["id"] in base.manifest.invoices][:12]
        for record in edited:
            row = record["Invoiced_Items"][0]
            zoho.update("Invoices", {"id": record["id"], "Invoiced_Items": [{"id": row["id"],
                                                                          "Quantity": row["Quantity"] + 1}]})
        base = baseline_after_edit(org, base)
        before = injected(boxes.xero.url)
        set_faults(boxes.xero.url, [{"method": "POST", "path": XERO_INVOICES, "kind": "html_502"}])
        failed = run_sync(org.slug, RunOptions(trigger="cli"))
        gateway = delta(clear_faults(boxes.xero.url), before)
        outputs.append(format_summary(failed))
        assert failed["state"] == "FAILED", failed
        assert "HTTP 502" in failed["error"] and "Bad Gateway" in failed["error"], failed["error"]
        assert _synced_claims(org) == []
        with Ledger.open() as ledger:
            journal = ledger.journal_for(org.slug, run_id=None)
        assert not [j for j in journal if j.action == "update" and j.outcome == "ok"
                    and j.zoho_id in {r["id"] for r in edited}], "an update Xero never took is journaled as done"
        after = run_sync(org.slug, RunOptions(trigger="cli"))
        outputs.append(format_summary(after))
        assert after["state"] == "COMPLETED" and after["invoices"]["updated"] == len(edited), after
        report = converged(org, base)
        assert report.converged, report.text()
        rows.append({"scenario": "every invoice update answered by an HTML 502", "size": f"{len(edited)} edits",
                     "faults": gateway, "runs": 2, "duplicates": report.duplicates, "lost": report.missing,
                     "differing": report.differing, "outcome": "failed clearly, then converged"})

        # 3. A gateway that loses every invoice-create answer after Xero committed it (empty 200s
        #    forever): the creates are found by lookup, never sent twice.
        new = _new_invoices(org, 15)
        base = baseline_after_edit(org, base)
        before = injected(boxes.xero.url)
        set_faults(boxes.xero.url, [{"method": "PUT", "path": XERO_INVOICES, "kind": "empty_200"}])
        blind = run_sync(org.slug, RunOptions(trigger="cli"))
        lost_answers = delta(clear_faults(boxes.xero.url), before)
        outputs.append(format_summary(blind))
        runs = 1
        if blind["state"] != "COMPLETED":
            assert "empty response body" in blind["error"] or "outcome unknown" in blind["error"], blind
            blind = run_sync(org.slug, RunOptions(trigger="cli"))
            outputs.append(format_summary(blind))
            runs += 1
        assert blind["state"] == "COMPLETED", blind
        assert blind["invoices"]["healed"] + blind["invoices"]["created"] + blind["invoices"]["unchanged"] >= len(new)
        report = converged(org, base)
        assert report.converged, report.text()
        assert _synced_claims(org) == []
        rows.append({"scenario": "every invoice create answered by an empty 200", "size": f"{len(new)} invoices",
                     "faults": lost_answers, "runs": runs, "duplicates": report.duplicates,
                     "lost": report.missing, "differing": report.differing, "outcome": "healed by lookup"})

        report_rows(request, "hostile answers", rows)
        watch.collect([org.slug])
        captured = capfd.readouterr()
        home = Path(str(request.getfixturevalue("zx_env")))
        assert watch.files_holding(home, results) == []
        assert watch.in_text(*outputs, captured.out, captured.err) == []
        with Ledger.open() as ledger:
            for system in ("xero", "zoho"):
                assert ledger.load_connection(org.slug, system).broken_reason is None


def baseline_after_edit(org: SandboxOrg, base: Any) -> Any:
    """The oracle's expectations re-read after the test edited Zoho itself (Xero-born copies kept)."""
    fresh = baseline(org)
    fresh.expected.xero_born.update(base.expected.xero_born)
    # Records created in Zoho from Xero are part of the manifest now; they stay Xero's copies.
    born_zoho = {z for z, r in fresh.manifest.invoices.items() if r.get("Xero_Invoice_ID") in base.expected.xero_born}
    born_zoho |= {z for z, r in fresh.manifest.accounts.items() if r.get("Xero_Contact_ID") in base.expected.xero_born}
    for zoho_id in born_zoho:
        fresh.manifest.invoices.pop(zoho_id, None)
        fresh.manifest.accounts.pop(zoho_id, None)
        fresh.expected.invoices.pop(zoho_id, None)
        fresh.expected.contacts.pop(zoho_id, None)
    return fresh


def _new_invoices(org: SandboxOrg, n: int) -> list[str]:
    from tests.chaos_support import zoho_insert

    zoho = org.zoho()
    account = next(r["id"] for r in zoho.records("Accounts", ["Account_Name"])
                   if r["Account_Name"].startswith("Customer "))
    product = next(r["id"] for r in zoho.records("Products", ["Product_Code"])
                   if str(r.get("Product_Code") or "").startswith("GEN-"))
    return [zoho_insert(zoho, "Invoices", {
        "Subject": f"Blind create {k}", "Account_Name": {"id": account}, "Invoice_Date": "2025-08-01",
        "Due_Date": "2025-08-31", "Status": "Approved", "Currency": "NZD", "Invoiced_Items": [
            {"Product_Name": {"id": product}, "Quantity": k + 1, "Line_Tax": [{"name": "GST 15%"}]}]})
        for k in range(n)]
