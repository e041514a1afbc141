"""Settings of the webhook server (``ZX_WEBHOOKS_*``, ``.env`` supported); secrets live in the ledger."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """How ``zxsync webhooks`` listens, coalesces events and keeps Zoho channels alive."""

    model_config = SettingsConfigDict(env_prefix="ZX_WEBHOOKS_", env_file=".env", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to listen on (a reverse proxy terminates HTTPS)")
    port: int = Field(default=8710, ge=0, le=65535, description="port to listen on (0 = any free port)")
    public_url: str | None = Field(
        default=None, description="the HTTPS address Xero and Zoho reach this server at, e.g. "
        "https://sync.example.com (Zoho notify URLs and signed trigger links are built from it)")
    coalesce_seconds: float = Field(
        default=3.0, ge=0, description="an org's first pending event waits this long for others to join it")
    poll_seconds: float = Field(default=1.0, gt=0, description="how often runs are started and checked")
    min_run_interval_seconds: float = Field(
        default=0.0, ge=0, description="least time between two event runs of an org (each run costs "
        "about ten Xero calls of the tenant's 5,000 a day; raise it for orgs with constant changes)")
    max_ids_per_run: int = Field(default=1000, ge=1, description="record ids handed to one run at most")
    max_attempts: int = Field(
        default=3, ge=1, description="runs an id may fail in before it is left to the scheduled runs")
    channel_days: float = Field(
        default=6.0, gt=0, le=7, description="lifetime asked for a Zoho notification channel (Zoho: a week at most)")
    renew_before_hours: float = Field(
        default=24.0, gt=0, description="a channel expiring sooner than this is renewed")
    renew_check_seconds: float = Field(default=3600.0, gt=0, description="how often channels are checked")
    trigger_ttl_seconds: int = Field(
        default=7 * 86400, ge=60, description="lifetime of a trigger link made by `zxsync webhooks sign`")


@lru_cache(maxsize=1)
def get_webhook_settings() -> WebhookSettings:
    """The process's webhook settings (tests call ``get_webhook_settings.cache_clear()``)."""
    return WebhookSettings()
