"""Issue 12 end to end on the sandboxes, through events alone (schedules paused): an invoice
approved in Zoho reaches Xero, and a payment made in Xero reaches Zoho.

A real Prefect server, the demo deployment served by a child process, ``zxsync webhooks`` with the
Xero sandbox's webhook and a Zoho notification channel pointed at it (tests.test_events_support).
The test waits on the Prefect API (free) rather than polling Xero, whose 60 calls a minute the
sync needs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import XeroReader, ZohoReader
from tests.test_events_support import EventStack, event_stack
from tests.test_webhooks_support import wait_until

FIELDS = ["Subject", "Status", "Xero_Invoice_ID", "Xero_Status", "Xero_Amount_Paid", "Xero_Amount_Due",
          "Xero_Payments"]


def event_run_done(stack: EventStack, record_id: str, after: datetime) -> Any:
    """A completed event run started after ``after`` whose record ids hold ``record_id``."""
    def found() -> Any:
        for run in stack.runs():
            ids = run.parameters.get("options", {}).get("window", {}).get("record_ids") or []
            if (record_id in ids and run.start_time is not None and run.start_time >= after
                    and run.state is not None and run.state.is_final()):
                assert run.state.is_completed(), (run.name, run.state, stack.serve.log_tail(60))
                return run
        return None

    return wait_until(found, 240, f"an event run for {record_id}", interval=1.0)


def test_an_approval_in_zoho_and_a_payment_in_xero_reach_the_other_side_through_events_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with event_stack(tmp_path, monkeypatch) as stack:
        xero, zoho = XeroReader(stack.boxes.xero.url), ZohoReader(stack.boxes.zoho.url)
        after_first_sync = len(stack.runs())
        drafts = {i["InvoiceID"] for i in xero.all("Invoices", where='Status=="DRAFT" AND Type=="ACCREC"')}
        invoice = next(i for i in zoho.records("Invoices", FIELDS)
                       if i["Status"] == "Created" and i.get("Xero_Invoice_ID") in drafts)

        # 1. Approved in Zoho -> Zoho notification -> event run -> AUTHORISED in Xero.
        approved_at = datetime.now(UTC)
        zoho.update("Invoices", {"id": invoice["id"], "Status": "Approved"})
        event_run_done(stack, invoice["id"], approved_at)
        approved = xero.get(f"Invoices/{invoice['Xero_Invoice_ID']}")["Invoices"][0]
        assert approved["Status"] == "AUTHORISED"

        # 2. Paid in Xero -> INVOICE UPDATE webhook -> event run -> paid amount and status in Zoho.
        amount = Decimal(str(approved["AmountDue"])).quantize(Decimal("0.01"))
        paid_at = datetime.now(UTC)
        xero.put("Payments", {"Payments": [{"Invoice": {"InvoiceID": approved["InvoiceID"]},
                                            "Account": {"Code": "090"}, "Amount": float(amount)}]})
        event_run_done(stack, invoice["id"], paid_at)
        record = zoho.record("Invoices", invoice["id"])
        assert Decimal(str(record.get("Xero_Amount_Paid") or 0)) == amount
        assert record.get("Xero_Status") == "PAID"

        # Only event runs ran after the first sync, one at a time, each for a few records.
        wait_until(lambda: not stack.webhooks.ledger().event_batches()
                   and not stack.webhooks.ledger().pending_events(), 240, "the last event run", interval=1.0)
        runs = stack.runs()[after_first_sync:]
        assert runs and all("event" in r.tags for r in runs), [(r.name, r.tags) for r in runs]
        assert all(r.parameters["options"]["window"]["kind"] == "record-ids" for r in runs)
        assert all(r.state is not None and r.state.is_completed() for r in runs), [r.state for r in runs]
        spans = sorted((r.start_time, r.end_time) for r in runs)
        assert all(a[1] <= b[0] for a, b in pairwise(spans)), spans  # never overlapping
        assert not [r for r in stack.runs() if " · schedule · " in r.name]
