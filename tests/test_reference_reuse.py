"""Event runs (a few record ids) reuse the Xero reference data a run read minutes ago: the
organisation's settings cost 6 of the tenant's 60 calls a minute, and event runs come often.
Scheduled runs always read them afresh; items are read by every run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.options import RunOptions
from ledger import Ledger
from tests.e2e_support import Sandboxes, ZohoReader, running_sandboxes
from zxsync.runs import run_sync
from zxsync.settings import get_settings

SETTINGS_READS = ("Organisation", "Accounts", "TaxRates", "BrandingThemes", "TrackingCategories", "Currencies")


def test_stage_get_fresh_honours_the_age(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        ledger.stage_put("acme", "reference-cache", "reference:xero", [{"a": 1}])
        assert ledger.stage_get_fresh("acme", "reference-cache", "reference:xero", 60) == [{"a": 1}]
        assert ledger.stage_get_fresh("acme", "reference-cache", "reference:xero", 0) is None
        assert ledger.stage_get_fresh("acme", "reference-cache", "missing", 60) is None


def _reads(boxes: Sandboxes, since: int) -> Counter[str]:
    return Counter(e["path"].split("?")[0].rsplit("/", 1)[-1] for e in boxes.journal("xero", since)
                   if e["method"] == "GET" and e["path"].startswith("/api.xro/2.0/"))


@pytest.fixture()
def boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Any:
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as running:
        yield running


def test_event_runs_reuse_the_settings_but_read_items_and_scheduled_runs_read_all(
        boxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    invoice = next(r for r in ZohoReader(boxes.zoho.url).records("Invoices", ["Xero_Invoice_ID"])
                   if r.get("Xero_Invoice_ID"))
    event = RunOptions(window={"kind": "record-ids", "record_ids": [invoice["id"]]})

    mark = len(boxes.journal("xero"))
    assert run_sync("demo", event)["state"] == "COMPLETED"
    reads = _reads(boxes, mark)
    assert all(reads[r] == 0 for r in SETTINGS_READS), reads
    assert reads["Items"] == 1, reads

    monkeypatch.setenv("ZX_REFERENCE_REUSE_SECONDS", "0")
    get_settings.cache_clear()
    mark = len(boxes.journal("xero"))
    assert run_sync("demo", event)["state"] == "COMPLETED"
    assert all(_reads(boxes, mark)[r] == 1 for r in SETTINGS_READS), _reads(boxes, mark)

    monkeypatch.delenv("ZX_REFERENCE_REUSE_SECONDS")
    get_settings.cache_clear()
    mark = len(boxes.journal("xero"))
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"  # a scheduled run: everything afresh
    assert all(_reads(boxes, mark)[r] == 1 for r in SETTINGS_READS), _reads(boxes, mark)
