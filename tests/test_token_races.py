"""Token races (issue 10, acceptance 3): processes that need a fresh token at the same moment.

- Four processes refresh the same Xero connection at once, and the first refresh's answer is
  lost after Xero rotated the refresh token: one refresh (retried with the same token, inside the
  grace period) serves everyone; the token we keep is the live one after the grace period ends.
- Two ``zxsync sync`` runs of one org and ten other processes start together, all without a
  valid access token: Zoho's limit of 10 mints per refresh token per 10 minutes is never hit
  (every process shares the stored token) and Xero is refreshed once.

No process ends with invalid_grant or Access Denied; no secret is printed.

Also a worker: ``python -m tests.test_token_races calls --org ORG --start-at T`` makes a few Xero
and Zoho calls through the product's clients at wall-clock time ``T`` and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from ledger import Ledger
from tests.chaos_support import (
    SecretWatch,
    baseline,
    converged,
    create_org,
    fast_limits,
    report_rows,
    set_faults,
    use_orgs_dir,
)
from tests.e2e_support import Sandboxes, running_sandboxes

pytestmark = pytest.mark.chaos

ZXSYNC = str(Path(sys.executable).with_name("zxsync"))
REPO = Path(__file__).resolve().parent.parent
REFUSALS = ("invalid_grant", "Access Denied", "access_denied")


def _expire_tokens(org: str, *systems: str) -> None:
    """As if the stored access tokens had run out (every process must get a new one)."""
    with Ledger.open() as ledger:
        for system in systems:
            conn = ledger.load_connection(org, system)
            ledger.save_connection(conn.model_copy(update={
                "access_expires_at": datetime.now(UTC) - timedelta(minutes=1)}))


def _workers(n: int, org: str, env: dict[str, str], *, calls: int = 3, systems: str = "both",
             delay: float = 6.0) -> list[subprocess.Popen[str]]:
    start_at = time.time() + delay  # everyone imports first, then they all go at once
    return [subprocess.Popen([sys.executable, "-m", "tests.test_token_races", "calls", "--org", org,
                              "--start-at", str(start_at), "--calls", str(calls), "--systems", systems],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(n)]


def _finish(processes: list[subprocess.Popen[str]], outputs: list[str]) -> list[dict[str, Any]]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        outputs += [out, err]
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _token_calls(boxes: Sandboxes, which: str, path: str, since: int = 0) -> list[dict[str, Any]]:
    return [j for j in boxes.journal(which, since) if j["path"] == path]


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def test_racing_xero_refreshes_with_a_lost_answer_keep_one_live_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str]) -> None:
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    outputs: list[str] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes:
        org = create_org(boxes, orgs_dir, "tokens", invoices=5)
        watch = SecretWatch(boxes)
        watch.collect([org.slug])
        with Ledger.open() as ledger:
            first = ledger.load_connection(org.slug, "xero").refresh_token.get_secret_value()  # type: ignore[union-attr]
        _expire_tokens(org.slug, "xero")
        mark = len(boxes.journal("xero"))
        # The first refresh reaches Xero, which rotates the token; its answer never comes back.
        set_faults(boxes.xero.url, [{"method": "POST", "path": "/connect/token", "kind": "drop_after_commit",
                                     "count": 1}])
        results = _finish(_workers(4, org.slug, _child_env(), systems="xero"), outputs)
        assert all(r["ok"] for r in results), results
        refreshes = _token_calls(boxes, "xero", "/connect/token", mark)
        # One process refreshed for all four: the lost answer, then the same token again (grace period).
        assert [(j["fault"], j["status"]) for j in refreshes] == [("drop_after_commit", 0), (None, 200)], refreshes
        watch.collect([org.slug])
        with Ledger.open() as ledger:
            conn = ledger.load_connection(org.slug, "xero")
        assert conn.broken_reason is None
        assert conn.previous_refresh_token is not None and conn.previous_refresh_token.get_secret_value() == first

        # Past the grace period (and the access token's life): the token we kept is the live one.
        requests.put(f"{boxes.xero.url}/_sandbox/clock", json={"advance_seconds": 31 * 60}, timeout=30
                     ).raise_for_status()
        _expire_tokens(org.slug, "xero")
        mark = len(boxes.journal("xero"))
        results = _finish(_workers(2, org.slug, _child_env(), systems="xero", delay=4.0), outputs)
        assert all(r["ok"] for r in results), results
        assert [j["status"] for j in _token_calls(boxes, "xero", "/connect/token", mark)] == [200]
        report_rows(request, "token races", [{
            "scenario": "4 processes refresh one Xero connection, answer lost", "size": "4 + 2 processes",
            "faults": {"drop_after_commit": 1}, "runs": "-", "duplicates": 0, "lost": 0, "differing": 0,
            "outcome": "1 refresh for all; live token after the grace period"}])

        watch.collect([org.slug])
        captured = capfd.readouterr()
        everything = [*outputs, captured.out, captured.err]
        assert not [w for w in REFUSALS for text in everything if w in text]
        assert watch.in_text(*everything) == []
        assert watch.files_holding(Path(os.environ["ZX_HOME"])) == []


def test_parallel_runs_and_processes_never_hit_zohos_mint_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str]) -> None:
    from prefect.settings import get_current_settings

    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    outputs: list[str] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes:
        fast_limits(boxes, monkeypatch)
        org = create_org(boxes, orgs_dir, "mints", invoices=60)
        base = baseline(org)
        watch = SecretWatch(boxes)
        watch.collect([org.slug])
        _expire_tokens(org.slug, "xero", "zoho")
        zoho_mark, xero_mark = len(boxes.journal("zoho")), len(boxes.journal("xero"))
        env = _child_env(PREFECT_API_URL=str(get_current_settings().api.url),
                         PREFECT_HOME=str(tmp_path / "prefect-children"))
        # Two runs of the org (the org lock makes one wait) and ten other processes, all at once.
        syncs = [subprocess.Popen([ZXSYNC, "sync", org.slug, "--json"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        workers = _workers(10, org.slug, env, calls=5, delay=3.0)
        results = _finish(workers, outputs)
        summaries = []
        for sync in syncs:
            out, err = sync.communicate(timeout=900)
            outputs += [out, err]
            assert sync.returncode == 0, err[-3000:]
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        assert all(r["ok"] for r in results), results
        assert [s["state"] for s in summaries] == ["COMPLETED", "COMPLETED"], summaries

        mints = _token_calls(boxes, "zoho", "/oauth/v2/token", zoho_mark)
        refreshes = _token_calls(boxes, "xero", "/connect/token", xero_mark)
        bodies = [j for j in mints if j["status"] != 200]
        assert not bodies, bodies
        # Zoho: never near 10 in any 10 minutes (one token serves every process); Xero: one rotation.
        assert 1 <= len(mints) <= 2, mints
        assert len(refreshes) == 1, refreshes
        report = converged(org, base)
        assert report.converged, report.text()
        watch.collect([org.slug])
        with Ledger.open() as ledger:
            for system in ("xero", "zoho"):
                assert ledger.load_connection(org.slug, system).broken_reason is None
        report_rows(request, "token races", [{
            "scenario": "2 syncs + 10 processes need tokens at once", "size": "60 invoices, 12 processes",
            "faults": {}, "runs": "2 (one waits for the org lock)", "duplicates": report.duplicates,
            "lost": report.missing, "differing": report.differing,
            "outcome": f"Zoho mints {len(mints)} (limit 10), Xero refreshes {len(refreshes)}"}])

        captured = capfd.readouterr()
        everything = [*outputs, captured.out, captured.err]
        assert not [w for w in REFUSALS for text in everything if w in text]
        assert watch.in_text(*everything) == []
        assert watch.files_holding(Path(os.environ["ZX_HOME"]), tmp_path / "prefect-children") == []


# --- the worker ------------------------------------------------------------------------------------
def _calls(org: str, start_at: float, calls: int, systems: str) -> dict[str, Any]:
    from tasks import runtime

    time.sleep(max(0.0, start_at - time.time()))
    done: Counter[str] = Counter()
    try:
        for _ in range(calls):
            if systems in ("both", "xero"):
                runtime.xero(org).organisation()
                done["xero"] += 1
            if systems in ("both", "zoho"):
                runtime.zoho(org).org()
                done["zoho"] += 1
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", **done}
    return {"ok": True, **done}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["calls"])
    parser.add_argument("--org", required=True)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--systems", choices=["both", "xero", "zoho"], default="both")
    args = parser.parse_args()
    print(json.dumps(_calls(args.org, args.start_at, args.calls, args.systems)))
