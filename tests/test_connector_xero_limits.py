"""The tenant's limits under load: 600 writes from 8 threads with a shrunk window, zero 429s.

The sandbox enforces the same limits as the client's settings (60 calls per 2-second window, 5 in
flight); its journal's real start/finish timestamps show that no window held more than the limit
and that never more than 5 calls were in progress. No wall-clock assertion.
"""

# ruff: noqa: F811  (the sandbox fixtures are imported by name)
from __future__ import annotations

import threading

import pytest

from connectors.xero import XeroClient
from tests.test_connector_xero_support import (  # noqa: F401  (fixtures)
    XeroSandboxHandle,
    contact,
    store_for,
    xero,
    xero_sandbox,
)
from zxsync.settings import get_settings

PER_WINDOW = 60
WINDOW_SECONDS = 2.0
CONCURRENT = 5
WRITES = 600
THREADS = 8


def max_in_any_window(starts: list[float], window: float) -> int:
    """The most calls that started inside any window of ``window`` seconds."""
    starts = sorted(starts)
    best, j = 0, 0
    for i, start in enumerate(starts):
        j = max(j, i)
        while j < len(starts) and starts[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best


def max_in_flight(spans: list[tuple[float, float]]) -> int:
    """The most calls in progress at once (a call ending when another starts does not overlap it)."""
    events = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans])
    best = now = 0
    for _, delta in events:  # at equal times -1 sorts before +1
        now += delta
        best = max(best, now)
    return best


def test_window_and_concurrency_sweeps_count_correctly() -> None:
    assert max_in_any_window([0.0, 0.5, 1.0, 1.99, 2.0, 2.5], 2.0) == 4
    assert max_in_flight([(0, 1), (1, 2), (0.5, 1.5)]) == 2


def test_600_writes_from_8_threads_never_exceed_the_limits(xero: XeroSandboxHandle,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_XERO_CALLS_PER_WINDOW", str(PER_WINDOW))
    monkeypatch.setenv("ZX_XERO_WINDOW_SECONDS", str(WINDOW_SECONDS))
    monkeypatch.setenv("ZX_XERO_CONCURRENCY", str(CONCURRENT))
    get_settings.cache_clear()
    xero.limits(per_window=PER_WINDOW, window_seconds=WINDOW_SECONDS, concurrent=CONCURRENT)
    store = store_for(xero)
    since = len(xero.journal())
    failures: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = XeroClient(store, "demo")  # one client per thread: the limiter is still shared
        for i in range(WRITES // THREADS):
            key = f"load-{n}-{i}"
            try:
                result = client.write_all("Contacts", {key: contact(key)}, method="PUT")[key]
                if not result.ok:
                    raise AssertionError(result.errors)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                with lock:
                    failures.append(f"{key}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not failures, failures[:5]
    writes = [e for e in xero.journal(since) if e["method"] == "PUT" and e["path"] == "/api.xro/2.0/Contacts"]
    assert len(writes) == WRITES
    assert {e["status"] for e in writes} == {200}
    assert xero.stats()["rate_limited"] == 0
    calls = [e for e in xero.journal(since) if e["path"].startswith("/api.xro/2.0/")]
    assert max_in_any_window([e["started"] for e in calls], WINDOW_SECONDS) <= PER_WINDOW
    assert max_in_flight([(e["started"], e["finished"]) for e in calls]) <= CONCURRENT


def test_a_fresh_process_learns_the_minute_left_by_the_last_one_before_bursting(
        xero: XeroSandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-to-back runs are separate processes: the new one's limiter starts empty while Xero's
    minute still holds the last run's calls. Its first call goes alone; the burst waits for the
    answer's X-MinLimit-Remaining, so it meets no 429."""
    from connectors.xero_limits import forget_limiters

    per_window, window = 30, 5.0
    monkeypatch.setenv("ZX_XERO_CALLS_PER_WINDOW", str(per_window))
    monkeypatch.setenv("ZX_XERO_WINDOW_SECONDS", str(window))
    monkeypatch.setenv("ZX_XERO_CONCURRENCY", str(CONCURRENT))
    get_settings.cache_clear()
    xero.limits(per_window=per_window, window_seconds=window, concurrent=CONCURRENT)
    store = store_for(xero)
    since = len(xero.journal())
    previous = XeroClient(store, "demo")  # the run that just ended, in its own process
    for i in range(per_window - 2):
        previous.get("Organisation")
    forget_limiters()  # a new process: no memory of those calls
    failures: list[str] = []

    def worker(n: int) -> None:
        client = XeroClient(store, "demo")
        for i in range(3):
            try:
                client.get("Organisation")
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{n}/{i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    calls = [e for e in xero.journal(since) if e["path"].startswith("/api.xro/2.0/")]
    assert len(calls) == per_window - 2 + CONCURRENT * 3
    assert xero.stats()["rate_limited"] == 0
    assert max_in_any_window([e["started"] for e in calls], window) <= per_window
