"""``zxsync doctor ORG``: is this organisation ready to sync? A readable checklist.

Checks, each ``ok``, ``warn`` or ``FAIL`` with what to do: the org file; the Xero connection
(token, connected tenant, granted scopes, calls left today from ``X-DayLimit-Remaining``); the Zoho
CRM connection (token, org, scopes, credits left from ``X-API-CREDITS-REMAINING``); the Xero_*
fields in Zoho; the org's lock (a running sync holds it); and the mapping check. One failing check
never hides the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from connectors.credentials import Connection
from connectors.errors import ApiError
from ledger import Ledger, LedgerCredentialStore
from mappings import OrgConfig
from mappings.config import ConfigError, load_org
from zxsync.discover import LiveMetadata, check_mapping, fetch_live
from zxsync.onboarding import ZOHO_SCOPES, OnboardingError, _ledger, required_zoho_fields

Status = Literal["ok", "warn", "fail", "skip"]

#: Xero scopes the sync needs: each need is met by a granular scope or the broad one it replaced.
XERO_NEEDS: dict[str, tuple[str, ...]] = {
    "invoices, credit notes, purchase orders, items": ("accounting.invoices", "accounting.transactions"),
    "payments": ("accounting.payments", "accounting.transactions"),
    "contacts": ("accounting.contacts",),
    "settings (accounts, tax rates, themes, tracking, currencies)": ("accounting.settings",),
}
#: Below this many Xero calls left today, say so.
XERO_LOW_CALLS = 500


class Check(BaseModel):
    """One line of the checklist."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


def _zoho_scope_ok(granted: set[str], needed: str) -> bool:
    """``ZohoCRM.org.READ`` is met by itself, ``ZohoCRM.org.ALL`` or ``ZohoCRM.ALL``-style wider scopes."""
    if needed in granted:
        return True
    parts = needed.split(".")
    wider = {".".join(parts[:-1] + ["ALL"]), ".".join(parts[:2] + ["ALL"]) if len(parts) > 2 else ""}
    return bool(granted & (wider - {""}))


def _xero_checks(org: str, store: LedgerCredentialStore, conn: Connection) -> list[Check]:
    from connectors.xero import XeroClient

    checks: list[Check] = []
    reconnect = f"`zxsync connect xero {org}`"
    granted = set(conn.scopes)
    missing = [need for need, options in XERO_NEEDS.items()
               if not any(s in granted or f"{s}.read" in granted for s in options)]
    if conn.grant == "authorization_code" and "offline_access" not in granted:
        missing.append("offline_access (refresh tokens)")
    if missing:
        checks.append(Check(name="Xero scopes", status="fail", detail=f"missing: {'; '.join(missing)}",
                            fix=f"reconnect with the scopes the sync needs: {reconnect}"))
    elif "accounting.transactions" in granted:
        checks.append(Check(name="Xero scopes", status="warn", detail=" ".join(sorted(granted)),
                            fix="broad scopes stop working on 13 Sep 2027: register granular scopes and "
                                f"reconnect with {reconnect}"))
    else:
        checks.append(Check(name="Xero scopes", status="ok", detail=" ".join(sorted(granted))))
    client = XeroClient(store, org)
    try:
        try:
            tenants = client.connections()
        except ApiError as exc:
            return [Check(name="Xero connectivity", status="fail", detail=exc.message,
                          fix=f"reconnect: {reconnect}"), *checks]
        checks.insert(0, Check(name="Xero connectivity", status="ok",
                               detail=f"token valid ({conn.grant.replace('_', ' ')}); "
                                      f"{len(tenants)} organisation(s) connected"))
        row = next((t for t in tenants if str(t.get("tenantId")) == conn.tenant_id), None)
        if conn.tenant_id and row is None:
            checks.insert(1, Check(name="Xero tenant", status="fail",
                                   detail=f"tenant {conn.tenant_id} is no longer connected to the app",
                                   fix=f"reconnect and tick the organisation: {reconnect}"))
            return checks
        try:
            organisation = client.organisation()
        except ApiError as exc:
            checks.insert(1, Check(name="Xero tenant", status="fail", detail=exc.message,
                                   fix=f"reconnect: {reconnect}"))
            return checks
        checks.insert(1, Check(name="Xero tenant", status="ok",
                               detail=f"'{organisation.get('Name')}' ({client.tenant_id}), base currency "
                                      f"{organisation.get('BaseCurrency')}"))
        left = client.limiter.day_remaining
        if left is None:
            checks.append(Check(name="Xero calls left today", status="warn",
                                detail="Xero sent no X-DayLimit-Remaining header"))
        else:
            checks.append(Check(name="Xero calls left today", status="ok" if left >= XERO_LOW_CALLS else "warn",
                                detail=f"{left} (X-DayLimit-Remaining)",
                                fix=None if left >= XERO_LOW_CALLS else "the next sync may stop early; the "
                                "budget refills at the tenant's day boundary"))
    finally:
        client.session.close()
    return checks


