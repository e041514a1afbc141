"""The dispatcher: a burst of events -> one run at a time per org, ids never lost (also across a
restart and a failed run), Xero ids to linked Zoho ids; and the Prefect launcher on a real API."""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from tests.test_webhooks_app import write_org
from tests.test_webhooks_support import wait_until
from zxsync.settings import get_settings
from zxsync.webhooks import Dispatcher, Intake, create_app
from zxsync.webhooks.dispatch import modules_for, resolve
from zxsync.webhooks.intake import ZOHO_CHANNEL

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ORGS = ("demo", "twin")


class FakeRuns:
    """Stands in for Prefect: runs finish after a few looks (or fail, when scripted), and every
    start is checked against the rule: never two unfinished runs of one org."""

    def __init__(self, looks: int = 3, fail: set[int] | None = None) -> None:
        self.looks = looks
        self.fail = fail or set()
        self.lock = threading.Lock()
        self.runs: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.overlaps: list[tuple[str, str]] = []

    def start(self, org: str, record_ids: list[str], modules: list[str], key: str) -> str:
        with self.lock:
            if key in self.by_key:
                return self.by_key[key]
            for other_id, other in self.runs.items():
                if other["org"] == org and other["state"] == "waiting":
                    self.overlaps.append((other_id, org))
            run_id = f"run-{len(self.runs) + 1}"
            self.runs[run_id] = {"org": org, "ids": list(record_ids), "modules": modules, "state": "waiting",
                                 "looks": 0, "started": time.monotonic(), "key": key}
            self.by_key[key] = run_id
            return run_id

    def state(self, run_id: str) -> str:
        with self.lock:
            run = self.runs[run_id]
            run["looks"] += 1
            if run["state"] == "waiting" and run["looks"] >= self.looks:
                number = int(run_id.split("-")[1])
                run["state"] = "failed" if number in self.fail else "completed"
            return run["state"]

    def of(self, org: str, state: str = "completed") -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r["org"] == org and r["state"] == state]


@pytest.fixture()
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    folder = tmp_path / "orgs"
    folder.mkdir()
    for org in ORGS:
        write_org(folder, org, f"0000000{ORGS.index(org)}-0000-0000-0000-000000000000", zoho_notifications=True)
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()
    with Ledger.open() as opened:
        for org in ORGS:
            opened.save_webhook_secret(ZOHO_CHANNEL.format(org=org), "zoho_channel", f"token-{org}", org=org,
                                       meta={"channel_id": "42"})
        yield opened


def callback(org: str, ids: list[str]) -> dict[str, Any]:
    return {"server_time": 1, "query_params": {}, "module": "Invoices", "ids": ids, "affected_fields": [],
            "operation": "update", "channel_id": "42", "token": f"token-{org}"}


def settle(dispatcher: Dispatcher, ledger: Ledger, timeout: float = 60.0) -> None:
    """Tick until nothing is pending or running."""
    def idle() -> bool:
        dispatcher.tick()
        return not ledger.pending_events() and not ledger.event_batches()

    wait_until(idle, timeout, "an idle queue")


def test_a_burst_of_500_events_runs_one_at_a_time_per_org_and_loses_no_id(ledger: Ledger) -> None:
    runs = FakeRuns(looks=3)
    dispatcher = Dispatcher(lambda: ledger, runs, coalesce_seconds=0.05)
    stop = threading.Event()
    ticker = threading.Thread(target=dispatcher.run_forever, args=(stop, 0.01, "test"), daemon=True)
    ticker.start()
    rng = random.Random(7)
    events = [(rng.choice(ORGS), f"81000000100{rng.randrange(300):04d}") for _ in range(500)]
    sent_at: dict[tuple[str, str], float] = {}
    sent_lock = threading.Lock()
    try:
        with TestClient(create_app(Intake(lambda: ledger))) as client:
            def post(event: tuple[str, str]) -> int:
                org, record_id = event
                with sent_lock:
                    sent_at[event] = time.monotonic()  # the last time this id was sent
                return client.post(f"/webhooks/zoho/{org}", json=callback(org, [record_id])).status_code

            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(post, events)) == {200}
        wait_until(lambda: not ledger.pending_events() and not ledger.event_batches(), 60, "the queue to drain")
    finally:
        stop.set()
        ticker.join(10)
    assert runs.overlaps == []  # never a second run of an org while one was unfinished
    for org in ORGS:
        done = runs.of(org)
        assert 1 <= len(done) <= 60  # coalesced: a handful of runs, not 250
        for (event_org, record_id), sent in sent_at.items():
            if event_org != org:
                continue
            # Some run started after this id's last event was sent, and carried it.
            assert any(record_id in r["ids"] and r["started"] >= sent for r in done), record_id
    assert all(r["modules"] == ["invoices"] for r in runs.runs.values())


