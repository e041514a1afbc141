"""The dispatcher: pending record ids become runs of the org's deployment, one at a time per org.

Each pass (every ``poll_seconds``):

1. Batches handed to runs are settled: a completed run's ids are done; a failed, crashed or
   cancelled (or vanished) run's ids go back to pending, up to ``max_attempts`` runs each. A
   batch whose run was never created (the process died in between) gets it now, under the same
   idempotency key, so Prefect never creates it twice.
2. An org with pending ids and no batch in flight, whose oldest pending id has waited
   ``coalesce_seconds`` (and whose last event run started ``min_run_interval`` ago), gets one batch: its ids (Xero ids translated to the linked Zoho ids)
   and one run of ``sync-organisation/<org>`` with a record-ids window, ``trigger="event"``.

So a flood of events never starts more than one run per org at a time, never piles up scheduled
runs (one pending run per org, at most), and loses nothing: ids arriving while a run is going
wait in the ledger for the next one. The deployment's own ``concurrency_limit=1`` keeps event runs
and scheduled or manual runs apart. Only one dispatcher works at a time (a ledger lease), so
several webhook servers may share a ledger.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from ledger import Ledger
from ledger.errors import LeaseBusy, LeaseLost
from zxsync.webhooks.intake import XERO_ENTITIES, XERO_MODULES, ZOHO_MODULES

log = logging.getLogger("zxsync.webhooks")

DISPATCHER_LEASE = "webhooks:dispatcher"

RunState = Literal["waiting", "completed", "failed", "missing"]


class DeploymentMissing(RuntimeError):
    """The org's deployment is not registered (yet): its ids stay pending."""


class Launcher(Protocol):
    """Starts runs of an org's deployment and tells how they stand."""

    def start(self, org: str, record_ids: list[str], modules: list[str], key: str) -> str:
        """Create one run (idempotent on ``key``); returns its id."""
        ...

    def state(self, run_id: str) -> RunState:
        """``waiting`` (scheduled, pending, running, awaiting a slot or a retry), ``completed``,
        ``failed`` (failed, crashed, cancelled) or ``missing`` (deleted)."""
        ...


@dataclass
class Pass:
    """What one dispatcher pass did (for logs and tests)."""

    started: list[tuple[str, str, int]] = field(default_factory=list)  # (org, run id, ids)
    completed: list[str] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)


def event_options(record_ids: list[str], modules: list[str]) -> dict[str, Any]:
    """The ``options`` parameter of an event run (flows.options.RunOptions, as plain data)."""
    return {"modules": modules, "window": {"kind": "record-ids", "record_ids": record_ids}, "trigger": "event"}


def modules_for(sources: list[str]) -> list[str]:
    """The product modules that can hold these ids (empty = every module the org enables)."""
    found: set[str] = set()
    for source in sources:
        system, _, name = source.partition(":")
        if system == "xero" and name in XERO_MODULES:
            found.update(XERO_MODULES[name])
        elif system in ("zoho", "trigger") and name in ZOHO_MODULES:
            found.add(ZOHO_MODULES[name])
        else:
            return []
    from flows.options import MODULE_ORDER

    return [m for m in MODULE_ORDER if m in found]


