"""How much of Xero's per-tenant rate limit the connector uses under a write load (a script, not a test).

    python -m benchmarks.xero_rate_limit [--writes 600] [--threads 8] [--per-window 60]
                                         [--window 3] [--concurrent 5] [--xero-url URL]

Starts a Xero sandbox on a free port (or uses ``--xero-url``), sets the same shrunk limits on the
sandbox and in the client's settings, sends ``--writes`` single-contact ``PUT /Contacts`` from
``--threads`` threads through :class:`connectors.xero.XeroClient`, then reads the sandbox's
journal (real start/finish time per call) and prints:

- utilisation: calls per fixed window / limit, averaged over the full windows of the run
  (target >= 90 %);
- the busiest rolling window / limit (must stay <= 100 %);
- the share of 429 answers (target 0) and the most calls in flight.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr


def _admin(url: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
    response = requests.request(method, f"{url}/_sandbox/{path}", json=body, params=params or None, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def utilisation(starts: list[float], per_window: int, window: float) -> dict[str, float]:
    """Fixed-window utilisation over the full windows of the run, and the busiest rolling window."""
    starts = sorted(starts)
    t0, t_end = starts[0], starts[-1]
    full = int((t_end - t0) // window)
    counts = [0] * max(full, 1)
    for s in starts:
        k = int((s - t0) // window)
        if k < full:
            counts[k] += 1
    busiest, j = 0, 0
    for i, s in enumerate(starts):
        j = max(j, i)
        while j < len(starts) and starts[j] < s + window:
            j += 1
        busiest = max(busiest, j - i)
    return {"windows": float(full), "mean": statistics.fmean(counts) / per_window if full else float("nan"),
            "min": min(counts) / per_window if full else float("nan"), "busiest": busiest / per_window}


def in_flight(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=600)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-window", type=int, default=60)
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--concurrent", type=int, default=5)
    parser.add_argument("--xero-url", default=None, help="a running Xero sandbox (default: start one)")
    args = parser.parse_args(argv)

    running = None
    state = tempfile.TemporaryDirectory(prefix="zx-bench-")
    url = args.xero_url
    if url is None:
        from sandbox.server import start
        from sandbox.xero.app import XeroSandbox

        running = start(XeroSandbox(Path(state.name) / "sandbox"))
        url = running.url
    os.environ.update({
        "ZX_HOME": str(Path(state.name) / "home"),
        "ZX_XERO_LOGIN_URL": url, "ZX_XERO_IDENTITY_URL": url, "ZX_XERO_API_URL": url,
        "ZX_XERO_CALLS_PER_WINDOW": str(args.per_window), "ZX_XERO_WINDOW_SECONDS": str(args.window),
        "ZX_XERO_CONCURRENCY": str(args.concurrent),
    })
    from connectors.credentials import Connection, MemoryCredentialStore
    from connectors.xero import XeroClient
    from zxsync.settings import get_settings

    get_settings.cache_clear()
    try:
        _admin(url, "POST", "reset")
        _admin(url, "PUT", "limits", {"per_window": args.per_window, "window_seconds": args.window,
                                      "concurrent": args.concurrent, "per_day": max(5000, 2 * args.writes)})
        creds = _admin(url, "GET", "credentials")
        store = MemoryCredentialStore()
        store.save(Connection(org="bench", system="xero", client_id=creds["client_id"],
                              client_secret=SecretStr(creds["client_secret"]),
                              refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds["tenant_id"]))
        XeroClient(store, "bench").tokens.access_token()  # the refresh is not part of the load
        since = len(_admin(url, "GET", "journal"))
        errors: list[str] = []
        lock = threading.Lock()
        per_thread = [args.writes // args.threads + (1 if n < args.writes % args.threads else 0)
                      for n in range(args.threads)]

        def worker(n: int) -> None:
            client = XeroClient(store, "bench")
            for i in range(per_thread[n]):
                key = f"bench-{n}-{i}"
                try:
                    result = client.write_all("Contacts", {key: {"ContactNumber": key, "Name": key}}, method="PUT")
                    if not result[key].ok:
                        raise RuntimeError(result[key].errors)
                except Exception as exc:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(f"{key}: {exc!r}")

        began = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began

        journal = [e for e in _admin(url, "GET", "journal", since=since) if e["path"].startswith("/api.xro/2.0/")]
        rate_limited = sum(1 for e in journal if e["status"] == 429)
        u = utilisation([e["started"] for e in journal], args.per_window, args.window)
        print(f"Xero rate-limit benchmark: {args.writes} writes, {args.threads} threads, limit {args.per_window} "
              f"calls / {args.window:g} s, {args.concurrent} concurrent")
        print(f"  calls seen by the sandbox     {len(journal)} ({len(errors)} client errors)")
        print(f"  elapsed                       {elapsed:.1f} s")
        print(f"  utilisation (calls/window)    {u['mean']:.1%} mean over {int(u['windows'])} full windows, "
              f"{u['min']:.1%} lowest")
        print(f"  busiest rolling window        {u['busiest']:.1%} of the limit")
        print(f"  429 share                     {rate_limited / max(len(journal), 1):.2%} ({rate_limited} of "
              f"{len(journal)})")
        print(f"  most calls in flight          {in_flight([(e['started'], e['finished']) for e in journal])}")
        print(f"  target >= 90 %: {'met' if u['mean'] >= 0.9 else 'NOT met'}")
        for line in errors[:5]:
            print("  error:", line)
        return 0 if not errors else 1
    finally:
        if running is not None:
            running.stop()
        state.cleanup()


if __name__ == "__main__":
    sys.exit(main())
