"""A dry run maps and validates, writes nothing to either system (sandbox stats), and reports what
would change — and the real run that follows does exactly that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.options import RunOptions
from tests.e2e_support import ZohoReader, running_sandboxes
from zxsync.runs import format_summary, run_sync

INVOICE_FIELDS = ["Invoice_Number", "Status", "Invoiced_Items", "Xero_Invoice_ID"]


@pytest.fixture()
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        yield boxes


def _summary_artifact() -> tuple[dict[str, dict[str, int]], str]:
    from prefect.artifacts import Artifact

    artifact = Artifact.get("sync-summary-demo")
    assert artifact is not None
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return {row["entity"]: row for row in rows}, artifact.description or ""


def test_a_first_dry_run_writes_nothing_and_reports_what_it_would_create(demo) -> None:
    from tasks import runtime

    before = demo.stats("xero"), demo.stats("zoho")
    summary = run_sync("demo", RunOptions(dry_run=True))
    assert summary["state"] == "COMPLETED" and summary["dry_run"] is True
    after = demo.stats("xero"), demo.stats("zoho")
    assert [a["writes"] - b["writes"] for a, b in zip(after, before, strict=True)] == [0, 0]
    assert after[0]["calls"].get("PUT /api.xro/2.0/Invoices", 0) == 0
    # What the first real run would create, per entity, in the summary and in the UI's artifact.
    assert summary["contacts"]["would_create"] == 40
    assert summary["vendors"]["would_create"] == 5
    assert summary["items"]["would_create"] == 15
    assert "would create 40" in format_summary(summary)
    rows, description = _summary_artifact()
    assert rows["contacts"]["would_create"] == 40 and rows["contacts"]["created"] == 0
    assert "Dry run — nothing was written" in description
    # Nothing was linked or watermarked either: the next real run starts from scratch.
    ledger = runtime.ledger()
    assert ledger.get_watermark("demo", "zoho:Invoices") is None


def test_a_dry_run_after_an_edit_predicts_exactly_the_next_runs_write(demo) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    zoho = ZohoReader(demo.zoho.url)
    target = next(
        i
        for i in zoho.records("Invoices", INVOICE_FIELDS)
        if i.get("Xero_Invoice_ID") and i["Status"] == "Created"
    )
    row = target["Invoiced_Items"][0]
    zoho.update(
        "Invoices",
        {"id": target["id"], "Invoiced_Items": [{"id": row["id"], "Quantity": row["Quantity"] + 1}]},
    )

    writes = demo.writes()
    dry = run_sync("demo", RunOptions(dry_run=True))
    assert dry["state"] == "COMPLETED"
    assert demo.writes() == writes  # nothing written to either sandbox
    assert dry["invoices"]["would_update"] == 1
    assert all(row.get("would_create", 0) == 0 for row in dry.values() if isinstance(row, dict))

    mark = len(demo.journal("xero"))
    real = run_sync("demo", RunOptions())
    assert real["state"] == "COMPLETED" and real["invoices"]["updated"] == 1
    sent = [j for j in demo.journal("xero", mark) if j["method"] in ("PUT", "POST")]
    assert [(j["path"], j["keys"]) for j in sent] == [("/api.xro/2.0/Invoices", [target["Invoice_Number"]])]