def resolve(ledger: Ledger, org: str, items: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """Record ids a run can take: Zoho ids as they are, Xero ids turned into their linked Zoho ids.

    Returns (record ids, modules, unlinked Xero ids). A record born in Xero has no link yet: the
    record-ids window cannot import it, so it is left to the scheduled runs.
    """
    zoho_ids: list[str] = []
    unlinked: list[str] = []
    by_category: dict[str, list[str]] = {}
    for record_id, source in items:
        system, _, name = source.partition(":")
        if system == "xero":
            by_category.setdefault(name, []).append(record_id)
        else:
            zoho_ids.append(record_id)
    for category, xero_ids in by_category.items():
        linked: dict[str, str] = {}
        for entity in XERO_ENTITIES.get(category, ()):
            for xero_id, link in ledger.links_by_xero(org, entity, xero_ids).items():
                linked.setdefault(xero_id, link.zoho_id)
        for xero_id in xero_ids:
            if xero_id in linked:
                zoho_ids.append(linked[xero_id])
            else:
                unlinked.append(xero_id)
    ids = list(dict.fromkeys(zoho_ids))
    return ids, modules_for([s for _, s in items]) if ids else [], unlinked


class Dispatcher:
    """Turns the ledger's pending ids into runs (see the module docstring)."""

    def __init__(self, ledger: Callable[[], Ledger], launcher: Launcher, *, coalesce_seconds: float = 3.0,
                 max_ids_per_run: int = 1000, max_attempts: int = 3, min_run_interval: float = 0.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ledger = ledger
        self.launcher = launcher
        self.coalesce_seconds = coalesce_seconds
        self.max_ids_per_run = max_ids_per_run
        self.max_attempts = max_attempts
        self.min_run_interval = min_run_interval
        self.now = now
        self.runs_started = 0
        #: When each org's last event run was started (in memory: a restart forgets, harmlessly).
        self.last_start: dict[str, datetime] = {}

    def tick(self) -> Pass:
        """One pass: settle the batches in flight, then start runs for orgs that are due."""
        ledger = self.ledger()
        done = Pass()
        for batch in ledger.event_batches():
            if batch.flow_run_id is None:
                self._launch(ledger, batch.org, batch.batch, list(zip(batch.record_ids, batch.sources,
                                                                      strict=True)), done)
                continue
            try:
                state = self.launcher.state(batch.flow_run_id)
            except Exception:  # the Prefect API may be briefly away; try next pass
                log.warning("could not read run %s of %s; will look again", batch.flow_run_id, batch.org,
                            exc_info=True)
                done.busy.add(batch.org)
                continue
            if state == "completed":
                ledger.finish_batch(batch.org, batch.batch)
                done.completed.append(batch.flow_run_id)
            elif state in ("failed", "missing"):
                released, dropped = ledger.release_batch(batch.org, batch.batch, self.max_attempts)
                done.released[batch.org] = done.released.get(batch.org, 0) + len(released)
                if dropped:
                    done.dropped.setdefault(batch.org, []).extend(dropped)
                    log.warning("%s: %d id(s) failed %d runs and are left to the scheduled runs: %s", batch.org,
                                len(dropped), self.max_attempts, ", ".join(dropped[:20]))
            else:
                done.busy.add(batch.org)
        now = self.now()
        for pending in ledger.pending_events():
            if pending.org in done.busy:
                continue  # one run at a time: these ids go with the next run
            if (now - pending.first_received).total_seconds() < self.coalesce_seconds:
                continue
            last = self.last_start.get(pending.org)
            if last is not None and (now - last).total_seconds() < self.min_run_interval:
                continue  # spacing runs out spares the org's Xero calls (5,000 a day)
            batch = uuid.uuid4().hex
            items = ledger.claim_events(pending.org, batch, limit=self.max_ids_per_run)
            self._launch(ledger, pending.org, batch, items, done)
        return done

    def _launch(self, ledger: Ledger, org: str, batch: str, items: list[tuple[str, str]], done: Pass) -> None:
        record_ids, modules, unlinked = resolve(ledger, org, items)
        if unlinked:
            log.info("%s: %d Xero record(s) not linked to Zoho yet, left to the scheduled runs", org, len(unlinked))
        if not record_ids:
            ledger.finish_batch(org, batch)
            return
        try:
            run_id = self.launcher.start(org, record_ids, modules, key=f"zxsync-event-{batch}")
        except DeploymentMissing as exc:
            log.warning("%s: %s; its %d id(s) wait", org, exc, len(record_ids))
            ledger.release_batch(org, batch, self.max_attempts, count_attempt=False)
            done.busy.add(org)
            return
        except Exception:  # keep the batch; the next pass creates the run (same key)
            log.warning("%s: could not start a run; will try again", org, exc_info=True)
            done.busy.add(org)
            return
        ledger.set_batch_run(org, batch, run_id)
        self.runs_started += 1
        self.last_start[org] = self.now()
        done.started.append((org, run_id, len(record_ids)))
        done.busy.add(org)
        log.info("%s: run %s started for %d record(s) (%s)", org, run_id, len(record_ids),
                 ", ".join(modules) or "every module")

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0, holder: str = "webhooks") -> None:
        """Dispatch until ``stop`` is set, while holding the dispatcher lease (one dispatcher per ledger)."""
        while not stop.is_set():
            try:
                with self.ledger().lease(DISPATCHER_LEASE, holder, timeout=0, ttl=60):
                    while not stop.is_set():
                        try:
                            self.tick()
                        except Exception:  # a bad pass must not stop the dispatcher
                            log.exception("dispatcher pass failed")
                        stop.wait(poll_seconds)
            except LeaseBusy:
                stop.wait(max(poll_seconds, 5.0))  # another server dispatches; take over if it goes
            except LeaseLost:
                log.warning("the dispatcher lease was lost; taking it again")


class PrefectLauncher:
    """Runs through the Prefect API: ``create_flow_run_from_deployment`` (what ``run_deployment(...,
    timeout=0)`` does), with an idempotency key, on the org's ``sync-organisation/<org>`` deployment."""

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = api_url
        self._deployments: dict[str, Any] = {}
        self._open: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        """One client, opened on first use and kept (the dispatcher calls every second)."""
        if self._open is None:
            from contextlib import nullcontext

            from prefect.client.orchestration import get_client
            from prefect.settings import PREFECT_API_URL, temporary_settings

            # The URL is read when the client is made; the settings context need not outlive that.
            scope = temporary_settings(updates={PREFECT_API_URL: self.api_url}) if self.api_url else nullcontext()
            with scope:
                client = get_client(sync_client=True)
                client.__enter__()
            self._open = client
        return self._open

    def close(self) -> None:
        """Close the kept client (a broken connection is reopened on the next call)."""
        client, self._open = self._open, None
        if client is not None:
            try:
                client.__exit__(None, None, None)
            except Exception:  # closing a broken client must not hide the error that broke it
                log.debug("closing the Prefect client failed", exc_info=True)

    def _call(self, work: Callable[[Any], Any]) -> Any:
        with self._lock:
            try:
                return work(self._client())
            except Exception as exc:
                from prefect.exceptions import ObjectNotFound

                if not isinstance(exc, ObjectNotFound | DeploymentMissing):
                    self.close()
                raise

    def start(self, org: str, record_ids: list[str], modules: list[str], key: str) -> str:
        from prefect.exceptions import ObjectNotFound

        from deployments.registry import org_deployment_name

        def work(client: Any) -> str:
            deployment_id = self._deployments.get(org)
            if deployment_id is None:
                try:
                    deployment_id = client.read_deployment_by_name(org_deployment_name(org)).id
                except ObjectNotFound:
                    raise DeploymentMissing(f"no deployment {org_deployment_name(org)} (is it served?)") from None
                self._deployments[org] = deployment_id
            try:
                run = client.create_flow_run_from_deployment(
                    deployment_id, parameters={"org": org, "options": event_options(record_ids, modules)},
                    tags=["event"], idempotency_key=key)
            except ObjectNotFound:
                self._deployments.pop(org, None)  # redeployed under a new id: look it up again next time
                raise
            return str(run.id)

        return self._call(work)

    def state(self, run_id: str) -> RunState:
        from prefect.exceptions import ObjectNotFound

        def work(client: Any) -> RunState:
            try:
                run = client.read_flow_run(uuid.UUID(run_id))
            except ObjectNotFound:
                return "missing"
            state = run.state
            if state is None or not state.is_final():
                return "waiting"
            return "completed" if state.is_completed() else "failed"

        return self._call(work)
