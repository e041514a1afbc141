"""`zxsync demo`: sandboxes, a Prefect server with its UI, served deployments and a first sync.

Run as the user runs it (a subprocess with its own ZX_HOME and free ports), then the kept
Prefect database is read through the Prefect client, and ``ps`` shows that nothing was left.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from deployments.server import start_prefect_server
from tests.test_ops_support import (
    child_env,
    latest_artifact,
    prefect_client,
    processes_with,
    wait_gone,
    zxsync_argv,
)


def test_demo_once_completes_and_keeps_the_run_and_its_artifacts(tmp_path: Path) -> None:
    home = tmp_path / "demohome"
    done = subprocess.run(
        zxsync_argv("demo", "--once", "--ui-port", "0"),
        env=child_env(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(done.stdout[-4000:], done.stderr[-4000:])
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Open the Prefect UI: http://127.0.0.1:" in out
    assert "demo: COMPLETED" in out
    assert str(home) in out and "ledger.db" in out and "prefect.db" in out
    # Nothing the demo started is still running (every child inherited ZX_HOME).
    assert wait_gone(str(home), timeout=20) == []

    server = start_prefect_server(home / "prefect", 0, log_path=tmp_path / "reader.log")
    try:
        with prefect_client(server.api_url) as client:
            deployment = client.read_deployment_by_name("sync-organisation/demo")
            crons = sorted((s.schedule.cron, s.schedule.timezone) for s in deployment.schedules)
            assert crons == [("0 19 * * *", "Pacific/Auckland"), ("0 7 * * *", "Pacific/Auckland")]
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

            runs = [
                r
                for r in client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
                )
                if r.state is not None and r.state.is_final()
            ]
            assert len(runs) == 1, [(r.name, r.state_name) for r in runs]
            run = runs[0]
            assert run.state.is_completed(), run.state
            assert run.name == "demo · cli · both · since-last"
            assert set(run.tags) >= {"autosync", "org:demo"}

            summary = latest_artifact(client, "sync-summary-demo")
            rejects = latest_artifact(client, "sync-rejects-demo")
            assert summary is not None and rejects is not None
            assert summary.flow_run_id == run.id and rejects.flow_run_id == run.id
            assert summary.type == "table" and rejects.type == "markdown"
            import json

            rows = {row["entity"]: row for row in json.loads(summary.data)}
            assert rows["invoices"]["created"] > 100 and rows["contacts"]["created"] > 30
            # The demo's deliberate rejects (docs/demo-universe.md), each with a reason and a fix hint.
            assert any(
                line.startswith("| record |") and "| reason |" in line and "how to fix" in line
                for line in rejects.data.splitlines()
            )
            for rule in ("status.unmapped", "tax.unmapped", "contact.missing", "currency.not_enabled"):
                assert rule in rejects.data, rule
            assert "zoho.field_missing" not in rejects.data  # the demo onboards the org's Xero_* fields
            # Links to the records in both systems, for the rejects and for what was written.
            assert "](https://crm.zoho" in rejects.data or "](http" in rejects.data
            changes = latest_artifact(client, "sync-changes-demo")
            assert changes is not None and changes.flow_run_id == run.id and changes.type == "markdown"
            assert "| create |" in changes.data and "](https://go.xero.com/" in changes.data
            progress = latest_artifact(client, "sync-progress-demo")
            assert progress is not None and progress.flow_run_id == run.id and progress.type == "progress"
            assert float(progress.data) == 100.0
    finally:
        server.stop()


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    home = tmp_path / "demohome"
    demo = subprocess.Popen(
        zxsync_argv("demo", "--ui-port", "0"),
        env=child_env(home),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 300
        for line in demo.stdout:
            seen.append(line)
            # Interrupt while the first run is in flight: its subprocess must go too.
            if line.startswith("Started a run") or time.monotonic() > deadline:
                break
        assert any(line.startswith("Started a run") for line in seen), "".join(seen)
        assert len(processes_with(str(home))) >= 3  # server (+ its web server), serve, the flow run
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
        seen.append(rest)
    finally:
        if demo.poll() is None:
            demo.kill()
    print("".join(seen)[-3000:])
    assert demo.returncode == 0
    assert "Stopped; nothing is left running." in seen[-1]
    assert wait_gone(str(home), timeout=20) == []


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    yield
    # Belt and braces for a failing test: never leave a demo's processes behind on the machine.
    for line in processes_with(str(tmp_path / "demohome")):
        pid = int(line.split()[0])
        try:
            import os

            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
