"""Shared fixtures: an isolated environment per test, one Prefect test harness per session, and
fresh sandboxes on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

# Prefect must never phone home or write into the user's ~/.prefect from tests.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

TEST_SECRET_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def zx_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own ZX_HOME and secret key; settings are re-read."""
    from zxsync.settings import get_settings

    home = tmp_path / "zxhome"
    monkeypatch.setenv("ZX_HOME", str(home))
    monkeypatch.setenv("ZX_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("ZX_SECRET_KEY_FILE", str(tmp_path / "keys" / "secret.key"))
    for name in ("ZX_DATABASE_URL", "ZX_XERO_LOGIN_URL", "ZX_XERO_IDENTITY_URL", "ZX_XERO_API_URL",
                 "ZX_ZOHO_ACCOUNTS_URL", "ZX_ZOHO_API_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (starting one costs 7-9 s), heartbeats off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        # Sync flows otherwise join a heartbeat thread that sleeps in 1 s steps.
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


def _specs_dir() -> Path | None:
    from zxsync.settings import get_settings

    path = Path(os.environ.get("ZX_SPECS_DIR") or get_settings().specs_dir)
    if path.is_dir():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"ZX_SPECS_DIR {path} is missing (CI must have ../shared/specs beside the clone)")
    return None


@pytest.fixture()
def specs_dir() -> Path:
    """The official API specs (../shared/specs); fails in CI when missing, skips elsewhere."""
    path = _specs_dir()
    if path is None:
        pytest.skip("API specs not found (set ZX_SPECS_DIR)")
    return path
