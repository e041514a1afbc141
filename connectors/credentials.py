"""The shape of a stored connection and the store that keeps it.

A connection is everything needed to call one system for one organisation: client id/secret,
the rotating refresh token (and the previous one, usable during Xero's 30-minute grace period),
the current access token, and where to call (Xero tenant, Zoho accounts server and API domain).
The ledger implements :class:`CredentialStore` with encrypted rows and a cross-process lock;
tests may use :class:`MemoryCredentialStore`. Connectors never see a database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field, SecretStr

System = Literal["xero", "zoho"]


class Connection(BaseModel):
    """One organisation's connection to Xero or Zoho CRM. Secrets are ``SecretStr``: never logged."""

    org: str
    system: System
    grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    client_id: str
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    #: The refresh token that was replaced last, kept to recover a lost refresh response.
    previous_refresh_token: SecretStr | None = None
    refresh_rotated_at: datetime | None = None
    access_token: SecretStr | None = None
    access_expires_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    #: Xero tenant (organisation) id.
    tenant_id: str | None = None
    #: Zoho: the accounts server from the auth redirect and the api_domain from the token response.
    accounts_url: str | None = None
    api_domain: str | None = None
    #: Xero hosts stored at connect time (login, identity, api); endpoint overrides still win.
    urls: dict[str, str] = Field(default_factory=dict)
    #: Set when the provider refused the refresh token for good (invalid_grant): reconnect needed.
    broken_reason: str | None = None
    #: When access tokens were last requested with the current refresh token (Zoho mints at most
    #: 10 per refresh token per 10 minutes); kept with the connection so every process sees them.
    recent_mints: list[datetime] = Field(default_factory=list)


class CredentialStore(Protocol):
    """Where connections live. Implementations must make ``refresh_lock`` exclusive across processes."""

    def load(self, org: str, system: System) -> Connection:
        """The stored connection; raises ``KeyError`` when the org has none for that system."""
        ...

    def save(self, connection: Connection) -> None:
        """Persist atomically (the newest refresh token must never be lost)."""
        ...

    @contextmanager
    def refresh_lock(self, org: str, system: System) -> Iterator[Connection]:
        """Hold the connection's lock and yield its freshest stored state; ``save`` inside to publish."""
        ...


class MemoryCredentialStore:
    """A process-local store for tests and one-off scripts."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Connection] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, org: str, system: System) -> Connection:
        return self._items[(org, system)].model_copy(deep=True)

    def save(self, connection: Connection) -> None:
        self._items[(connection.org, connection.system)] = connection.model_copy(deep=True)

    @contextmanager
    def refresh_lock(self, org: str, system: System) -> Iterator[Connection]:
        with self._guard:
            lock = self._locks.setdefault((org, system), threading.Lock())
        with lock:
            yield self.load(org, system)
