"""Process-wide settings (environment variables with the ``ZX_`` prefix, ``.env`` supported).

Per-organisation configuration lives in ``orgs/<slug>.yaml`` (see ``mappings.config``); credentials
live encrypted in the ledger. Nothing here depends on the working directory: workers and services
start elsewhere, so every default path is absolute.
"""

from __future__ import annotations

import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root, resolved from this package rather than from the cwd.
REPO_ROOT = Path(__file__).resolve().parent.parent

XERO_LOGIN_URL = "https://login.xero.com"
XERO_IDENTITY_URL = "https://identity.xero.com"
XERO_API_URL = "https://api.xero.com"


class Settings(BaseSettings):
    """Settings table of the architecture guide, plus the connectors' limits."""

    model_config = SettingsConfigDict(env_prefix="ZX_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".zxsync", description="data dir")
    orgs_dir: Path = Field(default=REPO_ROOT / "orgs", description="org registry (one YAML per org)")
    database_url: str | None = Field(default=None, description="ledger database; SQLite in home by default")
    secret_key: SecretStr | None = Field(default=None, description="Fernet key for secrets at rest")
    secret_key_file: Path = Field(
        default_factory=lambda: Path.home() / ".config" / "zxsync" / "secret.key",
        description="where a generated key is kept (0600, outside home)",
    )

    # Endpoint overrides: when set they win over what a connection stored.
    xero_login_url: str | None = None
    xero_identity_url: str | None = None
    xero_api_url: str | None = None
    zoho_accounts_url: str | None = None
    zoho_api_url: str | None = None

    specs_dir: Path = Field(default=REPO_ROOT.parent / "shared" / "specs")

    # Xero limits per tenant (developer.xero.com/faq/limits); tests shrink the window.
    xero_calls_per_window: int = 60
    xero_window_seconds: float = 60.0
    xero_concurrency: int = 5
    xero_daily_budget: int = 5000
    xero_batch_size: int = 50
    xero_page_size: int = 1000
    xero_max_request_bytes: int = 3_500_000

    # Zoho CRM: concurrency per org, credits kept in reserve, batch and page sizes.
    zoho_concurrency: int = 5
    zoho_credit_reserve: int = 1000
    zoho_batch_size: int = 100
    zoho_page_size: int = 200

    # HTTP behaviour shared by both connectors.
    http_timeout_seconds: float = 60.0
    http_max_retries: int = 5
    http_backoff_base_seconds: float = 0.5
    http_backoff_max_seconds: float = 30.0

    # Prefect task retries for transient API trouble (the HTTP clients already retried inside).
    task_retries: int = 3
    task_retry_delay_seconds: float = 10.0

    # Worker setups where several processes may call one tenant: Prefect global concurrency limits
    # per tenant (strict) back the in-process limiter (tasks/limits.py; needs a Prefect server).
    prefect_limits: bool = False

    # How long a run waits for another run of the same org to finish before giving up.
    org_lock_wait_seconds: float = 600.0
    #: A crashed run's lock frees itself after this long (renewed every quarter of it while held).
    org_lock_ttl_seconds: float = 120.0

    # Ledger retention (days) for the journal; links are kept.
    retention_days: int = 30

    # Runs of a few record ids (events, the "Sync to Xero" button) reuse the Xero reference data
    # (organisation, accounts, tax rates, themes, tracking, currencies) read by a run of the last
    # this many seconds: 6 of the tenant's 60 calls a minute saved per event run. 0 = always read.
    # Scheduled and manual runs always read it afresh; items are always read.
    reference_reuse_seconds: float = 600.0

    # --- derived values -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        """The ledger URL: ``ZX_DATABASE_URL`` or a SQLite file under ``ZX_HOME``."""
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'ledger.db').resolve()}"

    @property
    def prefect_home(self) -> Path:
        """Prefect home for ephemeral runs (never the user's ~/.prefect)."""
        return self.home / "prefect"

    @property
    def sandbox_dir(self) -> Path:
        """Where the sandboxes persist their state."""
        return self.home / "sandbox"

    def xero_urls(self, stored: dict[str, str] | None = None) -> dict[str, str]:
        """Xero login/identity/api roots: override, else the connection's stored value, else the real host."""
        stored = stored or {}
        return {
            "login": self.xero_login_url or stored.get("login") or XERO_LOGIN_URL,
            "identity": self.xero_identity_url or stored.get("identity") or XERO_IDENTITY_URL,
            "api": self.xero_api_url or stored.get("api") or XERO_API_URL,
        }

    def zoho_urls(self, stored: dict[str, str] | None = None) -> dict[str, str | None]:
        """Zoho accounts server and API domain: override, else what the connection stored."""
        stored = stored or {}
        return {
            "accounts": self.zoho_accounts_url or stored.get("accounts"),
            "api": self.zoho_api_url or stored.get("api"),
        }

    def fernet_key(self) -> bytes:
        """The key that encrypts secrets at rest; generated once into a 0600 file outside ZX_HOME."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        if path.exists():
            return path.read_bytes().strip()
        home = self.home.resolve()
        if home == path.resolve().parent or home in path.resolve().parents:
            raise RuntimeError(f"ZX_SECRET_KEY_FILE {path} must not live inside ZX_HOME {home}")
        from cryptography.fernet import Fernet

        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        print(f"zxsync: generated a secret key in {path} (keep it; it decrypts the stored tokens)")
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()


def random_token(n: int = 32) -> str:
    """A URL-safe random string (state, PKCE verifiers)."""
    return secrets.token_urlsafe(n)
