"""Time helpers: everything the ledger hands out is timezone-aware UTC.

``db_now()`` / ``db_now_plus(seconds)`` render the *database's* clock as SQL, per dialect. Leases
compare expiry times against the database clock only, so processes on hosts with skewed clocks
(PostgreSQL in production) still agree on who holds a lock; with SQLite the database is a local
file and its clock is the host's, shared by every process that can open it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime, *, what: str = "timestamp") -> datetime:
    """``value`` converted to UTC; naive datetimes are refused (their zone is a guess)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def from_db(value: datetime | None) -> datetime | None:
    """A value read from the database as aware UTC (SQLite hands back naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class db_now(FunctionElement[datetime]):
    """The database server's current wall-clock time (not the transaction start)."""

    type = DateTime(timezone=True)
    inherit_cache = True


class db_now_plus(FunctionElement[datetime]):
    """The database server's current time plus ``seconds`` (a bound float)."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # clock_timestamp(), not now(): now() is frozen at transaction start.
    return "clock_timestamp()"


@compiles(db_now_plus, "postgresql")
def _pg_now_plus(element: db_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    return f"(clock_timestamp() + make_interval(secs => {compiler.process(seconds, **kw)}))"


# SQLite stores DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' text, so the clock is rendered in exactly
# that shape ('%f' gives milliseconds, padded to microseconds): text comparison is then time order.
@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


@compiles(db_now_plus, "sqlite")
def _sqlite_now_plus(element: db_now_plus, compiler: SQLCompiler, **kw: Any) -> str:
    (seconds,) = element.clauses
    modifier = f"(printf('%+.3f', {compiler.process(seconds, **kw)}) || ' seconds')"
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', {modifier}) || '000')"
