"""Lease locks in the ``locks`` table: exclusive across threads, processes and hosts.

Why leases and not a held transaction or advisory lock: a sync run keeps its org lock for minutes
while the same process writes the ledger in many other short transactions, and SQLite allows one
writer at a time, so the lock cannot be an open transaction. A lease is a row that says "token T
holds NAME until E"; a background thread pushes E forward while the holder is alive, and when a
holder dies its lease simply runs out and the next acquirer takes it over.

Exclusivity comes from one atomic statement::

    INSERT INTO locks (name, holder, token, acquired_at, expires_at) VALUES (…, now, now + ttl)
    ON CONFLICT (name) DO UPDATE SET holder = …, token = …, acquired_at = now, expires_at = now + ttl
    WHERE locks.expires_at < now

It inserts a free lock, takes over an expired one, and changes nothing when the lease is live
(rowcount 0). PostgreSQL evaluates the WHERE on the latest row version under a row lock, so two
racing acquirers cannot both win; SQLite serialises all writers (BEGIN IMMEDIATE).

Clock: every time in this table comes from the *database's* clock (``clock_timestamp()`` on
PostgreSQL, ``strftime('now')`` on SQLite) and is only compared with that same clock, so skew
between hosts cannot make two of them believe they hold the lease. The holder additionally keeps a
local ``time.monotonic()`` deadline (last successful renewal + TTL) so it notices a lost lease even
when it cannot reach the database; wall-clock jumps never shorten or extend that bound.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ledger.clock import db_now, db_now_plus, from_db
from ledger.engine import READ_ONLY
from ledger.errors import LeaseBusy, LeaseLost
from ledger.models import LockRecord
from ledger.schemas import LeaseInfo

log = logging.getLogger(__name__)

LOCKS = LockRecord.__table__

#: Polling while waiting for a busy lease: start fast (short refresh locks), back off to this cap.
POLL_START_SECONDS = 0.02
POLL_MAX_SECONDS = 0.5


def default_holder(label: str) -> str:
    """A holder description naming the machine, process and thread, e.g. for OrgBusy messages."""
    return f"{label} ({socket.gethostname()} pid {os.getpid()} {threading.current_thread().name})"[:255]


class Lease:
    """A held lease. Renewed by a daemon thread until :meth:`release`; check :meth:`ensure` before writes."""

    def __init__(
        self,
        manager: LeaseManager,
        name: str,
        holder: str,
        token: str,
        ttl: float,
        acquired_at: datetime,
        expires_at: datetime,
        local_deadline: float,
    ) -> None:
        self.name = name
        self.holder = holder
        self.token = token
        self.ttl = ttl
        self.acquired_at = acquired_at
        self.expires_at = expires_at
        self._manager = manager
        self._deadline = local_deadline  # time.monotonic() by which the lease has surely expired
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._released = False

    @property
    def lost(self) -> bool:
        """True once the lease may have passed to someone else."""
        if not self._lost.is_set() and not self._released and time.monotonic() > self._deadline:
            self._lost.set()
        return self._lost.is_set()

    def ensure(self) -> None:
        """Raise :class:`LeaseLost` if the lease may no longer be ours (call before each batch write)."""
        if self.lost:
            raise LeaseLost(
                f"lease {self.name!r} held by {self.holder!r} was lost (not renewed within {self.ttl}s)"
            )

    def renew(self) -> bool:
        """Push the expiry forward by the TTL; False (and :attr:`lost`) if the lease was taken over."""
        sent = time.monotonic()
        expires_at = self._manager.renew(self.name, self.token, self.ttl)
        if expires_at is None:
            self._lost.set()
            return False
        self.expires_at = expires_at
        self._deadline = sent + self.ttl
        return True

    def start_heartbeat(self, every: float) -> None:
        """Renew every ``every`` seconds in a daemon thread until released."""
        self._thread = threading.Thread(
            target=self._heartbeat, args=(every,), name=f"lease:{self.name}", daemon=True
        )
        self._thread.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not self.renew():
                    log.error(
                        "lease %r was taken over: its holder %r must stop writing", self.name, self.holder
                    )
                    return
            except Exception:  # a transient database error: retry until the local deadline passes
                log.warning("could not renew lease %r; retrying", self.name, exc_info=True)
                if self.lost:
                    log.error("lease %r expired while the database was unreachable", self.name)
                    return

    def release(self) -> None:
        """Stop renewing and free the lease (only if still ours). Idempotent."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self._manager.release(self.name, self.token)
        except Exception:
            # Not fatal: the lease runs out by itself after its TTL.
            log.warning("could not release lease %r; it will expire by itself", self.name, exc_info=True)
        finally:
            self._manager.forget(self)


