"""Run the ledger's alembic migrations programmatically, safely from several processes at once.

The script location is resolved from this package, never from the working directory. PostgreSQL
serialises concurrent upgrades with a transaction-scoped advisory lock; SQLite with the write lock
that our ``BEGIN IMMEDIATE`` takes (DDL is transactional there too), plus a retry in case the busy
timeout runs out while another process migrates.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

PACKAGE_DIR = Path(__file__).resolve().parent
SCRIPT_LOCATION = PACKAGE_DIR / "migrations"
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"

#: Arbitrary, fixed 64-bit key of the advisory lock guarding upgrades ("zxledger" in ASCII).
PG_MIGRATION_LOCK = 0x7A786C6564676572

log = logging.getLogger(__name__)


def alembic_config() -> Config:
    """An alembic config pointing at the packaged migrations."""
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head_revision() -> str:
    """The newest revision shipped with this package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "ledger migrations have no head"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, *, attempts: int = 5) -> None:
    """Migrate the database to head; a no-op when it is already there."""
    head = head_revision()
    if current_revision(engine) == head:
        return
    for attempt in range(1, attempts + 1):
        try:
            _upgrade_once(engine)
            return
        except OperationalError as exc:
            # Only SQLite's "database is locked" is worth retrying; anything else is a real fault.
            if engine.dialect.name != "sqlite" or "locked" not in str(exc.orig) or attempt == attempts:
                raise
            log.info("ledger migration waiting for another process (attempt %d)", attempt)
            time.sleep(0.5 * attempt)


def _upgrade_once(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE holds the write lock from here
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        # Re-check under the lock: another process may have finished the upgrade while we waited.
        if MigrationContext.configure(connection).get_current_revision() == head_revision():
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
