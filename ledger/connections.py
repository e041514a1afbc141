"""Connections (encrypted at rest) and the credential store the connectors use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from connectors.credentials import Connection, System
from ledger.base import LedgerBase
from ledger.clock import utcnow
from ledger.crypto import ConnectionCipher
from ledger.errors import StaleConnection
from ledger.locks import default_holder
from ledger.models import ConnectionRecord

if TYPE_CHECKING:
    from ledger.store import Ledger

CONNECTIONS = ConnectionRecord.__table__


def refresh_lock_name(org: str, system: str) -> str:
    """The lease name serialising token refreshes of one connection."""
    return f"refresh:{org}:{system}"


class ConnectionsMixin(LedgerBase):
    """save/load/delete/list of :class:`~connectors.credentials.Connection`."""

    #: Set by :class:`~ledger.store.Ledger` when a key is given explicitly (tests, key rotation).
    _fernet_key: bytes | None = None

    @cached_property
    def _cipher(self) -> ConnectionCipher:
        # Lazy: a ledger that never touches connections must not create a key file.
        from zxsync.settings import get_settings

        return ConnectionCipher(self._fernet_key or get_settings().fernet_key())

    def save_connection(self, connection: Connection, *, expected_version: int | None = None) -> int:
        """Store ``connection`` encrypted, atomically; returns its new version.

        With ``expected_version`` the save is a compare-and-set: it fails with
        :class:`StaleConnection` unless the stored version is still that one (0 = must not exist).
        """
        ciphertext = self._cipher.encrypt(connection)
        now = utcnow()
        key = (CONNECTIONS.c.org == connection.org) & (CONNECTIONS.c.system == connection.system)
        with self._write() as session:
            if expected_version is None:
                stmt = self._upsert(
                    CONNECTIONS,
                    ["org", "system"],
                    ["ciphertext", "updated_at"],
                    set_extra={"version": CONNECTIONS.c.version + 1},
                )
                session.execute(
                    stmt,
                    [
                        {
                            "org": connection.org,
                            "system": connection.system,
                            "ciphertext": ciphertext,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
            elif expected_version == 0:
                try:
                    with session.begin_nested():
                        session.execute(
                            CONNECTIONS.insert(),
                            [
                                {
                                    "org": connection.org,
                                    "system": connection.system,
                                    "ciphertext": ciphertext,
                                    "version": 1,
                                    "created_at": now,
                                    "updated_at": now,
                                }
                            ],
                        )
                except IntegrityError:
                    raise StaleConnection(f"{connection.org}/{connection.system} already exists") from None
            else:
                changed = session.execute(
                    update(CONNECTIONS)
                    .where(key, CONNECTIONS.c.version == expected_version)
                    .values(ciphertext=ciphertext, updated_at=now, version=CONNECTIONS.c.version + 1)
                ).rowcount
                if changed != 1:
                    raise StaleConnection(
                        f"{connection.org}/{connection.system} changed since version {expected_version}"
                    )
            return session.execute(select(CONNECTIONS.c.version).where(key)).scalar_one()

    def load_connection(self, org: str, system: System) -> Connection:
        """The stored connection, decrypted; ``KeyError`` when the org has none for ``system``."""
        with self._read() as session:
            ciphertext = session.execute(
                select(CONNECTIONS.c.ciphertext).where(
                    CONNECTIONS.c.org == org, CONNECTIONS.c.system == system
                )
            ).scalar_one_or_none()
        if ciphertext is None:
            raise KeyError(f"no {system} connection stored for organisation {org!r}")
        return self._cipher.decrypt(ciphertext, org=org, system=system)

    def connection_version(self, org: str, system: System) -> int | None:
        """The stored version counter (None when there is no connection)."""
        with self._read() as session:
            return session.execute(
                select(CONNECTIONS.c.version).where(CONNECTIONS.c.org == org, CONNECTIONS.c.system == system)
            ).scalar_one_or_none()

    def delete_connection(self, org: str, system: System) -> bool:
        """Forget a connection (e.g. after revoking it); True if there was one."""
        with self._write() as session:
            result = session.execute(
                delete(CONNECTIONS).where(CONNECTIONS.c.org == org, CONNECTIONS.c.system == system)
            )
            return result.rowcount == 1

    def list_connections(self, org: str | None = None) -> list[Connection]:
        """An org's connections (every org's when ``org`` is None), decrypted, by (org, system)."""
        stmt = select(CONNECTIONS.c.org, CONNECTIONS.c.system, CONNECTIONS.c.ciphertext).order_by(
            CONNECTIONS.c.org, CONNECTIONS.c.system
        )
        if org is not None:
            stmt = stmt.where(CONNECTIONS.c.org == org)
        with self._read() as session:
            rows = session.execute(stmt).all()
        return [self._cipher.decrypt(row.ciphertext, org=row.org, system=row.system) for row in rows]


class LedgerCredentialStore:
    """:class:`connectors.credentials.CredentialStore` backed by the ledger.

    ``refresh_lock`` holds a short lease per connection (exclusive across threads and processes),
    then yields the connection as stored *after* the lock was taken, so a refresher always starts
    from the newest refresh token. ``save`` inside the lock is an ordinary short transaction: the
    lease is a row, not an open transaction, so there is nothing to deadlock on.
    """

    def __init__(self, ledger: Ledger, *, lock_timeout: float = 120.0, lock_ttl: float = 60.0) -> None:
        self._ledger = ledger
        self._lock_timeout = lock_timeout
        self._lock_ttl = lock_ttl

    def load(self, org: str, system: System) -> Connection:
        """The stored connection (``KeyError`` if none)."""
        return self._ledger.load_connection(org, system)

    def save(self, connection: Connection) -> None:
        """Persist atomically (one upsert of the whole encrypted connection)."""
        self._ledger.save_connection(connection)

    @contextmanager
    def refresh_lock(self, org: str, system: System) -> Iterator[Connection]:
        """Hold the connection's refresh lease and yield its freshest stored state."""
        with self._ledger.lease(
            refresh_lock_name(org, system),
            default_holder(f"token refresh of {org}/{system}"),
            timeout=self._lock_timeout,
            ttl=self._lock_ttl,
        ):
            yield self._ledger.load_connection(org, system)