def _zoho_checks(org: str, store: LedgerCredentialStore, conn: Connection) -> list[Check]:
    from connectors.zoho import ZohoClient

    reconnect = f"`zxsync connect zoho {org}`"
    client = ZohoClient(store, org)
    checks: list[Check] = []
    try:
        try:
            zoho_org = client.org()
        except ApiError as exc:
            return [Check(name="Zoho CRM connectivity", status="fail", detail=exc.message,
                          fix=f"reconnect: {reconnect}")]
        checks.append(Check(name="Zoho CRM connectivity", status="ok",
                            detail=f"org '{zoho_org.get('company_name') or ''}' ({zoho_org.get('zgid') or zoho_org.get('id')}) at "
                                   f"{client.api_base()}"))
        granted = set(conn.scopes)
        missing = [s for s in ZOHO_SCOPES if not _zoho_scope_ok(granted, s)]
        checks.append(Check(name="Zoho CRM scopes", status="fail" if missing else "ok",
                            detail=f"missing: {', '.join(missing)}" if missing else " ".join(sorted(granted)),
                            fix=f"reconnect with the scopes the sync needs: {reconnect}" if missing else None))
        left = client.budget.estimated_remaining
        if left is None:
            checks.append(Check(name="Zoho CRM credits left", status="ok",
                                detail="more than half of the day's credits (Zoho reports the count only "
                                       "once half are used)"))
        else:
            low = left < 2 * client.reserve
            checks.append(Check(name="Zoho CRM credits left", status="warn" if low else "ok",
                                detail=f"about {left} in the rolling 24 hours (X-API-CREDITS-REMAINING)",
                                fix="the next sync may stop early; credits free up over 24 hours" if low else None))
    finally:
        client.session.close()
    return checks


def _fields_check(org: str, config: OrgConfig, live: LiveMetadata) -> Check:
    missing: list[str] = []
    for module, specs in required_zoho_fields(config).items():
        present = {f.get("api_name") for f in live.zoho_fields.get(module, [])}
        gone = [s.api_name for s in specs if s.api_name not in present]
        if gone:
            missing.append(f"{module}: {', '.join(gone)}")
    if missing:
        return Check(name="Zoho Xero_* fields", status="fail", detail="; ".join(missing),
                     fix=f"`zxsync setup zoho-fields {org}`")
    count = sum(len(s) for s in required_zoho_fields(config).values())
    return Check(name="Zoho Xero_* fields", status="ok", detail=f"all {count} present")


def _lock_check(org: str, ledger: Ledger) -> Check:
    info = ledger.org_lock_info(org)
    if info is None:
        return Check(name="Org lock", status="ok", detail="free (no sync running)")
    expires = info.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires is not None and expires < datetime.now(UTC):
        return Check(name="Org lock", status="ok", detail=f"free (last held by {info.holder}, expired)")
    return Check(name="Org lock", status="warn", detail=f"held by {info.holder} until {info.expires_at}",
                 fix="a sync (or restore) of this org is running; it is released when it ends")


