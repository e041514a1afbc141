"""End to end: the sync flow of the demo organisation against both sandboxes, under Prefect."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.options import RunOptions
from tests.e2e_support import running_sandboxes
from zxsync.onboarding import connect_sandbox
from zxsync.runs import run_sync


@pytest.fixture()
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        connect_sandbox("demo")
        yield boxes


def test_first_sync_of_the_demo_org(demo) -> None:
    summary = run_sync("demo", RunOptions(trigger="cli"))
    print(summary)
    assert summary["state"] == "COMPLETED", summary


def test_second_run_writes_nothing(demo) -> None:
    assert run_sync("demo", RunOptions())["state"] == "COMPLETED"
    before = demo.writes()
    sx, sz = demo.stats("xero"), demo.stats("zoho")
    journal_start = len(demo.journal("xero")), len(demo.journal("zoho"))
    summary = run_sync("demo", RunOptions())
    assert summary["state"] == "COMPLETED"
    new_x = demo.journal("xero", journal_start[0])
    new_z = demo.journal("zoho", journal_start[1])
    print([ (j["method"], j["path"]) for j in new_x if j["method"] != "GET"])
    print([ (j["method"], j["path"]) for j in new_z if j["method"] != "GET"])
    print(len(new_x), len(new_z))
    ax, az = demo.stats("xero"), demo.stats("zoho")
    print("xero", {k: v - sx["calls"].get(k, 0) for k, v in ax["calls"].items() if v != sx["calls"].get(k, 0)}, ax["writes"] - sx["writes"])
    print("zoho", {k: v - sz["calls"].get(k, 0) for k, v in az["calls"].items() if v != sz["calls"].get(k, 0)}, az["writes"] - sz["writes"])
    assert demo.writes() == before
