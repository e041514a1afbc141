"""``zxsync demo``: the whole product on one machine, without any account or credential.

1. both sandboxes on free ports (state under ``ZX_HOME/sandbox``), the endpoint overrides set;
2. a Prefect server with its UI (``prefect server start``, database under ``ZX_HOME/prefect``);
3. the demo org connected to the sandboxes;
4. the registry's deployments served by a child process (``python -m deployments serve``);
5. one run of the demo deployment, its summary, the UI's address and where the data lives;
6. serving until Ctrl-C (``--once``: exit after the first run, 0 if it completed).

Children run in sessions of their own and are stopped with their whole process tree, so nothing
is left behind however the demo ends.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.processes import Child, spawn
from deployments.server import PrefectServer, prefect_env, start_prefect_server
from zxsync.settings import get_settings

DEMO_ORG = "demo"
#: The served deployments look for new runs this often in the demo (Prefect's default is 10 s).
DEMO_POLL_SECONDS = "2"
#: How long the demo waits for its first run.
RUN_TIMEOUT_SECONDS = 900.0

Say = Callable[[str], None]


@dataclass
class DemoPaths:
    """Where the demo keeps its data (all under ZX_HOME)."""

    home: Path
    ledger_url: str
    sandbox: Path
    prefect_home: Path
    logs: Path

    @property
    def prefect_db(self) -> Path:
        return self.prefect_home / "prefect.db"

    @classmethod
    def from_settings(cls) -> DemoPaths:
        s = get_settings()
        home = s.home.resolve()
        return cls(
            home=home,
            ledger_url=s.resolved_database_url,
            sandbox=s.sandbox_dir.resolve(),
            prefect_home=s.prefect_home.resolve(),
            logs=(home / "logs"),
        )


class _Stop(Exception):
    """Ctrl-C or SIGTERM: leave, stopping everything."""


def _stop_on_signals() -> None:
    def handler(signum: int, frame: Any) -> None:
        _ignore_signals()  # a second Ctrl-C must not interrupt the clean-up
        raise _Stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def _sandboxes(paths: DemoPaths, say: Say) -> Iterator[tuple[str, str]]:
    """Both sandboxes on free ports; the endpoint overrides point at them (children inherit them)."""
    from sandbox.server import start_both

    xero, zoho = start_both(paths.sandbox, 0, 0, seed="demo")
    try:
        for name in ("ZX_XERO_LOGIN_URL", "ZX_XERO_IDENTITY_URL", "ZX_XERO_API_URL"):
            os.environ[name] = xero.url
        for name in ("ZX_ZOHO_ACCOUNTS_URL", "ZX_ZOHO_API_URL"):
            os.environ[name] = zoho.url
        get_settings.cache_clear()
        say(f"  Xero sandbox       {xero.url}")
        say(f"  Zoho CRM sandbox   {zoho.url}")
        yield xero.url, zoho.url
    finally:
        from tasks import runtime

        runtime.reset()
        xero.stop()
        zoho.stop()


@contextmanager
def _prefect_server(paths: DemoPaths, ui_port: int) -> Iterator[PrefectServer]:
    """The Prefect server, started without waiting (the sandboxes start meanwhile)."""
    server = start_prefect_server(
        paths.prefect_home, ui_port, log_path=paths.logs / "prefect-server.log", wait=False
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _served(server: PrefectServer, paths: DemoPaths, say: Say) -> Iterator[Child]:
    """The registry's deployments, served by a child process against the demo's server."""
    env = prefect_env(
        paths.prefect_home,
        server.api_url,
        PREFECT_RUNNER_POLL_FREQUENCY=DEMO_POLL_SECONDS,
        PREFECT_UI_URL=server.url,
    )
    child = spawn(
        "serve",
        # Only the demo org: other orgs of the registry must not run against the sandboxes.
        [sys.executable, "-m", "deployments", "serve", "--org", DEMO_ORG],
        env=env,
        log_path=paths.logs / "serve.log",
    )
    try:
        yield child
    finally:
        # SIGINT first: the served runs end as the API's Crashed/Cancelled while the server is still up.
        child.stop(timeout=20, first=signal.SIGINT)


def onboard_sandbox(org: str, *, xero_org: str | None = None, zoho_org: str | None = None) -> Any:
    """Connect ``org`` to the sandboxes (and create its Xero_* fields in Zoho where onboarding can);
    returns the Xero connection."""
    from zxsync import onboarding

    onboard = getattr(onboarding, "onboard_sandbox_org", None)
    if onboard is not None:
        return onboard(org, xero_org=xero_org, zoho_org=zoho_org)[0]
    return onboarding.connect_sandbox(org, xero_org=xero_org, zoho_org=zoho_org)[0]


def _wait_for_deployment(server: PrefectServer, child: Child, name: str, timeout: float = 300.0) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            if not child.running():
                raise RuntimeError(f"serving the deployments stopped; its log ends with:\n{child.log_tail()}")
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"deployment {name} did not appear on {server.url}") from None
            time.sleep(0.5)


def _wait_for_run(child: Child, run_id: Any, timeout: float = RUN_TIMEOUT_SECONDS) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            if not child.running():
                raise RuntimeError(f"serving the deployments stopped; its log ends with:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                return run
            time.sleep(1.0)


def _summary_text(run: Any) -> str:
    """The run's summary (from its persisted result), else its state and message."""
    from zxsync.runs import format_summary

    state = run.state
    if state is not None and state.is_completed():
        try:
            return format_summary(dict(state.result(raise_on_failure=False)))
        except Exception as exc:  # noqa: BLE001 - the run's artifacts still hold the summary
            return f"{DEMO_ORG}: COMPLETED (summary unreadable here: {exc}; see the run's artifacts)"
    name = state.name if state is not None else "unknown"
    message = f": {state.message}" if state is not None and state.message else ""
    return f"{DEMO_ORG}: {name}{message}"


