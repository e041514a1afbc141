"""Ledger leases: org lock and refresh lock — exclusive across threads and processes, renewed, taken over when stale."""

# The fixtures are imported from ledger_support and then named as test parameters: that is how
# pytest shares them without a conftest, and it looks like a redefinition to the linter.
# ruff: noqa: F811

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_support import assert_no_overlap, db_url, ledger, ledger_env, pg_session_db, run_workers  # noqa: F401
from pydantic import SecretStr
from sqlalchemy import update

from connectors.credentials import Connection, CredentialStore
from ledger import (
    LeaseBusy,
    LeaseLost,
    Ledger,
    LedgerCredentialStore,
    OrgBusy,
    default_holder,
    refresh_lock_name,
)
from ledger.models import LockRecord

LOCKS = LockRecord.__table__


def expire_now(ledger: Ledger, name: str) -> None:
    """Make a lease look stale, as if its holder had stopped renewing long ago."""
    with ledger.engine.begin() as connection:
        connection.execute(
            update(LOCKS)
            .where(LOCKS.c.name == name)
            .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
        )


def test_org_lock_fails_fast_with_holder_and_since(ledger: Ledger) -> None:
    with ledger.org_lock("acme", "sync run r-1", ttl=60) as held:
        assert held.acquired_at.tzinfo is UTC and held.expires_at > held.acquired_at
        with pytest.raises(OrgBusy) as busy, ledger.org_lock("acme", "sync run r-2"):
            pytest.fail("two holders at once")
        assert busy.value.org == "acme"
        assert busy.value.holder == "sync run r-1"
        assert busy.value.since == held.acquired_at
        assert "organisation 'acme' is busy: sync run r-1" in str(busy.value)
        # Other orgs are independent.
        with ledger.org_lock("other", "sync run r-3"):
            pass
        info = ledger.org_lock_info("acme")
        assert info is not None and info.holder == "sync run r-1" and not info.expired
    assert ledger.org_lock_info("acme") is None
    with ledger.org_lock("acme", "sync run r-2"):
        pass


def test_org_lock_waits_until_timeout_then_raises(ledger: Ledger) -> None:
    with ledger.org_lock("acme", "long run"), pytest.raises(OrgBusy):  # noqa: SIM117 - nested on purpose
        with ledger.org_lock("acme", "patient", timeout=0.3):
            pytest.fail("got a held lock")


def test_waiter_gets_the_lock_when_released(ledger: Ledger) -> None:
    order: list[str] = []
    holding = threading.Event()

    def holder() -> None:
        with ledger.org_lock("acme", "first"):
            order.append("first in")
            holding.set()
            time.sleep(0.2)
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(10)
    with ledger.org_lock("acme", "second", timeout=30):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_threads_of_one_process_are_exclusive(ledger: Ledger) -> None:
    inside = 0
    peak = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        nonlocal inside, peak
        try:
            for _ in range(5):
                with ledger.org_lock("acme", f"thread {n}", timeout=30):
                    with guard:
                        inside += 1
                        peak = max(peak, inside)
                    time.sleep(0.005)
                    with guard:
                        inside -= 1
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and peak == 1


def test_heartbeat_keeps_a_lease_past_its_ttl(ledger: Ledger) -> None:
    with ledger.org_lock("acme", "renewing run", ttl=1.0, renew_every=0.1) as held:
        first_expiry = held.expires_at
        for _ in range(8):  # 1.6 s: longer than the TTL
            time.sleep(0.2)
            with pytest.raises(OrgBusy), ledger.org_lock("acme", "intruder"):
                pytest.fail("a renewed lease was taken over")
        held.ensure()
        assert held.expires_at > first_expiry
        assert not held.lost


def test_lost_lease_is_detected_and_reported(ledger: Ledger) -> None:
    with pytest.raises(LeaseLost), ledger.org_lock("acme", "stalled run", renew_every=0) as held:
        expire_now(ledger, "org:acme")
        with ledger.org_lock("acme", "new run") as taken:
            assert taken.holder == "new run"
            assert held.renew() is False
            assert held.lost
            with pytest.raises(LeaseLost):
                held.ensure()
            # The stalled holder's release must not free the new holder's lease.
            held.release()
            assert ledger.org_lock_info("acme").holder == "new run"  # type: ignore[union-attr]


