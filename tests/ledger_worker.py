"""A separate process that exercises the ledger's cross-process guarantees (run by the tests).

Usage: python tests/ledger_worker.py '<json spec>'; prints one JSON line with its results.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ledger import Ledger, LedgerCredentialStore, OrgBusy


def _mark(log_fd: int, kind: str, worker: int, step: int) -> None:
    # One small O_APPEND write per line: atomic and ordered in the shared file.
    os.write(log_fd, f"{kind} {worker} {step} {time.monotonic_ns()}\n".encode())


def _barrier(spec: dict[str, Any]) -> None:
    Path(spec["ready"], str(os.getpid())).touch()
    while not Path(spec["go"]).exists():
        time.sleep(0.005)


def main(spec: dict[str, Any]) -> dict[str, Any]:
    mode, worker = spec["mode"], spec["worker"]
    if mode == "open":
        _barrier(spec)
        with Ledger.open(spec["url"]) as ledger:
            ledger.set_watermark("acme", f"stream-{worker}", datetime.now(UTC))
        return {"opened": True}

    ledger = Ledger.open(spec["url"])
    log_fd = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    hold, gap, rounds = spec.get("hold", 0.01), spec.get("gap", 0.01), spec.get("rounds", 10)
    contended = 0
    try:
        if mode == "crash_holding":
            stack = ExitStack()
            stack.enter_context(
                ledger.org_lock("acme", f"doomed worker {worker}", timeout=10, ttl=spec["ttl"])
            )
            _barrier(spec)
            print(json.dumps({"crashed": True}), flush=True)
            os._exit(0)  # die holding the lease: no release, and its heartbeat dies with it

        _barrier(spec)
        if mode == "org_lock":
            for step in range(rounds):
                with ExitStack() as stack:
                    try:
                        stack.enter_context(ledger.org_lock("acme", f"worker {worker}", timeout=0))
                    except OrgBusy:  # count contention, then queue for the lock
                        contended += 1
                        stack.enter_context(ledger.org_lock("acme", f"worker {worker}", timeout=60))
                    _mark(log_fd, "enter", worker, step)
                    time.sleep(hold)
                    _mark(log_fd, "exit", worker, step)
                time.sleep(gap)
        elif mode == "refresh":
            store = LedgerCredentialStore(ledger, lock_timeout=60)
            for step in range(rounds):
                with store.refresh_lock("acme", "xero") as connection:
                    _mark(log_fd, "enter", worker, step)
                    assert connection.refresh_token is not None
                    n = int(connection.refresh_token.get_secret_value().rsplit("-", 1)[1])
                    time.sleep(hold)  # the token endpoint round trip
                    store.save(connection.model_copy(update={"refresh_token": SecretStr(f"rt-{n + 1}")}))
                    _mark(log_fd, "exit", worker, step)
                time.sleep(gap)
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        os.close(log_fd)
        ledger.close()
    return {"contended": contended}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
