"""One access token per connection, shared by every thread and (through the store) every process.

Both Xero and Zoho rotate or rate-limit tokens, so refreshing is a shared, serialised act:
Xero's refresh token changes on every refresh (the newest must be persisted before anyone uses
it), and Zoho mints at most 10 access tokens per refresh token per 10 minutes. The manager
reuses a stored token while it is valid, refreshes a little before expiry, and does so under the
store's cross-process lock, re-reading the stored state first (someone may have just refreshed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connectors.credentials import Connection, CredentialStore, System
from connectors.errors import TokenRefreshError

Refresher = Callable[[Connection], Connection]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TokenManager:
    """Hands out a valid access token for one (org, system) connection."""

    def __init__(self, store: CredentialStore, org: str, system: System, refresh: Refresher, *,
                 margin: timedelta = timedelta(minutes=2), clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.org = org
        self.system = system
        self._refresh = refresh
        self.margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Connection | None = None
        #: Access tokens the API refused (401) although their expiry says otherwise.
        self._refused: set[str] = set()

    def _usable(self, conn: Connection | None) -> bool:
        if conn is None or conn.access_token is None or conn.access_expires_at is None:
            return False
        if conn.access_token.get_secret_value() in self._refused:
            return False
        expires = conn.access_expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires - self.margin > self._clock()

    def connection(self) -> Connection:
        """The connection with a usable access token (refreshing when needed)."""
        with self._lock:
            if self._usable(self._cached):
                assert self._cached is not None
                return self._cached
            stored = self.store.load(self.org, self.system)
            if not self._usable(stored):
                stored = self._refresh_under_lock()
            self._cached = stored
            return stored

    def access_token(self) -> str:
        """A valid access token."""
        token = self.connection().access_token
        assert token is not None
        return token.get_secret_value()

    def refused(self, token: str) -> None:
        """The API answered 401 to ``token``: never hand it out again; the next call refreshes."""
        with self._lock:
            self._refused.add(token)
            if self._cached is not None and self._cached.access_token is not None \
                    and self._cached.access_token.get_secret_value() == token:
                self._cached = None

    def _refresh_under_lock(self) -> Connection:
        with self.store.refresh_lock(self.org, self.system) as fresh:
            if self._usable(fresh):
                return fresh  # another thread or process refreshed while we waited
            if fresh.broken_reason:
                raise TokenRefreshError(self.system, f"the {self.system} connection of {self.org} needs "
                                        f"reconnecting: {fresh.broken_reason}", permanent=True)
            try:
                renewed = self._refresh(fresh)
            except TokenRefreshError as exc:
                if exc.permanent:
                    self.store.save(fresh.model_copy(update={"broken_reason": exc.message}))
                raise
            self.store.save(renewed)
            return renewed