def test_stale_lease_of_a_crashed_process_is_taken_over(
    ledger: Ledger, db_url: str, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    run_workers("crash_holding", db_url, tmp_path, ledger_env, count=1, ttl=1.0)
    info = ledger.org_lock_info("acme")
    assert info is not None and info.holder == "doomed worker 0"  # the dead process left its row
    with pytest.raises(OrgBusy, match="doomed worker 0"), ledger.org_lock("acme", "next run"):
        pass
    # Nobody renews it any more: once its TTL runs out, a waiter takes it over.
    with ledger.org_lock("acme", "next run", timeout=30) as held:
        assert held.holder == "next run"
        assert ledger.org_lock_info("acme").holder == "next run"  # type: ignore[union-attr]


def test_org_lock_is_exclusive_across_processes(
    db_url: str, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    Ledger.open(db_url).close()  # migrate up front so workers start at once
    results, log = run_workers(
        "org_lock", db_url, tmp_path, ledger_env, count=2, rounds=12, hold=0.02, gap=0.02
    )
    assert_no_overlap(log, expected_sections=24)
    assert sum(r["contended"] for r in results) > 0, "the workers never competed: the test proved nothing"


def test_refresh_lock_is_exclusive_across_processes_and_never_loses_a_token(
    ledger: Ledger, db_url: str, ledger_env: dict[str, str], tmp_path: Path
) -> None:
    ledger.save_connection(Connection(org="acme", system="xero", client_id="cid", refresh_token="rt-0"))
    _, log = run_workers("refresh", db_url, tmp_path, ledger_env, count=2, rounds=10, hold=0.02, gap=0.01)
    assert_no_overlap(log, expected_sections=20)
    # Each section read the newest token and stored its successor: no rotation was lost.
    final = ledger.load_connection("acme", "xero")
    assert final.refresh_token is not None and final.refresh_token.get_secret_value() == "rt-20"
    assert ledger.connection_version("acme", "xero") == 21


def test_credential_store_yields_freshest_state_and_saves_inside_the_lock(ledger: Ledger) -> None:
    store: CredentialStore = LedgerCredentialStore(ledger, lock_timeout=10)
    with pytest.raises(KeyError):
        store.load("acme", "xero")
    store.save(Connection(org="acme", system="xero", client_id="cid", refresh_token="rt-1"))
    # Another writer rotates the token after we loaded it; the lock must hand us the newest.
    stale = store.load("acme", "xero")
    ledger.save_connection(stale.model_copy(update={"refresh_token": SecretStr("rt-2")}))
    with store.refresh_lock("acme", "xero") as fresh:
        assert fresh.refresh_token.get_secret_value() == "rt-2"  # type: ignore[union-attr]
        store.save(fresh.model_copy(update={"refresh_token": SecretStr("rt-3")}))  # no self-deadlock
        with (
            pytest.raises(LeaseBusy, match="token refresh of acme/xero"),
            ledger.lease(refresh_lock_name("acme", "xero"), "someone else"),
        ):
            pass
        # The org lock is separate: a sync run holding it can still refresh its tokens.
        with ledger.org_lock("acme", "sync run"):
            pass
    assert store.load("acme", "xero").refresh_token.get_secret_value() == "rt-3"  # type: ignore[union-attr]
    assert ledger.lease_info(refresh_lock_name("acme", "xero")) is None


def test_close_releases_held_leases(db_url: str) -> None:
    opened = Ledger.open(db_url)
    held = opened.org_lock("acme", "run that never exits its block")
    held.__enter__()
    opened.close()
    with Ledger.open(db_url) as other, other.org_lock("acme", "next"):
        pass


def test_lease_arguments_and_holder_text(ledger: Ledger) -> None:
    with pytest.raises(ValueError), ledger.lease("x", "me", ttl=0):
        pass
    label = default_holder("sync run abc")
    assert label.startswith("sync run abc (") and "pid" in label
