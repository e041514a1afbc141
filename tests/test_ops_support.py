"""Helpers for the operations tests (demo, deployments, retry, limits, scale-out); holds no tests.

Named ``test_ops_*`` to stay inside the operations paths; pytest collects nothing from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from deployments.processes import Child, spawn
from deployments.server import PrefectServer, prefect_env

REPO = Path(__file__).resolve().parent.parent


def zxsync_argv(*args: str) -> list[str]:
    """The ``zxsync`` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "zxsync"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from zxsync.cli import app; app()", *args]


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for a child that must not see this test's Prefect or ZX settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ZX_", "PREFECT_")) and k != "PYTEST_CURRENT_TEST"
    }
    env.update(
        {
            "ZX_HOME": str(home),
            "ZX_SECRET_KEY": Fernet.generate_key().decode(),
            "ZX_SECRET_KEY_FILE": str(home.parent / f"{home.name}-key" / "secret.key"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    env.update(extra)
    return env


def processes_with(marker: str) -> list[str]:
    """``ps`` lines (with environments) of the processes whose command or environment holds ``marker``."""
    out = subprocess.run(
        ["ps", "-A", "eww", "-o", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    me = os.getpid()
    lines = []
    for line in out.splitlines():
        pid, _, rest = line.strip().partition(" ")
        if marker in rest and pid.isdigit() and int(pid) != me and " ps -A " not in f" {rest}":
            lines.append(f"{pid} {rest[:300]}")
    return lines


def wait_gone(marker: str, timeout: float = 30.0) -> list[str]:
    """Wait until no process carries ``marker``; returns those still there at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_with(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A sync Prefect client for ``api_url`` (whatever the session's harness says)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


def wait_final(client: Any, run_id: Any, timeout: float = 300.0, poll: float = 0.5) -> Any:
    """The flow run once its state is final (fails the test at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {run.name} still {run.state.name if run.state else '?'} after {timeout} s")
        time.sleep(poll)


def wait_deployment(client: Any, name: str, child: Child | None = None, timeout: float = 180.0) -> Any:
    """The deployment ``flow/name`` once a serve process or ``prefect deploy`` registered it."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            if child is not None and not child.running():
                pytest.fail(f"the serve process exited:\n{child.log_tail(60)}")
            if time.monotonic() > deadline:
                pytest.fail(f"deployment {name} never appeared")
        time.sleep(0.5)


def serve_child(server: PrefectServer, env: Mapping[str, str], log: Path, poll_seconds: str = "1") -> Child:
    """``python -m deployments serve`` against ``server``, looking for runs every ``poll_seconds``."""
    full = prefect_env(server.home, server.api_url, base=env, PREFECT_RUNNER_POLL_FREQUENCY=poll_seconds)
    return spawn("serve", [sys.executable, "-m", "deployments", "serve"], env=full, log_path=log, cwd=REPO)


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    """A sandbox admin call (``/_sandbox/<path>``)."""
    response = requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=60)
    response.raise_for_status()
    return response.json() if response.content else None


def latest_artifact(client: Any, key: str) -> Any:
    """The latest artifact under ``key`` (None when there is none)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(found, key=lambda a: a.created) if found else None


class WebhookListener:
    """A webhook receiver on a free loopback port that keeps every JSON body it gets."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, text: str, timeout: float = 90.0) -> dict[str, Any]:
        """The first body mentioning ``text`` (fails the test at the timeout)."""
        import json

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies:
                if text in json.dumps(body, ensure_ascii=False):
                    return body
            time.sleep(0.5)
        pytest.fail(f"no webhook call mentioning {text!r} within {timeout} s; got {self.bodies}")

    def close(self) -> None:
        self.server.shutdown()


# --- what a sandbox journal says about one tenant's load ------------------------------------------
def tenant_load(journal: list[dict[str, Any]], tenant: str, window_seconds: float) -> dict[str, int]:
    """Calls, 429 answers, the most calls started in any rolling window and the most in flight at once."""
    calls = [j for j in journal if j.get("tenant") == tenant]
    starts = sorted(j["started"] for j in calls)
    busiest, k = 0, 0
    for i, s in enumerate(starts):
        k = max(k, i)
        while k < len(starts) and starts[k] < s + window_seconds:
            k += 1
        busiest = max(busiest, k - i)
    # Ends sort before starts at the same instant: a call that ended as another began was not concurrent.
    events = sorted([(j["finished"], -1) for j in calls] + [(j["started"], 1) for j in calls])
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    return {
        "calls": len(calls),
        "rate_limited": sum(j["status"] == 429 for j in calls),
        "busiest_window": busiest,
        "max_in_flight": peak,
    }


# --- a process that calls one Xero tenant (python -m tests.test_ops_support xero-calls ...) ---------
def _xero_calls(org: str, calls: int, threads: int, start_at: float) -> dict[str, Any]:
    """Make ``calls`` GET /Organisation calls for ``org`` from ``threads`` threads, starting at the
    wall-clock time ``start_at`` (so two processes overlap); Prefect limits per ZX_PREFECT_LIMITS."""
    import json  # noqa: F401 - keeps the worker's imports together
    from concurrent.futures import ThreadPoolExecutor

    from tasks import limits, runtime

    names = limits.use_prefect_limits(org)
    client = runtime.xero(org)
    client.organisation()  # token refresh and tenant before the clock starts (not counted below)
    time.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: client.organisation(), range(calls)))
    elapsed = time.monotonic() - started
    return {"limits": names, "elapsed": elapsed, "calls": calls}


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["xero-calls"])
    parser.add_argument("--org", default="demo")
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    print(json.dumps(_xero_calls(args.org, args.calls, args.threads, args.start_at)))
