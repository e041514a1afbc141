"""The frame both sandboxes share: faults, one commit per request, stats/journal, clock, persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.common.base import Sandbox
from sandbox.common.faults import Fault
from sandbox.server import start


class CounterSandbox(Sandbox):
    """A minimal emulated API: PUT /things/{id} stores a thing; GET /things lists them."""

    name = "toy"
    token_routes = frozenset({"/token"})
    read_only_posts = frozenset({"/search"})

    def add_routes(self, app: FastAPI) -> None:
        @app.put("/things/{thing_id}")
        def put_thing(thing_id: str, request: Request) -> dict[str, Any]:
            self.store.put("t1", "things", thing_id, {"id": thing_id})
            request.state.sandbox_tenant = "t1"
            request.state.journal_keys = [thing_id]
            return {"id": thing_id}

        @app.get("/things")
        def list_things() -> list[str]:
            return sorted(self.store.table("t1", "things"))

        @app.post("/token")
        def token() -> dict[str, str]:
            return {"access_token": "x"}

        @app.post("/search")
        def search() -> list[str]:
            return []

    def seed(self, seed: str) -> None:
        if seed == "demo":
            self.store.put("t1", "things", "seeded", {"id": "seeded"})

    def fault_response(self, fault: Fault) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.kind == "429" else {}
        return JSONResponse({"fault": fault.kind}, status_code=int(fault.kind), headers=headers)


@pytest.fixture()
def toy(tmp_path: Path):
    running = start(CounterSandbox(tmp_path))
    yield running
    running.stop()


def test_stats_and_journal_count_reads_writes_and_templates(toy) -> None:
    url = toy.url
    assert requests.put(f"{url}/things/a").status_code == 200
    assert requests.get(f"{url}/things").json() == ["a", "seeded"]
    requests.post(f"{url}/token")
    requests.post(f"{url}/search")
    requests.get(f"{url}/_sandbox/health")  # admin calls are not recorded
    stats = requests.get(f"{url}/_sandbox/stats").json()
    assert stats["calls"] == {"PUT /things/{thing_id}": 1, "GET /things": 1, "POST /token": 1, "POST /search": 1}
    assert (stats["writes"], stats["reads"]) == (1, 2)
    assert stats["by_tenant"]["t1"]["writes"] == 1
    journal = requests.get(f"{url}/_sandbox/journal", params={"since": 0}).json()
    assert [j["seq"] for j in journal] == [1, 2, 3, 4]
    assert journal[0]["keys"] == ["a"] and journal[0]["path"] == "/things/a"
    assert [j["seq"] for j in requests.get(f"{url}/_sandbox/journal", params={"since": 3}).json()] == [4]


def test_error_faults_count_then_stop(toy) -> None:
    url = toy.url
    rules = [{"method": "PUT", "path": "/things/*", "kind": "503", "count": 2, "after": 1}]
    requests.put(f"{url}/_sandbox/faults", json={"rules": rules}).raise_for_status()
    codes = [requests.put(f"{url}/things/{i}").status_code for i in range(4)]
    assert codes == [200, 503, 503, 200]
    assert sorted(requests.get(f"{url}/things").json()) == ["0", "3", "seeded"]
    assert requests.get(f"{url}/_sandbox/stats").json()["writes"] == 2


def test_drop_before_commit_writes_nothing_and_after_commit_writes(toy) -> None:
    url = toy.url
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"path": "/things/lost", "kind": "drop_before_commit"},
        {"path": "/things/kept", "kind": "drop_after_commit"}]}).raise_for_status()
    for name in ("lost", "kept"):
        with pytest.raises(requests.exceptions.RequestException):
            requests.put(f"{url}/things/{name}")
    assert requests.get(f"{url}/things").json() == ["kept", "seeded"]
    journal = requests.get(f"{url}/_sandbox/journal").json()
    assert [(j["fault"], j["status"]) for j in journal[:2]] == [("drop_before_commit", 0), ("drop_after_commit", 0)]


def test_429_fault_carries_retry_after_and_counts_as_rate_limited(toy) -> None:
    url = toy.url
    requests.put(f"{url}/_sandbox/faults",
                 json={"rules": [{"kind": 429, "count": 1, "retry_after": 3}]}).raise_for_status()
    answer = requests.get(f"{url}/things")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert requests.get(f"{url}/_sandbox/stats").json()["rate_limited"] == 1
    requests.delete(f"{url}/_sandbox/faults").raise_for_status()
    assert requests.get(f"{url}/things").status_code == 200


def test_state_and_clock_survive_a_restart_and_reset_clears(tmp_path: Path) -> None:
    first = start(CounterSandbox(tmp_path))
    requests.put(f"{first.url}/things/x").raise_for_status()
    requests.put(f"{first.url}/_sandbox/clock", json={"advance_seconds": 400}).raise_for_status()
    first.stop()
    second = start(CounterSandbox(tmp_path))
    try:
        assert requests.get(f"{second.url}/things").json() == ["seeded", "x"]
        assert requests.get(f"{second.url}/_sandbox/clock").json()["offset_seconds"] == 400
        assert requests.put(f"{second.url}/_sandbox/clock", json={"advance_seconds": -1}).status_code == 400
        requests.post(f"{second.url}/_sandbox/reset", params={"seed": "empty"}).raise_for_status()
        assert requests.get(f"{second.url}/things").json() == []
        assert requests.get(f"{second.url}/_sandbox/stats").json()["calls"] == {"GET /things": 1}
    finally:
        second.stop()


def test_slow_after_commit_commits_before_the_answer(toy) -> None:
    import threading
    import time

    url = toy.url
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"path": "/things/late", "kind": "slow_after_commit", "delay_seconds": 2}]}).raise_for_status()
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(requests.put(f"{url}/things/late").status_code))
    thread.start()
    deadline = time.monotonic() + 10
    while "late" not in requests.get(f"{url}/things").json():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert answers == []  # committed, answer still held back
    thread.join()
    assert answers == [200]