class LeaseManager:
    """Acquires, renews and releases leases on one engine (each call is its own short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self._held: set[Lease] = set()
        self._guard = threading.Lock()

    def _insert(self) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(LOCKS)

    def try_acquire(self, name: str, holder: str, token: str, ttl: float) -> tuple[datetime, datetime] | None:
        """One compare-and-set attempt (see the module docstring): (acquired_at, expires_at) or None."""
        stmt = self._insert().values(
            name=name, holder=holder, token=token, acquired_at=db_now(), expires_at=db_now_plus(ttl)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[LOCKS.c.name],
            set_={
                "holder": stmt.excluded.holder,
                "token": stmt.excluded.token,
                "acquired_at": db_now(),
                "expires_at": db_now_plus(ttl),
            },
            where=LOCKS.c.expires_at < db_now(),
        ).returning(LOCKS.c.acquired_at, LOCKS.c.expires_at)
        with self._engine.begin() as connection:
            row = connection.execute(stmt).one_or_none()
        if row is None:
            return None
        acquired_at, expires_at = from_db(row[0]), from_db(row[1])
        assert acquired_at is not None and expires_at is not None
        return acquired_at, expires_at

    def info(self, name: str) -> LeaseInfo | None:
        """Who holds ``name`` now (``expired`` tells whether the lease has run out)."""
        stmt = select(
            LOCKS.c.name,
            LOCKS.c.holder,
            LOCKS.c.acquired_at,
            LOCKS.c.expires_at,
            (LOCKS.c.expires_at < db_now()).label("expired"),
        ).where(LOCKS.c.name == name)
        with self._reader.connect() as connection:
            row = connection.execute(stmt).one_or_none()
        return None if row is None else LeaseInfo.model_validate(dict(row._mapping))

    def acquire(
        self,
        name: str,
        holder: str,
        *,
        ttl: float,
        timeout: float | None,
        renew_every: float | None = None,
        busy: Callable[[LeaseInfo | None], LeaseBusy] | None = None,
    ) -> Lease:
        """Take ``name``: fail fast (``timeout=0``), wait up to ``timeout`` seconds, or forever (None).

        Raises what ``busy`` builds from the current holder (default :class:`LeaseBusy`). The lease
        renews itself every ``renew_every`` seconds (default ttl/3; 0 disables renewal).
        """
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        token = uuid.uuid4().hex
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        delay = POLL_START_SECONDS
        while True:
            sent = time.monotonic()
            taken = self.try_acquire(name, holder, token, ttl)
            if taken is not None:
                break
            current = self.info(name)
            if current is not None and current.expired:
                continue  # ran out between our attempt and the look-up: try again at once
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise (busy or _default_busy(name))(current)
            if current is None:
                continue  # released in between
            pause = delay * random.uniform(0.5, 1.0)  # jitter: waiters don't poll in lockstep
            time.sleep(pause if deadline is None else min(pause, max(deadline - now, 0.0)))
            delay = min(delay * 1.5, POLL_MAX_SECONDS)

        lease = Lease(
            self,
            name,
            holder,
            token,
            ttl,
            acquired_at=taken[0],
            expires_at=taken[1],
            local_deadline=sent + ttl,
        )
        with self._guard:
            self._held.add(lease)
        every = ttl / 3 if renew_every is None else renew_every
        if every > 0:
            lease.start_heartbeat(every)
        return lease

    def renew(self, name: str, token: str, ttl: float) -> datetime | None:
        """Extend our lease; None if it is no longer ours (taken over after it expired)."""
        stmt = (
            update(LOCKS)
            .where(LOCKS.c.name == name, LOCKS.c.token == token)
            .values(expires_at=db_now_plus(ttl))
            .returning(LOCKS.c.expires_at)
        )
        with self._engine.begin() as connection:
            value = connection.execute(stmt).scalar_one_or_none()
        return from_db(value)

    def release(self, name: str, token: str) -> bool:
        """Delete the lease row if it is still ours."""
        with self._engine.begin() as connection:
            return (
                connection.execute(delete(LOCKS).where(LOCKS.c.name == name, LOCKS.c.token == token)).rowcount
                == 1
            )

    def forget(self, lease: Lease) -> None:
        with self._guard:
            self._held.discard(lease)

    def release_all(self) -> None:
        """Release every lease this manager still holds (on ledger close)."""
        with self._guard:
            held = list(self._held)
        for lease in held:
            lease.release()


def _default_busy(name: str) -> Callable[[LeaseInfo | None], LeaseBusy]:
    def build(info: LeaseInfo | None) -> LeaseBusy:
        if info is None:
            return LeaseBusy(name, None, None, None)
        return LeaseBusy(name, info.holder, info.acquired_at, info.expires_at)

    return build
