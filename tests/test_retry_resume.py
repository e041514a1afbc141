"""Retry that resumes: a served run fails mid-load, support is notified, the UI's Retry finishes it
without sending again what was already written.

A real ``prefect server start`` (SQLite under tmp) with its automation services, the demo
deployment served by a child process (``python -m deployments serve``, polling every second), and
both sandboxes. Every ``PUT /Invoices`` after the second answers 503 until the fault is cleared
(task and HTTP retries few and short), so the run fails after two invoice batches were written.
The Retry is the exact call the UI's button makes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployments.server import PrefectServer, start_prefect_server
from tests.e2e_support import Sandboxes, XeroReader, running_sandboxes
from tests.test_ops_support import (
    WebhookListener,
    admin,
    prefect_client,
    serve_child,
    wait_deployment,
    wait_final,
)

INVOICES = "/api.xro/2.0/Invoices"
FAST_RETRIES = {
    "ZX_TASK_RETRIES": "1",
    "ZX_TASK_RETRY_DELAY_SECONDS": "0.1",
    "ZX_HTTP_MAX_RETRIES": "1",
    "ZX_HTTP_BACKOFF_BASE_SECONDS": "0.05",
    "ZX_HTTP_BACKOFF_MAX_SECONDS": "0.2",
}


@pytest.fixture()
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandboxes, PrefectServer, Any]]:
    import os

    server = start_prefect_server(tmp_path / "prefect", 0, log_path=tmp_path / "server.log")
    try:
        with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
            env = {**os.environ, **FAST_RETRIES}
            child = serve_child(server, env, tmp_path / "serve.log")
            try:
                yield boxes, server, child
            finally:
                child.stop(timeout=20)
                print(child.log_tail(80))
    finally:
        server.stop()


def _puts(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [j for j in entries if j["method"] == "PUT" and j["path"] == INVOICES]


def test_ui_retry_of_a_failed_run_resumes_without_resending_written_batches(stack) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment
    from prefect.states import Scheduled

    from deployments.automations import create_failure_automation

    boxes, server, child = stack
    listener = WebhookListener()
    try:
        with prefect_client(server.api_url) as client:
            wait_deployment(client, "sync-organisation/demo", child)
            create_failure_automation(listener.url)
            admin(
                boxes.xero.url,
                "PUT",
                "faults",
                {"rules": [{"method": "PUT", "path": INVOICES, "kind": "503", "after": 2}]},
            )

            run = run_deployment(
                "sync-organisation/demo", parameters={"org": "demo"}, timeout=0, as_subflow=False
            )
            failed = wait_final(client, run.id, timeout=300)
            assert failed.state.is_failed(), (failed.state, child.log_tail(60))
            assert failed.name == "demo · manual · both · since-last"

            # The automation told the webhook, with the link support opens to Retry.
            body = listener.wait_for(failed.name)
            assert body["text"].startswith(f"Sync run Failed: {failed.name}")
            assert f"/runs/flow-run/{run.id}" in body["text"]

            first = _puts(boxes.journal("xero"))
            ok = [j for j in first if j["status"] == 200]
            assert len(ok) == 2 and all(j["status"] == 503 for j in first[2:]) and len(first) > 2
            written = [key for j in ok for key in j["keys"]]
            assert len(written) > 50  # two full invoice batches (<= 50 each)

            admin(boxes.xero.url, "DELETE", "faults")
            mark = len(boxes.journal("xero"))
            # Exactly what the UI's Retry button sends (prefect/server/ui bundle: retryFlowRun).
            answer = client.set_flow_run_state(
                run.id, Scheduled(name="AwaitingRetry", message="Retry from the UI"), force=False
            )
            assert answer.status.value == "ACCEPT", answer
            done = wait_final(client, run.id, timeout=300)
            assert done.state.is_completed(), (done.state, child.log_tail(60))
            assert done.run_count == 2 and done.id == run.id

            again = _puts(boxes.journal("xero", mark))
            assert again and all(j["status"] == 200 for j in again)
            resent = [key for j in again for key in j["keys"] if key in set(written)]
            assert resent == [], f"batches one and two were sent again: {resent[:5]}..."

            # The second attempt took the finished tasks from their persisted results.
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
            states = Counter(t.state_name for t in task_runs)
            assert states["Cached"] > 0, states

        # Every good invoice is in Xero once: nothing was created twice.
        numbers = Counter(
            i.get("InvoiceNumber") for i in XeroReader(boxes.xero.url).all("Invoices", where='Type=="ACCREC"')
        )
        assert len(numbers) > 100
        assert all(n == 1 for n in numbers.values()), [k for k, n in numbers.items() if n > 1]
    finally:
        listener.close()
