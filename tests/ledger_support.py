"""Fixtures and helpers for the ledger tests (imported by tests/test_ledger*.py).

PostgreSQL: the local server (``ZX_TEST_PG_URL``, default postgres@127.0.0.1:5432) hosts a
throwaway database ``zx_ledger_test_<random>`` per test session, dropped at the end. When the
server is unreachable the postgres tests skip, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger import Ledger
from ledger.models import Base
from zxsync.settings import get_settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "ledger_worker.py"
PG_ADMIN_URL = os.environ.get("ZX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# --- environment ------------------------------------------------------------------------------
@pytest.fixture
def ledger_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """ZX_HOME and a secret key in tmp_path (nothing reads ~/.zxsync or ~/.config); also handed to workers."""
    env = {
        "ZX_HOME": str(tmp_path / "home"),
        "ZX_SECRET_KEY": Fernet.generate_key().decode(),
        "ZX_SECRET_KEY_FILE": str(tmp_path / "keys" / "secret.key"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ZX_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


# --- PostgreSQL -------------------------------------------------------------------------------
def pg_reachable() -> bool:
    """True when the local PostgreSQL server accepts a connection."""
    engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure to connect means "not reachable"
        return False
    finally:
        engine.dispose()


def require_pg() -> None:
    """Skip (or fail under CI) when PostgreSQL is unreachable."""
    if pg_reachable():
        return
    message = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def create_pg_database() -> str:
    """Create ``zx_ledger_test_<random>`` and return its URL."""
    name = f"zx_ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop a database made by :func:`create_pg_database` (even with sessions still open)."""
    name = make_url(url).database
    assert name and name.startswith("zx_ledger_test_")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_session_db() -> Iterator[str]:
    """One throwaway database for the session's postgres tests."""
    require_pg()
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that has never been migrated (a new file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'ledger.db'}"
        return
    require_pg()
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, ledger_env: dict[str, str]) -> str:
    """A migrated, empty ledger database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_session_db")
    with Ledger.open(url) as ledger, ledger.engine.begin() as connection:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    return url


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    """An open ledger on each backend."""
    with Ledger.open(db_url) as opened:
        yield opened


# --- worker processes -------------------------------------------------------------------------
def run_workers(
    mode: str, url: str, tmp_path: Path, env: dict[str, str], count: int = 2, **options: Any
) -> tuple[list[dict[str, Any]], Path]:
    """Run ``count`` worker processes in ``mode`` released together; returns their results and the log."""
    log = tmp_path / f"{mode}.log"
    ready = tmp_path / f"{mode}.ready"
    ready.mkdir()
    go = tmp_path / f"{mode}.go"
    procs = []
    for worker in range(count):
        spec = {
            "mode": mode,
            "url": url,
            "log": str(log),
            "ready": str(ready),
            "go": str(go),
            "worker": worker,
            **options,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(spec)],
                cwd=REPO,
                env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while len(list(ready.iterdir())) < count:
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            outputs = [p.communicate(timeout=5) for p in procs]
            raise AssertionError(f"workers did not get ready: {outputs}")
        time.sleep(0.02)
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"worker failed ({proc.returncode}): {err}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, log


def assert_no_overlap(log: Path, expected_sections: int) -> None:
    """Enter/exit lines of every critical section: strictly alternating, same worker, times in order."""
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == 2 * expected_sections
    intervals: list[tuple[int, int, str]] = []
    for enter, leave in zip(lines[0::2], lines[1::2], strict=True):
        assert enter[0] == "enter" and leave[0] == "exit", f"overlap in file order: {enter} then {leave}"
        assert enter[1] == leave[1], f"{leave} closed a section that {enter} opened"
        intervals.append((int(enter[3]), int(leave[3]), enter[1]))
    # CLOCK_MONOTONIC is system-wide on Linux: the sections' times must not interleave either.
    intervals.sort()
    for (_, previous_exit, who), (next_enter, _, other) in pairwise(intervals):
        assert next_enter >= previous_exit, f"worker {other} entered before worker {who} left"
    assert len({who for _, _, who in intervals}) > 1, "only one worker ever got in"