def run_doctor(org: str, *, ledger: Ledger | None = None) -> list[Check]:
    """Every check of ``org`` (none raises: a failure is a ``fail`` line)."""
    checks: list[Check] = []
    try:
        config: OrgConfig | None = load_org(org)
        checks.append(Check(name="Org file", status="ok", detail=f"{config.config_file} is valid"))
    except ConfigError as exc:
        config = None
        checks.append(Check(name="Org file", status="fail", detail=str(exc),
                            fix=f"edit the file, or `zxsync org add {org}`"))
    with _ledger(ledger) as led:
        store = LedgerCredentialStore(led)
        connected = {}
        for system, label, runner in (("xero", "Xero", _xero_checks), ("zoho", "Zoho CRM", _zoho_checks)):
            try:
                conn = led.load_connection(org, system)  # type: ignore[arg-type]
            except KeyError:
                checks.append(Check(name=f"{label} connection", status="fail", detail="not connected",
                                    fix=f"`zxsync connect {system} {org}`"))
                continue
            if conn.broken_reason:
                checks.append(Check(name=f"{label} connection", status="fail", detail=conn.broken_reason,
                                    fix=f"reconnect: `zxsync connect {system} {org}`"))
                continue
            found = _guard(f"{label} connectivity", lambda: runner(org, store, conn))  # noqa: B023
            checks += found
            connected[system] = all(c.status != "fail" for c in found if "connectivity" in c.name)
        live: LiveMetadata | None = None
        if config is not None and connected.get("xero") and connected.get("zoho"):
            try:
                live = fetch_live(org, config, ledger=led)
            except (ApiError, OnboardingError) as exc:
                checks.append(Check(name="Live metadata", status="fail", detail=str(exc)))
        if live is not None and config is not None:
            checks.append(_fields_check(org, config, live))
        else:
            checks.append(Check(name="Zoho Xero_* fields", status="skip",
                                detail="needs a valid org file and both connections"))
        checks.append(_lock_check(org, led))
        if live is not None and config is not None:
            gaps = check_mapping(config, live)
            blocking = [g for g in gaps if g.blocking]
            warnings = len(gaps) - len(blocking)
            if blocking:
                shown = "; ".join(f"{g.key}: {g.problem}" for g in blocking[:3])
                more = f" (and {len(blocking) - 3} more)" if len(blocking) > 3 else ""
                checks.append(Check(name="Mapping check", status="fail",
                                    detail=f"{len(blocking)} gap(s): {shown}{more}",
                                    fix=f"`zxsync mappings check {org}` lists each gap with its fix"))
            else:
                checks.append(Check(name="Mapping check", status="warn" if warnings else "ok",
                                    detail=f"no gaps, {warnings} warning(s)",
                                    fix=f"`zxsync mappings check {org}`" if warnings else None))
        else:
            checks.append(Check(name="Mapping check", status="skip",
                                detail="needs a valid org file and both connections"))
    return checks


def _guard(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    try:
        return run()
    except (ApiError, KeyError, OnboardingError) as exc:
        return [Check(name=name, status="fail", detail=getattr(exc, "message", None) or str(exc))]


_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def format_checks(org: str, checks: Sequence[Check]) -> str:
    """The checklist as text, one line per check (plus its fix), and a verdict."""
    width = max(len(c.name) for c in checks)
    lines = [f"zxsync doctor {org}"]
    for c in checks:
        lines.append(f"  [{_MARK[c.status]}] {c.name:<{width}}  {c.detail}")
        if c.fix and c.status in ("warn", "fail"):
            lines.append(f"  {'':6} {'':<{width}}  -> {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(f"{failed} check(s) failed." if failed else "Ready to sync.")
    return "\n".join(lines)


def doctor_failed(checks: Sequence[Any]) -> bool:
    """True when any check failed (the command's exit status)."""
    return any(c.status == "fail" for c in checks)
