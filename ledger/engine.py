"""Engine construction: URL normalisation, SQLite pragmas and transaction control.

SQLite: WAL (readers never block the writer), a busy timeout (writers queue instead of failing),
and SQLAlchemy-controlled BEGIN so every write transaction starts with ``BEGIN IMMEDIATE``. Taking
the write lock up front means a transaction never has to *upgrade* a read lock, which in WAL mode
fails at once with "database is locked" instead of waiting. It also makes DDL transactional, so a
migration is all-or-nothing. Read-only work uses a plain deferred ``BEGIN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

#: How long a SQLite writer waits for the write lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option marking an engine/connection as read-only (deferred BEGIN on SQLite).
READ_ONLY = "ledger_read_only"


def normalise_url(url: str) -> URL:
    """The URL with PostgreSQL pinned to psycopg 3 (``postgres://`` and bare ``postgresql://`` too)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported ledger database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
        )
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for the ledger database at ``url``."""
    parsed = normalise_url(url)
    # hide_parameters: bound values (journal snapshots, ciphertexts) never appear in error messages.
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, hide_parameters=True, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the sqlite3 module from issuing its own (deferred, DML-only) BEGIN: we issue ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
