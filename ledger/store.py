"""The :class:`Ledger` facade: one object per process that the tasks, flows and CLI talk to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from sqlalchemy import Engine

from ledger.connections import ConnectionsMixin
from ledger.engine import make_engine
from ledger.events import EventsMixin
from ledger.errors import LeaseLost, OrgBusy, org_lock_name
from ledger.intents import IntentsMixin
from ledger.journal import JournalMixin
from ledger.links import LinksMixin
from ledger.locks import Lease, LeaseManager
from ledger.migrate import upgrade
from ledger.runs import RunsMixin
from ledger.staging import StagingMixin
from ledger.schemas import LeaseInfo
from ledger.watermarks import WatermarksMixin


class Ledger(ConnectionsMixin, LinksMixin, WatermarksMixin, JournalMixin, IntentsMixin, RunsMixin, StagingMixin,
             EventsMixin):
    """The product's sync state. Thread-safe; open one per process (don't share across fork).

    Every method is its own short transaction unless called inside :meth:`atomic`.
    """

    def __init__(self, engine: Engine, *, fernet_key: bytes | None = None) -> None:
        super().__init__(engine)
        self._fernet_key = fernet_key
        self._leases = LeaseManager(engine)
        self._closed = False

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True, fernet_key: bytes | None = None) -> Ledger:
        """Open the ledger at ``url`` (default ``ZX_DATABASE_URL`` or the SQLite file under ZX_HOME).

        Migrates to the newest schema first (idempotent, safe when several processes open at once).
        ``fernet_key`` overrides the settings' key (tests, key rotation tooling).
        """
        if url is None:
            from zxsync.settings import get_settings

            url = get_settings().resolved_database_url
        engine = make_engine(url)
        try:
            if migrate:
                upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, fernet_key=fernet_key)

    def close(self) -> None:
        """Release the leases still held and close every pooled connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._leases.release_all()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self._engine.url.render_as_string(hide_password=True)!r})"

    # --- locks ------------------------------------------------------------------------------
    @contextmanager
    def lease(
        self,
        name: str,
        holder: str,
        *,
        timeout: float | None = 0,
        ttl: float = 120,
        renew_every: float | None = None,
    ) -> Iterator[Lease]:
        """Hold the lease ``name`` for the block, renewing it in the background (every ttl/3).

        ``timeout``: 0 fails fast, a number waits that many seconds, None waits forever; raises
        :class:`LeaseBusy` with the holder when it stays busy. If the lease was lost while the block
        ran (the process stalled past the TTL and someone took over), :class:`LeaseLost` is raised
        on exit; long blocks should call ``lease.ensure()`` before each write.
        """
        held = self._leases.acquire(name, holder, ttl=ttl, timeout=timeout, renew_every=renew_every)
        try:
            yield held
            lost = held.lost
        finally:
            held.release()
        if lost:
            raise LeaseLost(f"lease {name!r} of {holder!r} was lost while held")

    @contextmanager
    def org_lock(
        self,
        org: str,
        holder: str,
        timeout: float | None = 0,
        ttl: float = 120,
        renew_every: float | None = None,
    ) -> Iterator[Lease]:
        """Hold the organisation's lock (every writer of an org takes it first); raises :class:`OrgBusy`."""
        held = self._leases.acquire(
            org_lock_name(org),
            holder,
            ttl=ttl,
            timeout=timeout,
            renew_every=renew_every,
            busy=lambda info: OrgBusy(
                org,
                info.holder if info else None,
                info.acquired_at if info else None,
                info.expires_at if info else None,
            ),
        )
        try:
            yield held
            lost = held.lost
        finally:
            held.release()
        if lost:
            raise LeaseLost(f"the lock of organisation {org!r} held by {holder!r} was lost while held")

    def lease_info(self, name: str) -> LeaseInfo | None:
        """Who holds the lease ``name`` (None when free)."""
        return self._leases.info(name)

    def org_lock_info(self, org: str) -> LeaseInfo | None:
        """Who holds the organisation's lock (None when free) — for ``zxsync doctor`` and the CLI."""
        return self._leases.info(org_lock_name(org))
