"""Session plumbing shared by the ledger's parts: read/write sessions, atomic units, upserts, chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from ledger.engine import READ_ONLY

T = TypeVar("T")

#: Rows per executemany / ids per IN list. SQLite >= 3.32 allows 32,766 bound variables and
#: PostgreSQL 65,535 per statement, so 5,000 keeps one chunk well inside both.
CHUNK = 5000


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class LedgerBase:
    """Owns the engine and hands out sessions; every public method runs in one short transaction.

    Inside :meth:`atomic` the methods of the same thread join a single transaction instead, so a
    batch's links, journal entries and intent settlement commit together or not at all.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._write_sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )
        # A ContextVar is per thread (and per asyncio task): threads never share an atomic unit.
        self._current: ContextVar[Session | None] = ContextVar(f"ledger-session-{id(self)}", default=None)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and the CLI; application code uses the methods)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the enclosed ledger calls of this thread in one transaction (nesting joins it).

        Keep it short: on SQLite it holds the database's single write lock. Don't take leases
        inside it (they commit on their own connection and would wait for this very lock).
        """
        if self._current.get() is not None:
            yield
            return
        with self._write_sessions.begin() as session:
            token = self._current.set(session)
            try:
                yield
            finally:
                self._current.reset(token)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        current = self._current.get()
        if current is not None:
            yield current
            return
        with self._write_sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        current = self._current.get()
        if current is not None:
            yield current  # read your own uncommitted writes inside atomic()
            return
        with self._read_sessions() as session:
            yield session

    def _insert(self, table: Table) -> Any:
        """A dialect-specific INSERT (it has ``on_conflict_do_update`` / ``do_nothing``)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(
        self,
        table: Table,
        keys: Sequence[str],
        update: Iterable[str],
        *,
        set_extra: dict[str, Any] | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> Any:
        """INSERT … ON CONFLICT (keys) DO UPDATE SET each of ``update`` from the proposed row."""
        stmt = self._insert(table)
        set_: dict[str, Any] = {name: stmt.excluded[name] for name in update}
        set_.update(set_extra or {})
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=where)
