"""Crash and Retry (issue 10, acceptance 2): the process running a served sync is killed with
SIGKILL in the middle of an invoice batch — while Xero (or Zoho) holds the answer to a write it
already committed, or before it commits — the run is Crashed in the Prefect API, support presses
Retry (the UI's exact call: ``Scheduled(name="AwaitingRetry")``, ``force=False``), the served
deployment picks the same run up again, and the result is as if nothing had happened: the oracle
finds every record once, exactly as seeded, both ways, and the retried run's sync log accounts for
every record.

A real ``prefect server start`` (SQLite under tmp) and ``python -m deployments serve`` as a child
process serving one org per kill point. ``ZX_CHAOS=full``: all five kill points; CI: two.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ledger import Ledger
from tests.chaos_support import (
    OUTCOME_COLUMNS,
    Baseline,
    SandboxOrg,
    SecretWatch,
    baseline,
    chaos_size,
    converged,
    create_org,
    fast_limits,
    injected,
    report_rows,
    set_faults,
    use_orgs_dir,
)
from tests.e2e_support import Sandboxes, running_sandboxes
from tests.test_ops_support import (
    latest_artifact,
    prefect_client,
    processes_with,
    serve_child,
    wait_deployment,
)

pytestmark = pytest.mark.chaos

XERO_INVOICES = "/api.xro/2.0/Invoices"
BATCH = 20


@dataclass(frozen=True)
class KillPoint:
    """Where the flow process dies: a held (or slowed) call on one sandbox."""

    name: str
    system: str
    method: str
    path: str
    kind: str  # slow_after_commit: committed, answer held; slow: held before the commit
    #: Which matching call (0 = the first); None = the last invoice batch.
    after: int | None


POINTS = [
    KillPoint("first invoice batch, committed in Xero", "xero", "PUT", XERO_INVOICES, "slow_after_commit", 0),
    KillPoint("write-back of an invoice batch, committed in Zoho", "zoho", "PUT", "/crm/v8/Invoices",
              "slow_after_commit", 0),
    KillPoint("middle invoice batch, committed in Xero", "xero", "PUT", XERO_INVOICES, "slow_after_commit", 2),
    KillPoint("invoice batch not yet committed in Xero", "xero", "PUT", XERO_INVOICES, "slow", 1),
    KillPoint("last invoice batch, committed in Xero", "xero", "PUT", XERO_INVOICES, "slow_after_commit", None),
]


@dataclass
class Stack:
    boxes: Sandboxes
    server: Any
    child: Any
    orgs: list[SandboxOrg]
    bases: list[Baseline]
    env: dict[str, str]


@pytest.fixture()
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from deployments.server import start_prefect_server

    size = chaos_size()
    points = POINTS if size.full else POINTS[:size.kill_points]
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    server = start_prefect_server(tmp_path / "prefect", 0, log_path=tmp_path / "server.log")
    try:
        with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes:
            fast_limits(boxes, monkeypatch)
            orgs = [create_org(boxes, orgs_dir, f"crash{n}", invoices=size.crash_invoices)
                    for n in range(1, len(points) + 1)]
            bases = [baseline(org) for org in orgs]
            from tasks import runtime

            runtime.reset()  # the ledger belongs to the served runs from now on
            env = {**os.environ, "ZX_XERO_BATCH_SIZE": str(BATCH), "ZX_ORG_LOCK_TTL_SECONDS": "5",
                   "ZX_TASK_RETRIES": "1", "ZX_HTTP_MAX_RETRIES": "2"}
            child = serve_child(server, env, tmp_path / "serve.log")
            try:
                yield Stack(boxes=boxes, server=server, child=child, orgs=orgs, bases=bases, env=env)
            finally:
                child.stop(timeout=20)
    finally:
        server.stop()


def _wait(condition: Any, what: str, timeout: float = 240.0, child: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if child is not None and not child.running():
            pytest.fail(f"the serve process exited while waiting for {what}:\n{child.log_tail(60)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{child.log_tail(60)}" if child else ""))
        time.sleep(0.3)


def _flow_process(run_id: Any, serve_pid: int) -> list[int]:
    """The process(es) executing this flow run (its id is in their environment), not the server."""
    pids = []
    for line in processes_with(str(run_id)):
        pid = int(line.split(" ", 1)[0])
        if pid != serve_pid:
            pids.append(pid)
    return pids


def _summary_table(client: Any, org: str) -> list[dict[str, Any]]:
    import json

    artifact = latest_artifact(client, f"sync-summary-{org}")
    assert artifact is not None, "the run published no sync summary"
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_a_sigkilled_run_retried_from_the_ui_ends_as_if_nothing_happened(
        stack: Stack, request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str]) -> None:
    from prefect.deployments import run_deployment
    from prefect.states import Crashed, Scheduled

    size = chaos_size()
    points = POINTS if size.full else POINTS[:size.kill_points]
    n_batches = -(-size.crash_invoices // BATCH)
    rows: list[dict[str, Any]] = []
    watch = SecretWatch(stack.boxes)
    with prefect_client(stack.server.api_url) as client:
        for point, org, base in zip(points, stack.orgs, stack.bases):
            url = getattr(stack.boxes, point.system).url
            after = n_batches - 1 if point.after is None else point.after
            before = injected(url).get(point.kind, 0)
            set_faults(url, [{"method": point.method, "path": point.path, "kind": point.kind, "count": 1,
                              "after": after, "delay_seconds": 120}])
            wait_deployment(client, f"sync-organisation/{org.slug}", stack.child)
            run = run_deployment(f"sync-organisation/{org.slug}", parameters={"org": org.slug}, timeout=0,
                                 as_subflow=False)
            # The held call has arrived (and, for *_after_commit, been committed): kill the flow process.
            _wait(lambda: injected(url).get(point.kind, 0) > before, f"the kill point of {point.name}",
                  child=stack.child)
            time.sleep(1.0)  # the sandbox commits, then holds the answer
            pids = _wait(lambda: _flow_process(run.id, stack.child.pid), "the flow run's process",
                         child=stack.child)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            requests.delete(f"{url}/_sandbox/faults", timeout=30).raise_for_status()

            # Prefect's runner reports the crash; if it could not, mark it as zombie detection would.
            deadline = time.monotonic() + 30
            state = client.read_flow_run(run.id).state
            while not (state.is_crashed() or state.is_failed()) and time.monotonic() < deadline:
                time.sleep(0.5)
                state = client.read_flow_run(run.id).state
            marked_by_test = not (state.is_crashed() or state.is_failed())
            if marked_by_test:
                client.set_flow_run_state(run.id, Crashed(message="process killed (SIGKILL)"), force=True)
            with Ledger.open() as ledger:
                pending = len(ledger.pending_intents(org.slug))
            if point.system == "xero":
                assert pending, f"{point.name}: the killed run left no write-ahead intent"

            # Support presses Retry in the UI.
            answer = client.set_flow_run_state(run.id, Scheduled(name="AwaitingRetry", message="Retry from the UI"),
                                               force=False)
            assert answer.status.value == "ACCEPT", answer
            done = _wait(lambda: (r := client.read_flow_run(run.id)).state.is_final() and r, "the retried run",
                         timeout=300, child=stack.child)
            assert done.state.is_completed(), (point.name, done.state, stack.child.log_tail(60))
            assert done.run_count == 2 and done.id == run.id

            # As if nothing happened: every record once, exactly as seeded, both ways.
            report = converged(org, base)
            with Ledger.open() as ledger:
                left = ledger.pending_intents(org.slug)
            table = _summary_table(client, org.slug)
            for row in table:
                if "looked_at" in row:
                    told = sum(int(row.get(c, 0)) for c in OUTCOME_COLUMNS)
                    assert told == int(row["looked_at"]), (point.name, row)
            rows.append({"scenario": f"SIGKILL: {point.name}", "size": f"{size.crash_invoices} invoices",
                         "faults": {point.kind: 1, "SIGKILL": 1}, "runs": "1 + UI Retry",
                         "duplicates": report.duplicates, "lost": report.missing, "differing": report.differing,
                         "outcome": ("converged" if report.converged else "NOT converged")
                         + (" (crash marked by test)" if marked_by_test else "")})
            assert report.converged, f"{point.name}\n{report.text()}"
            assert not left, f"{point.name}: intents left pending: {left}"
            watch.collect([org.slug])
    report_rows(request, "crash and UI Retry", rows)

    # No secret in clear anywhere the served runs and the server wrote, nor in their logs.
    watch.collect([o.slug for o in stack.orgs])
    home = Path(os.environ["ZX_HOME"])
    captured = capfd.readouterr()
    assert watch.files_holding(home, stack.server.home) == []
    logs = [p.read_text(errors="replace") for p in home.parent.glob("*.log")]
    assert watch.in_text(captured.out, captured.err, *logs) == []
