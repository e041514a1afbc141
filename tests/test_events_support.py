"""The whole event-driven stack on one machine, for the end-to-end test and the latency benchmark
(holds no tests): both sandboxes, a Prefect server, the demo org's deployment served with its
schedules paused, a first full sync, and ``zxsync webhooks`` with the Xero sandbox's webhook and
a Zoho notification channel delivering to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from deployments.processes import Child
from deployments.server import PrefectServer, free_port, start_prefect_server
from tests.e2e_support import Sandboxes, running_sandboxes
from tests.test_ops_support import prefect_client, serve_child, wait_deployment, wait_final
from zxsync.settings import REPO_ROOT, get_settings

XERO_KEY_NAME = "harbour-app"
XERO_KEY = "e2e-xero-webhook-key-" + "k" * 40
DEPLOYMENT = "sync-organisation/demo"


@dataclass
class EventStack:
    boxes: Sandboxes
    prefect: PrefectServer
    serve: Child
    webhooks: Any  # zxsync.webhooks.WebhookServer
    deployment_id: Any

    def runs(self) -> list[Any]:
        """Every flow run of the demo deployment, oldest first."""
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
        from prefect.client.schemas.sorting import FlowRunSort

        with prefect_client(self.prefect.api_url) as client:
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment_id])),
                sort=FlowRunSort.START_TIME_ASC, limit=200)


def demo_with_webhooks(folder: Path) -> None:
    """orgs/demo.yaml (its schedules kept) with the event-driven sync turned on."""
    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    data["webhooks"] = {"xero_key": XERO_KEY_NAME, "zoho_notifications": True}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@contextmanager
def event_stack(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, poll_seconds: str = "1",
                coalesce_seconds: float = 2.0) -> Iterator[EventStack]:
    """Start everything (about a minute on 2 cores) and tear it all down afterwards."""
    from prefect.deployments import run_deployment

    from ledger import Ledger
    from zxsync.webhooks import PrefectLauncher, WebhookServer, WebhookSettings, store_xero_key

    demo_with_webhooks(tmp / "orgs")
    monkeypatch.setenv("ZX_ORGS_DIR", str(tmp / "orgs"))
    get_settings.cache_clear()
    prefect = start_prefect_server(tmp / "prefect", 0, log_path=tmp / "prefect-server.log")
    try:
        with running_sandboxes(tmp / "sandbox", monkeypatch) as boxes:
            child = serve_child(prefect, dict(os.environ), tmp / "serve.log", poll_seconds=poll_seconds)
            webhooks = None
            try:
                with prefect_client(prefect.api_url) as client:
                    deployment = wait_deployment(client, DEPLOYMENT, child)
                    client.pause_deployment(deployment.id)  # schedules paused: only events start runs
                    first = run_deployment(DEPLOYMENT, parameters={"org": "demo"}, timeout=0, as_subflow=False)
                    done = wait_final(client, first.id, timeout=600)
                    assert done.state.is_completed(), (done.state, child.log_tail(60))
                port = free_port()
                settings = WebhookSettings(port=port, public_url=f"http://127.0.0.1:{port}",
                                           coalesce_seconds=coalesce_seconds, poll_seconds=0.5)
                webhooks = WebhookServer(settings=settings, launcher=PrefectLauncher(prefect.api_url),
                                         channels_enabled=False)
                url = webhooks.start()
                with Ledger.open() as ledger:
                    store_xero_key(ledger, XERO_KEY_NAME, XERO_KEY)
                status = webhooks.keeper.ensure("demo")
                assert status.action == "created", status
                answer = requests.put(f"{boxes.xero.url}/_sandbox/webhooks", timeout=60, json={
                    "url": f"{url}/webhooks/xero/{XERO_KEY_NAME}", "key": XERO_KEY}).json()
                assert answer["status"] == "OK", answer
                yield EventStack(boxes=boxes, prefect=prefect, serve=child, webhooks=webhooks,
                                 deployment_id=deployment.id)
            finally:
                if webhooks is not None:
                    webhooks.stop()
                child.stop(timeout=20)
    finally:
        prefect.stop()