def run_demo(*, once: bool = False, ui_port: int = 4200, say: Say = print) -> int:
    """Run the demo (see the module docstring); returns the exit code."""
    paths = DemoPaths.from_settings()
    paths.logs.mkdir(parents=True, exist_ok=True)
    # Every Prefect client in this process (and every child) uses the demo's home and server.
    os.environ["PREFECT_HOME"] = str(paths.prefect_home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    say(f"zxsync demo (data in {paths.home})")
    code = 1
    _stop_on_signals()
    try:
        with ExitStack() as stack:
            try:
                started = time.monotonic()
                server = stack.enter_context(_prefect_server(paths, ui_port))
                stack.enter_context(_sandboxes(paths, say))
                server.wait_healthy()
                say(f"  Prefect server     {server.url}  (ready in {time.monotonic() - started:.1f} s)")
                os.environ["PREFECT_API_URL"] = server.api_url
                os.environ["PREFECT_UI_URL"] = server.url
                xero = onboard_sandbox(DEMO_ORG)
                say(f"  Connected {DEMO_ORG} to the sandboxes (Xero tenant {xero.tenant_id})")
                child = stack.enter_context(_served(server, paths, say))
                code = _first_run(server, child, paths, say)
                if not once:
                    say(
                        "\nServing the deployments until Ctrl-C (scheduled runs and runs started from the UI "
                        "land here)."
                    )
                    while child.running() and server.child.running():
                        time.sleep(1.0)
                    say(f"A child process stopped unexpectedly; see the logs in {paths.logs}")
                    code = 1
            except _Stop:
                code = 0 if not once else 130
            except RuntimeError as exc:
                say(f"zxsync demo: {exc}")
                code = 1
            finally:
                _ignore_signals()
                say("Stopping the served deployments, the Prefect server and the sandboxes ...")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    say("Stopped; nothing is left running.")
    return code


def _first_run(server: PrefectServer, child: Child, paths: DemoPaths, say: Say) -> int:
    from prefect.deployments import run_deployment

    from deployments.registry import org_deployment_name, registry_specs

    specs = registry_specs(only=[DEMO_ORG])
    deployment = _wait_for_deployment(server, child, org_deployment_name(DEMO_ORG))
    say("  Serving            " + ", ".join(s.full_name for s in specs))
    for spec in specs:
        if spec.name == DEMO_ORG and spec.schedules:
            say(
                f"  Schedules of {DEMO_ORG}    "
                + ", ".join(f"{s.cron} ({s.timezone})" for s in spec.schedules)
            )
    started = time.monotonic()
    run = run_deployment(
        org_deployment_name(DEMO_ORG),
        parameters={"org": DEMO_ORG, "options": {"trigger": "cli"}},
        timeout=0,
        as_subflow=False,
    )
    say(
        f"\nStarted a run of {org_deployment_name(DEMO_ORG)}; watch it live at {server.url}/runs/flow-run/{run.id}"
    )
    run = _wait_for_run(child, run.id)
    say(
        f"Run '{run.name}' ended {run.state.name if run.state else '?'} after {time.monotonic() - started:.0f} s\n"
    )
    say(_summary_text(run))
    say(f"""
Open the Prefect UI: {server.url}
  this run        {server.url}/runs/flow-run/{run.id}
                  (Artifacts tab: sync-summary-{DEMO_ORG} and sync-rejects-{DEMO_ORG}; Logs tab: what each batch did)
  the deployment  {server.url}/deployments/deployment/{deployment.id}
                  (its schedules; Run > Custom run opens the form: modules, direction, window, dry run)
  artifacts       {server.url}/artifacts (keyed: the latest summary and rejects of every org)
Where the data lives (ZX_HOME={paths.home}):
  ledger          {paths.ledger_url}
  sandboxes       {paths.sandbox}
  Prefect         {paths.prefect_db} (task results in {paths.prefect_home / "storage"})
  logs            {paths.logs}""")
    return 0 if run.state is not None and run.state.is_completed() else 1
