"""Limits across processes: Prefect global concurrency limits per tenant back the in-process limiter.

Two processes call one Xero tenant at the same moment, each obeying the tenant's (shrunk) limits
in-process. Without the Prefect limits they go over the tenant's limits together; with
``ZX_PREFECT_LIMITS=true`` the journal shows the tenant within them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tasks.limits import rate_shape, xero_limits
from tests.e2e_support import running_sandboxes
from tests.test_ops_support import REPO, admin, tenant_load
from zxsync.settings import get_settings

#: The tenant's limits for this test: 2 in flight, 6 calls per 2 s (Xero: 5 and 60 per 60 s).
LIMITS = {"ZX_XERO_CONCURRENCY": "2", "ZX_XERO_CALLS_PER_WINDOW": "6", "ZX_XERO_WINDOW_SECONDS": "2"}
SANDBOX_LIMITS = {"concurrent": 2, "per_window": 6, "window_seconds": 2}


@pytest.mark.parametrize(
    ("per_window", "window", "concurrency"), [(60, 60.0, 5), (6, 2.0, 2), (1000, 60.0, 5), (4, 1.0, 5)]
)
def test_rate_limit_shape_never_admits_more_than_the_window_allows(
    per_window: int, window: float, concurrency: int
) -> None:
    burst, decay = rate_shape(per_window, window, concurrency)
    assert 1 <= burst <= concurrency
    # A token bucket admits at most burst + decay * T in any window of T seconds; a small margin is
    # kept for grants that reach Xero closer together than the server gave them.
    margin = max(1, per_window // 20)
    assert burst + decay * window <= per_window - margin + 1e-6
    assert burst + decay * window >= per_window - margin - 0.01


def test_limit_names_and_numbers_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LIMITS.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    calls, rate = xero_limits("tenant-1")
    assert (calls.name, calls.limit, calls.decay) == ("xero-calls:tenant-1", 2, 0.0)
    assert (rate.name, rate.limit, rate.decay) == ("xero-rate:tenant-1", 1, 2.0)


def _two_processes(env: dict[str, str], calls: int) -> list[dict[str, Any]]:
    start_at = time.time() + 6  # both are past their imports and token refresh by then
    argv = [
        sys.executable,
        "-m",
        "tests.test_ops_support",
        "xero-calls",
        "--calls",
        str(calls),
        "--threads",
        "4",
        "--start-at",
        str(start_at),
    ]
    procs = [
        subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_two_processes_on_one_tenant_stay_within_its_limits_with_prefect_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from tasks import runtime

    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        admin(boxes.xero.url, "PUT", "limits", SANDBOX_LIMITS)
        # Each call lasts 0.4 s, so calls of the two processes overlap.
        admin(
            boxes.xero.url,
            "PUT",
            "faults",
            {
                "rules": [
                    {
                        "method": "GET",
                        "path": "/api.xro/2.0/Organisation",
                        "kind": "slow",
                        "delay_seconds": 0.4,
                    }
                ]
            },
        )
        tenant_id = (
            __import__("tasks.runtime", fromlist=["ledger"])
            .ledger()
            .load_connection("demo", "xero")
            .tenant_id
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base.update(LIMITS)
        base.update(
            {
                "PREFECT_API_URL": PREFECT_API_URL.value(),
                "PREFECT_HOME": str(tmp_path / "phome"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
        )

        # Control: in-process limits only. Together the two processes go over the tenant's limits.
        mark = len(boxes.journal("xero"))
        without = _two_processes({**base, "ZX_PREFECT_LIMITS": "false"}, calls=10)
        loose = tenant_load(boxes.journal("xero", mark), tenant_id, 2.0)
        print("without Prefect limits:", loose, without)
        assert without[0]["limits"] == []
        assert loose["max_in_flight"] > 2 or loose["busiest_window"] > 6 or loose["rate_limited"] > 0

        # With the Prefect global limits: within the limits, no 429.
        time.sleep(2.5)  # let the control's calls leave the sandbox's window
        mark = len(boxes.journal("xero"))
        with_limits = _two_processes({**base, "ZX_PREFECT_LIMITS": "true"}, calls=10)
        tight = tenant_load(boxes.journal("xero", mark), tenant_id, 2.0)
        print("with Prefect limits:", tight, with_limits)
        assert with_limits[0]["limits"][:2] == [f"xero-calls:{tenant_id}", f"xero-rate:{tenant_id}"]
        assert tight["calls"] >= 20
        assert tight["max_in_flight"] <= 2
        assert tight["busiest_window"] <= 6
        assert tight["rate_limited"] == 0
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(f"xero-calls:{tenant_id}")
            rate = client.read_global_concurrency_limit_by_name(f"xero-rate:{tenant_id}")
        assert limit.limit == 2 and rate.limit == 1 and rate.slot_decay_per_second == 2.0
