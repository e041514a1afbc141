"""Connecting an organisation to Xero and Zoho CRM: the sandboxes' shortcut (and later OAuth)."""

from __future__ import annotations

from typing import Any

import requests
from pydantic import SecretStr

from connectors.credentials import Connection
from ledger import Ledger
from zxsync.settings import Settings, get_settings


def _sandbox_credentials(base_url: str | None, what: str, org_id: str | None = None) -> dict[str, Any]:
    if not base_url:
        raise SystemExit(f"Set {what} to the sandbox URL printed by `zxsync sandbox` to connect to it.")
    params = {"org": org_id} if org_id else None
    answer = requests.get(f"{base_url.rstrip('/')}/_sandbox/credentials", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def xero_connection_from_sandbox(org: str, creds: dict[str, Any], settings: Settings) -> Connection:
    """A Xero connection from a sandbox's ``/_sandbox/credentials`` (or ``/_sandbox/orgs``) answer."""
    urls = settings.xero_urls()
    return Connection(org=org, system="xero", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds["tenant_id"],
                      scopes=["offline_access", "accounting.invoices", "accounting.payments",
                              "accounting.contacts", "accounting.settings"],
                      urls=urls)


def zoho_connection_from_sandbox(org: str, creds: dict[str, Any]) -> Connection:
    """A Zoho connection from a sandbox's ``/_sandbox/credentials`` (or ``/_sandbox/orgs``) answer."""
    return Connection(org=org, system="zoho", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds.get("org_id"),
                      accounts_url=creds["accounts_url"], api_domain=creds["api_domain"],
                      scopes=["ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.coql.READ",
                              "ZohoCRM.org.READ", "ZohoCRM.users.READ"])


def connect_sandbox(org: str, ledger: Ledger | None = None, *, xero_org: str | None = None,
                    zoho_org: str | None = None) -> tuple[Connection, Connection]:
    """Store ``org``'s Xero and Zoho connections from the sandboxes the endpoint overrides point at."""
    settings = get_settings()
    xero = xero_connection_from_sandbox(
        org, _sandbox_credentials(settings.xero_identity_url or settings.xero_api_url,
                                  "ZX_XERO_API_URL", xero_org), settings)
    zoho = zoho_connection_from_sandbox(
        org, _sandbox_credentials(settings.zoho_accounts_url or settings.zoho_api_url,
                                  "ZX_ZOHO_ACCOUNTS_URL", zoho_org))
    own = ledger is None
    ledger = ledger or Ledger.open()
    try:
        ledger.save_connection(xero)
        ledger.save_connection(zoho)
    finally:
        if own:
            ledger.close()
    return xero, zoho
