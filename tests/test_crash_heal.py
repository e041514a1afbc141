"""No duplicate after a crash (issues 4 and 7): the sync process is killed after Xero committed a
batch and before the ledger recorded it; Xero's 6-minute idempotency window is long gone when the
next run comes; that run settles the write-ahead intent by lookup and every record exists once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prefect.settings import get_current_settings

from flows.options import RunOptions
from ledger import Ledger
from tests.e2e_support import Sandboxes, XeroReader, ZohoReader, running_sandboxes
from zxsync.runs import run_sync

ZXSYNC = str(Path(sys.executable).with_name("zxsync"))

# (fault on which batch, how to tell Xero committed it, what must exist exactly once afterwards)
CASES = {
    # The first PUT /Contacts carries the 40 Zoho Accounts.
    "contact batch": ("/api.xro/2.0/Contacts", 0),
    # The first PUT /Invoices is the first batch of 50 ACCREC invoices.
    "ACCREC invoice batch": ("/api.xro/2.0/Invoices", 0),
    # After 3 batches of ACCREC invoices come the bills (the demo sends purchase orders as bills).
    "ACCPAY bill batch": ("/api.xro/2.0/Invoices", 3),
}


def _committed(xero: XeroReader, case: str) -> Callable[[], bool]:
    def check() -> bool:
        if case == "contact batch":
            return sum(1 for c in xero.all("Contacts") if c.get("ContactNumber")) >= 40
        kind = "ACCPAY" if "bill" in case else "ACCREC"
        return len(xero.all("Invoices", where=f'Type=="{kind}"')) >= (4 if kind == "ACCPAY" else 50)
    return check


def _wait(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the sync ended before the batch was committed:\n{process.stdout.read()[-3000:]}")
        assert time.monotonic() < deadline, "the batch was never committed"
        time.sleep(0.3)


def _exactly_once(boxes: Sandboxes) -> None:
    xero, zoho = XeroReader(boxes.xero.url), ZohoReader(boxes.zoho.url)
    contacts = Counter(c.get("ContactNumber") for c in xero.all("Contacts") if c.get("ContactNumber"))
    assert contacts and max(contacts.values()) == 1, contacts
    assert len(contacts) == len(zoho.records("Accounts", ["Account_Name"])) - 1 + len(
        zoho.records("Vendors", ["Vendor_Name"]))  # the Walk-in Customer came from Xero
    invoices = Counter(i["InvoiceNumber"] for i in xero.all("Invoices", where='Type=="ACCREC"'))
    assert len(invoices) == 145 and max(invoices.values()) == 1
    bills = Counter(b.get("Url") for b in xero.all("Invoices", where='Type=="ACCPAY"'))
    assert len(bills) == len(zoho.records("Purchase_Orders", ["PO_Number"])) and max(bills.values()) == 1


@pytest.mark.parametrize("case", list(CASES))
def test_a_crash_between_xero_commit_and_ledger_leaves_one_copy(case: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                prefect_harness: None) -> None:
    path, after = CASES[case]
    monkeypatch.setenv("ZX_ORG_LOCK_TTL_SECONDS", "8")  # the killed run's lock frees itself quickly
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        # The test's own polling must not eat the tenant's minute budget.
        requests.put(f"{boxes.xero.url}/_sandbox/limits", json={"per_window": 100000}).raise_for_status()
        requests.put(f"{boxes.xero.url}/_sandbox/faults", json={"rules": [
            {"method": "PUT", "path": path, "kind": "slow_after_commit", "delay_seconds": 120, "count": 1,
             "after": after}]}).raise_for_status()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        # The doomed run reports to the session's Prefect API (no temporary server to start).
        env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=str(get_current_settings().api.url),
                   PREFECT_HOME=str(tmp_path / "prefect-killed"))
        process = subprocess.Popen([ZXSYNC, "sync", "demo", "--json"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            _wait(_committed(XeroReader(boxes.xero.url), case), process)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the whole process group: the run and its Prefect
            process.wait(timeout=60)
        with Ledger.open() as ledger:
            assert ledger.pending_intents("demo"), "the killed run left its write-ahead intent"
        requests.delete(f"{boxes.xero.url}/_sandbox/faults").raise_for_status()
        # Past Xero's 6-minute idempotency window: a blind re-send would now create copies.
        requests.put(f"{boxes.xero.url}/_sandbox/clock", json={"advance_seconds": 400}).raise_for_status()
        summary = run_sync("demo", RunOptions())
        assert summary["state"] == "COMPLETED", summary
        assert sum(row.get("healed", 0) for row in summary.values() if isinstance(row, dict)) > 0
        _exactly_once(boxes)
        with Ledger.open() as ledger:
            assert not ledger.pending_intents("demo")
