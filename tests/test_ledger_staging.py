"""The stage: pages and batches handed between tasks by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import Ledger


def test_stage_round_trip_replace_drop(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    items = [{"id": str(i), "Subject": "O'Brien ✓", "Amount": 1.5} for i in range(500)]
    assert ledger.stage_put("acme", "run-1", "zoho:Invoices:0001", items) == "zoho:Invoices:0001"
    assert ledger.stage_get("acme", "run-1", "zoho:Invoices:0001") == items
    ledger.stage_put("acme", "run-1", "zoho:Invoices:0001", items[:2])  # a retried task replaces
    assert ledger.stage_get("acme", "run-1", "zoho:Invoices:0001") == items[:2]
    ledger.stage_put("acme", "run-2", "zoho:Invoices:0001", items[:1])
    assert ledger.stage_drop("acme", "run-1") == 1
    with pytest.raises(KeyError):
        ledger.stage_get("acme", "run-1", "zoho:Invoices:0001")
    assert ledger.stage_get("acme", "run-2", "zoho:Invoices:0001") == items[:1]
    assert ledger.stage_purge(older_than_days=0) == 1
    ledger.close()


def test_zoho_ids_in_state(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.upsert_links("acme", "invoice", [{"zoho_id": "3", "state": "rejected"}, {"zoho_id": "1", "state": "deferred"},
                                            {"zoho_id": "2", "xero_id": "x2"}])
    ledger.upsert_links("acme", "contact", [{"zoho_id": "9", "state": "rejected"}])
    assert ledger.zoho_ids_in_state("acme", "invoice", ("rejected", "deferred")) == ["1", "3"]
    assert ledger.zoho_ids_in_state("acme", "invoice", ("synced",)) == ["2"]
    ledger.close()
