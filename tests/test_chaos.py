"""Chaos (issue 10, acceptance 1): an org of thousands of invoices (plus its contacts and items)
synced while 10 % of all calls to both sandboxes fail — 429, 500, 503, slow answers, connections
dropped before and after the commit — converges within three runs: the oracle finds no duplicate,
nothing missing and no differing field, and every run's sync log accounts for every record.

``ZX_CHAOS=full`` (``make chaos``): 2,000 invoices in Xero batches of 50. Otherwise (CI): 250
invoices in batches of 10 — fewer records, as many calls per record, the same fault mix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from flows.options import RunOptions
from ledger import Ledger
from tests.chaos_support import (
    FAULT_KINDS,
    Baseline,
    SandboxOrg,
    SecretWatch,
    call_count,
    chaos_plan,
    injected,
    baseline,
    chaos_size,
    check_accounting,
    clear_faults,
    converged,
    create_org,
    fast_limits,
    harness_database,
    report_rows,
    results_in,
    set_faults,
    sqlite_dump,
    use_orgs_dir,
)
from tests.e2e_support import running_sandboxes
from zxsync.runs import format_summary, run_sync

pytestmark = pytest.mark.chaos

MAX_RUNS = 3


def test_ten_percent_of_calls_failing_converges_within_three_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str]) -> None:
    size = chaos_size()
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    monkeypatch.setenv("ZX_XERO_BATCH_SIZE", str(size.batch_size))
    monkeypatch.setenv("ZX_ORG_LOCK_TTL_SECONDS", "20")
    outputs: list[str] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes, \
            results_in(tmp_path / "prefect-results") as results:
        fast_limits(boxes, monkeypatch)
        org = create_org(boxes, orgs_dir, "chaos", invoices=size.invoices)
        base = baseline(org)
        assert len(base.expected.invoices) == size.invoices and not base.expected.rejects
        watch = SecretWatch(boxes)
        runs: list[dict[str, object]] = []
        report = None
        for attempt in range(1, MAX_RUNS + 1):
            before = {name: injected(getattr(boxes, name).url) for name in ("xero", "zoho")}
            calls = sum(call_count(getattr(boxes, name).url) for name in ("xero", "zoho"))
            for n, name in enumerate(("xero", "zoho")):
                set_faults(getattr(boxes, name).url, chaos_plan(name), seed=1000 * attempt + n)
            summary = run_sync(org.slug, RunOptions(trigger="cli"))
            faults = {}
            for name in ("xero", "zoho"):
                after = clear_faults(getattr(boxes, name).url)
                for kind, total in after.items():
                    faults[kind] = faults.get(kind, 0) + total - before[name].get(kind, 0)
            calls = sum(call_count(getattr(boxes, name).url) for name in ("xero", "zoho")) - calls
            outputs.append(format_summary(summary))
            watch.collect([org.slug])
            report = converged(org, base)
            runs.append({"run": attempt, "state": summary["state"], "faults": faults, "calls": calls,
                         "report": report.text(8), "summary": format_summary(summary)})
            if summary["state"] == "COMPLETED":
                # Every completed run's sync log accounts for every record it looked at.
                assert check_accounting(summary) == [], (attempt, summary)
            else:
                assert summary.get("error"), summary  # a failed run says why
            if summary["state"] == "COMPLETED" and report.converged:
                break
        assert report is not None
        all_faults: dict[str, int] = {}
        for run in runs:
            for kind, n in run["faults"].items():  # type: ignore[union-attr]
                all_faults[kind] = all_faults.get(kind, 0) + n
        total_calls = sum(int(run["calls"]) for run in runs)  # type: ignore[call-overload]
        report_rows(request, "chaos: 10 % of calls failing on both sandboxes", [{
            "scenario": "chaos, 10 % faults", "size": f"{size.invoices} invoices, {total_calls} calls",
            "faults": all_faults,
            "runs": len(runs), "duplicates": report.duplicates, "lost": report.missing,
            "differing": report.differing,
            "outcome": "converged" if report.converged else "NOT converged"}])
        assert report.converged, "\n".join(str(r) for r in runs)
        # The plan really ran: every kind met, at least a tenth of all calls failed or slowed.
        assert set(all_faults) == set(FAULT_KINDS), all_faults
        assert sum(all_faults.values()) >= 0.1 * total_calls, (all_faults, total_calls)
        with Ledger.open() as ledger:
            assert not ledger.pending_intents(org.slug)
        _the_oracle_is_not_blind(org, base)

        # No secret in clear: ZX_HOME (ledger), the Prefect home (database, results), any output.
        watch.collect([org.slug])
        captured = capfd.readouterr()
        home = Path(str(request.getfixturevalue("zx_env")))
        database = harness_database()
        assert watch.files_holding(home, results) == []
        assert watch.in_text(*outputs, captured.out, captured.err,
                             sqlite_dump(database) if database else "") == []


def _the_oracle_is_not_blind(org: SandboxOrg, base: Baseline) -> None:
    """Three planted defects — an extra invoice in Xero, a changed quantity, a lost link in Zoho —
    are exactly what the oracle then reports."""
    xero, zoho = org.xero(), org.zoho()
    draft = next(i for i in xero.all("Invoices", where='Type=="ACCREC"', unitdp=4) if i["Status"] == "DRAFT")
    contact = draft["Contact"]["ContactID"]
    xero.put("Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "InvoiceNumber": "PLANTED-1",
                                         "Date": "2025-07-01", "DueDate": "2025-07-31", "LineItems": [
                                             {"Description": "planted", "Quantity": 1, "UnitAmount": 10,
                                              "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    line = draft["LineItems"][0]
    requests.post(f"{xero.base}/api.xro/2.0/Invoices/{draft['InvoiceID']}", headers=xero.headers, timeout=60, json={
        "InvoiceID": draft["InvoiceID"], "LineItems": [{**{k: line[k] for k in (
            "LineItemID", "Description", "UnitAmount", "AccountCode", "TaxType")}, "Quantity": line["Quantity"] + 1},
            *draft["LineItems"][1:]]}).raise_for_status()
    account = next(iter(base.manifest.accounts))
    zoho.update("Accounts", {"id": account, "Xero_Contact_ID": ""})
    report = converged(org, base)
    zoho_id = next(z for z, inv in base.manifest.invoices.items() if inv["Invoice_Number"] == draft["InvoiceNumber"])
    assert [f.actual for f in report.of("duplicate")] == ["PLANTED-1: no Zoho invoice has this number"], report.text()
    assert report.missing == 0, report.text()
    differing = {(f.record, f.field) for f in report.of("differs")}
    assert {(zoho_id, "Total"), (zoho_id, "line 1 Quantity"), (zoho_id, "line 1 LineAmount"),
            (account, "Xero_Contact_ID")} <= differing, report.text()
    assert {record for record, _ in differing} == {zoho_id, account}, report.text()
