"""Scale-out: sync-all over six organisations on a process work pool with two workers, the Prefect
server and the ledger both on PostgreSQL, cross-process tenant limits on, a manual run alongside.

The test creates its own throwaway databases on the local PostgreSQL (the Prefect one with
``pg_trgm``), six orgs in both sandboxes (``POST /_sandbox/orgs``), their org files in a tmp
``ZX_ORGS_DIR``, deploys the rendered prefect.yaml with ``prefect deploy --all`` from a directory
that is not the repository, and starts two ``prefect worker start`` processes elsewhere too. The
Xero limits are shrunk (in the sandbox and in the settings) far below what a run would use
unthrottled; the journal must show no tenant over them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deployments.processes import Child, spawn
from deployments.registry import render_prefect_yaml
from deployments.server import PrefectServer, prefect_env, start_prefect_server
from tests.e2e_support import running_sandboxes
from tests.ledger_support import PG_ADMIN_URL, require_pg
from tests.test_ops_support import admin, prefect_client, tenant_load, wait_deployment, wait_final
from zxsync.demo import onboard_sandbox
from zxsync.settings import REPO_ROOT, get_settings

pytestmark = pytest.mark.postgres

ORGS = [f"org{i}" for i in range(1, 7)]
POOL = "zxsync-scaleout"
#: Per tenant: 1 in flight, 4 calls per 2 s. A run makes ~15 Xero calls, starting with 7 reference
#: reads back to back: unthrottled, well over 4 in 2 s (tests/test_ops_limits.py has the control).
WINDOW = 2.0
XERO = {"ZX_XERO_CONCURRENCY": "1", "ZX_XERO_CALLS_PER_WINDOW": "4", "ZX_XERO_WINDOW_SECONDS": str(WINDOW)}
SANDBOX_LIMITS = {"concurrent": 1, "per_window": 4, "window_seconds": WINDOW}


@pytest.fixture()
def databases() -> Iterator[tuple[str, str]]:
    """(ledger URL, Prefect URL): two fresh databases, dropped afterwards."""
    require_pg()
    suffix = uuid.uuid4().hex[:10]
    names = [f"zx_scaleout_ledger_{suffix}", f"zx_scaleout_prefect_{suffix}"]
    admin_engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base = make_url(PG_ADMIN_URL)
    try:
        with admin_engine.connect() as connection:
            for name in names:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        prefect_db = create_engine(base.set(database=names[1]), isolation_level="AUTOCOMMIT")
        with prefect_db.connect() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        prefect_db.dispose()
        yield (
            base.set(database=names[0]).render_as_string(hide_password=False),
            base.set(drivername="postgresql+asyncpg", database=names[1]).render_as_string(
                hide_password=False
            ),
        )
    finally:
        with admin_engine.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def _org_files(folder: Path) -> None:
    folder.mkdir()
    demo = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
    for slug in ORGS:
        data = {**demo, "slug": slug, "name": f"Scale-out {slug}"}
        # Customers, items and invoices: enough load for the limits, fewer calls to wait for.
        data["modules"] = {
            **demo["modules"],
            **{
                m: {**demo["modules"][m], "enabled": False}
                for m in ("vendors", "purchase_orders", "payments")
            },
        }
        (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _workers(server: PrefectServer, env: dict[str, str], tmp_path: Path) -> list[Child]:
    worker_env = prefect_env(
        server.home,
        server.api_url,
        base=env,
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
    )
    elsewhere = tmp_path / "worker-cwd"  # not the repository: flows come from the installed package
    elsewhere.mkdir()
    return [
        spawn(
            f"worker-{n}",
            [
                sys.executable,
                "-m",
                "prefect",
                "worker",
                "start",
                "--pool",
                POOL,
                "--name",
                f"worker-{n}",
                "--type",
                "process",
            ],
            env=worker_env,
            log_path=tmp_path / f"worker-{n}.log",
            cwd=elsewhere,
        )
        for n in (1, 2)
    ]


def test_sync_all_on_two_workers_with_postgres_and_shared_tenant_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, databases: tuple[str, str]
) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment

    ledger_url, prefect_url = databases
    orgs_dir = tmp_path / "orgs"
    _org_files(orgs_dir)
    for name, value in {"ZX_DATABASE_URL": ledger_url, "ZX_ORGS_DIR": str(orgs_dir), **XERO}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    server = start_prefect_server(
        tmp_path / "prefect",
        0,
        database_url=prefect_url,
        log_path=tmp_path / "server.log",
        extra_env={"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"},
    )
    workers: list[Child] = []
    clock = time.monotonic()
    try:
        with running_sandboxes(tmp_path / "sandbox", monkeypatch, onboard=None) as boxes:
            tenants: dict[str, str] = {}
            for slug in ORGS:
                xero = admin(boxes.xero.url, "POST", "orgs", {"name": f"Scale-out {slug}", "seed": "empty"})
                zoho = admin(boxes.zoho.url, "POST", "orgs", {"name": f"Scale-out {slug}", "seed": "20"})
                onboard_sandbox(slug, xero_org=xero["tenant_id"], zoho_org=zoho["org_id"])
                tenants[slug] = xero["tenant_id"]
            admin(boxes.xero.url, "PUT", "limits", SANDBOX_LIMITS)
            from tasks import runtime

            runtime.reset()

            # Deploy the rendered prefect.yaml from a directory that is not the repository.
            project = tmp_path / "project"
            project.mkdir()
            (project / "prefect.yaml").write_text(render_prefect_yaml(work_pool=POOL), encoding="utf-8")
            env = {**os.environ, "ZX_PREFECT_LIMITS": "true"}
            with prefect_client(server.api_url) as client:
                client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
            deploy = subprocess.run(
                [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
                cwd=project,
                env=prefect_env(server.home, server.api_url, base=env),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
            workers = _workers(server, env, tmp_path)
            print(f"set up in {time.monotonic() - clock:.0f} s")

            with prefect_client(server.api_url) as client:
                wait_deployment(client, "sync-all/all-orgs")
                fleet = run_deployment(
                    "sync-all/all-orgs", parameters={"poll_seconds": 1.0}, timeout=0, as_subflow=False
                )
                manual = run_deployment(
                    "sync-organisation/org3",
                    parameters={
                        "org": "org3",
                        "options": {"trigger": "manual", "modules": ["contacts", "invoices"]},
                    },
                    timeout=0,
                    as_subflow=False,
                )
                fleet_done = wait_final(client, fleet.id, timeout=900, poll=2)
                manual_done = wait_final(client, manual.id, timeout=900, poll=2)
                print(f"runs done at {time.monotonic() - clock:.0f} s")
                logs = "\n".join(w.log_tail(40) for w in workers)
                assert fleet_done.state.is_completed(), (fleet_done.state, logs)
                assert manual_done.state.is_completed(), (manual_done.state, logs)
                org_runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=ORGS))
                )
                by_org: dict[str, list[Any]] = {}
                for run in org_runs:
                    if "auto-scheduled" not in run.tags:  # the schedules' future runs are not ours
                        by_org.setdefault(run.parameters["org"], []).append(run)
                t0 = fleet_done.start_time
                print(
                    "fleet",
                    fleet_done.total_run_time,
                    {
                        slug: [
                            (
                                r.state_name,
                                round((r.start_time - t0).total_seconds()),
                                round(r.total_run_time.total_seconds()),
                            )
                            for r in runs
                        ]
                        for slug, runs in sorted(by_org.items())
                    },
                )
                assert sorted(by_org) == ORGS
                assert all(run.state.is_completed() for runs in by_org.values() for run in runs)
                assert len(by_org["org3"]) == 2  # its fleet run and the manual one, one after the other
                assert {w for runs in by_org.values() for r in runs for w in [r.work_pool_name]} == {POOL}
                limits = {limit.name for limit in client.read_global_concurrency_limits(limit=100)}
                assert {f"xero-calls:{t}" for t in tenants.values()} <= limits

            journal = boxes.journal("xero")
            for slug, tenant in tenants.items():
                load = tenant_load(journal, tenant, WINDOW)
                print(slug, load)
                assert load["calls"] > 2 * SANDBOX_LIMITS["per_window"]  # more than the limits let through at once
                assert load["busiest_window"] <= SANDBOX_LIMITS["per_window"], (slug, load)
                assert load["max_in_flight"] <= SANDBOX_LIMITS["concurrent"], (slug, load)
                assert load["rate_limited"] == 0, (slug, load)
            # Every org's 20 invoices reached its own tenant.
            stats = requests.get(f"{boxes.xero.url}/_sandbox/stats", timeout=30).json()["by_tenant"]
            assert all(stats[t]["writes"] > 0 for t in tenants.values())
    finally:
        for worker in workers:
            worker.stop(timeout=20, first=signal.SIGINT)
        server.stop()