def test_ids_that_arrive_while_a_run_goes_wait_for_the_next_run(ledger: Ledger) -> None:
    runs = FakeRuns(looks=2)
    dispatcher = Dispatcher(lambda: ledger, runs, coalesce_seconds=0)
    ledger.enqueue_events("demo", [("a", "zoho:Invoices"), ("b", "zoho:Invoices")])
    first = dispatcher.tick()
    assert [(org, n) for org, _, n in first.started] == [("demo", 2)]
    ledger.enqueue_events("demo", [("b", "zoho:Invoices"), ("c", "zoho:Invoices")])
    assert dispatcher.tick().started == []  # run-1 unfinished: b and c wait
    settle(dispatcher, ledger)
    assert [r["ids"] for r in runs.runs.values()] == [["a", "b"], ["b", "c"]]


def test_coalescing_waits_for_the_first_event_to_age(ledger: Ledger) -> None:
    clock = {"now": datetime.now(UTC)}
    runs = FakeRuns()
    dispatcher = Dispatcher(lambda: ledger, runs, coalesce_seconds=3, now=lambda: clock["now"])
    ledger.enqueue_events("demo", [("a", "zoho:Invoices")])
    assert dispatcher.tick().started == []
    ledger.enqueue_events("demo", [("b", "zoho:Invoices")])
    clock["now"] += timedelta(seconds=3.5)
    assert [n for _, _, n in dispatcher.tick().started] == [2]


def test_runs_of_an_org_can_be_spaced_out_to_spare_its_xero_calls(ledger: Ledger) -> None:
    clock = {"now": datetime.now(UTC) + timedelta(seconds=1)}
    runs = FakeRuns(looks=1)
    dispatcher = Dispatcher(lambda: ledger, runs, coalesce_seconds=0, min_run_interval=60,
                            now=lambda: clock["now"])
    ledger.enqueue_events("demo", [("a", "zoho:Invoices")])
    assert len(dispatcher.tick().started) == 1
    ledger.enqueue_events("demo", [("b", "zoho:Invoices")])
    clock["now"] += timedelta(seconds=30)
    assert dispatcher.tick().completed == ["run-1"]  # done, but the next run waits its turn
    assert ledger.pending_ids("demo") == ["b"]
    clock["now"] += timedelta(seconds=31)
    assert [n for _, _, n in dispatcher.tick().started] == [1]


def test_a_restart_between_claim_and_run_creates_the_run_once_and_a_restart_later_keeps_it(
        ledger: Ledger) -> None:
    runs = FakeRuns(looks=1_000)
    ledger.enqueue_events("demo", [("a", "zoho:Invoices")])
    ledger.claim_events("demo", "batch-1")  # the process died before the run was created
    with Ledger.open() as reopened:  # a new process: its own ledger handle, the same database
        restarted = Dispatcher(lambda: reopened, runs, coalesce_seconds=0)
        assert [run for _, run, _ in restarted.tick().started] == ["run-1"]
        assert runs.runs["run-1"]["key"] == "zxsync-event-batch-1"
        assert restarted.tick().started == []  # run-1 is known now
    # A second restart creates no run either; when run-1 finishes, its ids are done.
    with Ledger.open() as reopened:
        again = Dispatcher(lambda: reopened, runs, coalesce_seconds=0)
        assert again.tick().started == [] and [b.flow_run_id for b in reopened.event_batches()] == ["run-1"]
        runs.looks = 0
        assert again.tick().completed == ["run-1"]
        assert reopened.event_batches() == [] and reopened.pending_events() == []
    assert len(runs.runs) == 1


