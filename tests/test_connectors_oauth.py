"""The shared token manager: reuse, proactive refresh, one refresh at a time, 401 handling."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from connectors.credentials import Connection, MemoryCredentialStore
from connectors.errors import TokenRefreshError
from connectors.oauth import TokenManager


def _conn(token: str | None, expires_in: float) -> Connection:
    return Connection(org="acme", system="zoho", client_id="cid", client_secret=SecretStr("s"),
                      refresh_token=SecretStr("r0"), access_token=SecretStr(token) if token else None,
                      access_expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))


class CountingRefresher:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, conn: Connection) -> Connection:
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(0.05)  # make overlapping refreshes likely if the lock were missing
        return conn.model_copy(update={"access_token": SecretStr(f"a{n}"), "refresh_token": SecretStr(f"r{n}"),
                                       "previous_refresh_token": conn.refresh_token,
                                       "access_expires_at": datetime.now(UTC) + timedelta(hours=1)})


def test_reuses_a_valid_stored_token() -> None:
    store = MemoryCredentialStore()
    store.save(_conn("a0", 3600))
    refresher = CountingRefresher()
    assert TokenManager(store, "acme", "zoho", refresher).access_token() == "a0"
    assert refresher.calls == 0


def test_refreshes_before_expiry_once_for_many_threads_and_managers() -> None:
    store = MemoryCredentialStore()
    store.save(_conn("a0", 30))  # inside the 2-minute margin
    refresher = CountingRefresher()
    managers = [TokenManager(store, "acme", "zoho", refresher) for _ in range(4)]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda m=m: tokens.append(m.access_token())) for m in managers * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refresher.calls == 1 and set(tokens) == {"a1"}
    stored = store.load("acme", "zoho")
    assert stored.refresh_token.get_secret_value() == "r1"
    assert stored.previous_refresh_token.get_secret_value() == "r0"


def test_a_refused_token_is_refreshed_even_if_not_expired() -> None:
    store = MemoryCredentialStore()
    store.save(_conn("a0", 3600))
    refresher = CountingRefresher()
    manager = TokenManager(store, "acme", "zoho", refresher)
    manager.refused(manager.access_token())
    assert manager.access_token() == "a1"


def test_permanent_refresh_failure_marks_the_connection_broken() -> None:
    store = MemoryCredentialStore()
    store.save(_conn(None, 0))

    def refuse(conn: Connection) -> Connection:
        raise TokenRefreshError("zoho", "invalid_code", permanent=True)

    with pytest.raises(TokenRefreshError):
        TokenManager(store, "acme", "zoho", refuse).access_token()
    assert store.load("acme", "zoho").broken_reason == "invalid_code"
    with pytest.raises(TokenRefreshError, match="needs reconnecting"):
        TokenManager(store, "acme", "zoho", CountingRefresher()).access_token()