def test_a_failed_run_gives_its_ids_to_the_next_until_attempts_run_out(ledger: Ledger) -> None:
    runs = FakeRuns(looks=1, fail={1, 2})
    dispatcher = Dispatcher(lambda: ledger, runs, coalesce_seconds=0, max_attempts=2)
    ledger.enqueue_events("demo", [("a", "zoho:Invoices")])
    dispatcher.tick()  # run-1
    ledger.enqueue_events("demo", [("b", "zoho:Invoices")])
    second = dispatcher.tick()  # run-1 failed: a is pending again, and goes with b in run-2
    assert second.released == {"demo": 1} and [n for _, _, n in second.started] == [2]
    assert sorted(runs.runs["run-2"]["ids"]) == ["a", "b"]
    third = dispatcher.tick()  # run-2 failed: a has failed twice (dropped), b once (run-3)
    assert third.dropped == {"demo": ["a"]}
    settle(dispatcher, ledger)
    assert runs.runs["run-3"]["ids"] == ["b"] and runs.runs["run-3"]["state"] == "completed"


def test_xero_ids_become_linked_zoho_ids_and_unlinked_ones_wait_for_the_schedule(ledger: Ledger) -> None:
    ledger.upsert_links("demo", "invoice", [{"zoho_id": "z-inv", "xero_id": "x-inv"}])
    ledger.upsert_links("demo", "bill", [{"zoho_id": "z-po", "xero_id": "x-bill"}])
    ledger.upsert_links("demo", "contact", [{"zoho_id": "z-acc", "xero_id": "x-con"}])
    items = [("x-inv", "xero:INVOICE"), ("x-bill", "xero:INVOICE"), ("x-new", "xero:INVOICE"),
             ("x-con", "xero:CONTACT"), ("z-inv", "zoho:Invoices")]
    ids, modules, unlinked = resolve(ledger, "demo", items)
    assert ids == ["z-inv", "z-po", "z-acc"] and unlinked == ["x-new"]
    assert modules == ["contacts", "vendors", "invoices", "purchase_orders", "sales_orders", "quotes", "payments"]
    assert modules_for(["trigger:Products"]) == ["products"]
    runs = FakeRuns()
    ledger.enqueue_events("demo", [("x-new", "xero:INVOICE")])
    assert Dispatcher(lambda: ledger, runs, coalesce_seconds=0).tick().started == []
    assert runs.runs == {} and ledger.pending_events() == [] and ledger.event_batches() == []


def test_the_prefect_launcher_starts_one_event_run_per_batch_on_the_orgs_deployment(
        ledger: Ledger, prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Completed

    from deployments.registry import org_spec, to_runner_deployment
    from mappings import load_org
    from zxsync.webhooks import PrefectLauncher

    launcher = PrefectLauncher(PREFECT_API_URL.value())  # explicit: the dispatcher runs on its own thread
    dispatcher = Dispatcher(lambda: ledger, launcher, coalesce_seconds=0)
    ledger.enqueue_events("twin", [("x", "zoho:Invoices")])
    assert dispatcher.tick().started == []  # no deployment yet: the ids wait
    assert ledger.pending_ids("twin") == ["x"]

    deployment_id = to_runner_deployment(org_spec(load_org("twin"))).apply()
    with get_client(sync_client=True) as client:
        client.pause_deployment(deployment_id)  # schedules paused: only event runs
        [(_, run_id, _)] = dispatcher.tick().started
        ledger.enqueue_events("twin", [("y", "zoho:Invoices"), ("z", "zoho:Products")])
        assert dispatcher.tick().started == []  # the first run is still scheduled
        run = client.read_flow_run(run_id)
        assert run.deployment_id == deployment_id and "event" in run.tags
        assert run.parameters["options"] == {"modules": ["invoices"], "trigger": "event",
                                             "window": {"kind": "record-ids", "record_ids": ["x"]}}
        client.set_flow_run_state(run.id, Completed(), force=True)
        second = dispatcher.tick()
        assert second.completed == [run_id]
        [(_, next_id, n)] = second.started
        assert n == 2
        params = client.read_flow_run(next_id).parameters["options"]
        assert params["window"]["record_ids"] == ["y", "z"] and params["modules"] == ["products", "invoices"]
        # The same batch key never makes a second run.
        [batch] = ledger.event_batches("twin")
        assert launcher.start("twin", ["y", "z"], [], key=f"zxsync-event-{batch.batch}") == next_id
