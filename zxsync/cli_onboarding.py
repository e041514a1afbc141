"""Onboarding commands: ``org add``, ``connect``, ``setup zoho-fields``, ``mappings discover|check``
and ``doctor``. The work is done in :mod:`zxsync.onboarding`, :mod:`zxsync.discover` and
:mod:`zxsync.doctor`; this module reads options, prompts for what is missing (secrets hidden) and
prints — never a secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from zxsync.cli_app import app, mappings_app, org_app, setup_app

_PORT_HELP = "loopback port of the redirect URI registered with the app (0 = any free port)"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _errors() -> tuple[type[BaseException], ...]:
    from connectors.errors import ApiError
    from ledger import LedgerError
    from mappings.config import ConfigError
    from zxsync.onboarding import OnboardingError

    return (OnboardingError, ApiError, ConfigError, LedgerError)


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else str(exc)


def _value(given: str | None, env: str, prompt: str, *, secret: bool) -> str:
    """An option, else its environment variable, else a prompt (hidden for secrets)."""
    value = given or os.environ.get(env)
    if not value:
        value = typer.prompt(prompt, hide_input=secret)
    return value.strip()


# --- org add ------------------------------------------------------------------------------------------
@org_app.command("add")
def org_add(
    slug: Annotated[str, typer.Argument(help="the org's slug: lowercase letters, digits and '-'")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA timezone, e.g. Pacific/Auckland")] = None,
    dc: Annotated[str | None, typer.Option("--dc", help="Zoho data centre: com, eu, in, com.au, jp, ca, sa, "
                                                          "com.cn")] = None,
    modules: Annotated[str | None, typer.Option(help="comma-separated modules to enable (default: "
                                                        "contacts, vendors, products, invoices, "
                                                        "purchase_orders, payments)")] = None,
    purchase_target: Annotated[str, typer.Option(help="Zoho purchase orders become Xero 'bill's or "
                                                      "'purchase_order's")] = "bill",
    force: Annotated[bool, typer.Option("--force", help="replace an existing org file")] = False,
) -> None:
    """Write orgs/SLUG.yaml (into ZX_ORGS_DIR) from flags, prompting for what is missing."""
    from zxsync.onboarding import write_org_file

    if name is None:
        name = typer.prompt("Display name", default=slug.replace("-", " ").title())
    if timezone is None:
        import tzlocal

        try:
            local = tzlocal.get_localzone_name()
        except (OSError, LookupError, ValueError):  # no zone configured on this machine
            local = "UTC"
        timezone = typer.prompt("Timezone (IANA)", default=local or "UTC")
    if dc is None:
        dc = typer.prompt("Zoho data centre (com, eu, in, com.au, jp, ca, sa, com.cn)", default="com")
    wanted = [m.strip() for m in modules.split(",") if m.strip()] if modules else None
    try:
        path = write_org_file(slug, name=name, timezone=timezone, data_centre_code=dc, modules=wanted,
                              purchase_target=purchase_target, overwrite=force)
    except _errors() as exc:
        raise _fail(_message(exc)) from None
    typer.echo(f"Wrote {path}.\nNext: zxsync connect xero {slug}; zxsync connect zoho {slug}; "
               f"zxsync setup zoho-fields {slug}; zxsync mappings discover {slug}")


# --- connect --------------------------------------------------------------------------------------------
def _ask_tenant(tenants: list[dict[str, Any]]) -> dict[str, Any]:
    typer.echo("Several Xero organisations are connected:")
    for i, t in enumerate(tenants, start=1):
        typer.echo(f"  {i}. {t.get('tenantName')} ({t.get('tenantId')})")
    while True:
        choice = typer.prompt(f"Which one is this org's (1-{len(tenants)})", type=int)
        if 1 <= choice <= len(tenants):
            return tenants[choice - 1]


@app.command()
def connect(
    target: Annotated[str, typer.Argument(help="'xero' or 'zoho' (then ORG), or ORG with --sandbox")],
    org: Annotated[str | None, typer.Argument(help="the org's slug when TARGET is xero or zoho")] = None,
    use_sandbox: Annotated[bool, typer.Option("--sandbox", help="connect ORG to the local sandboxes")] = False,
    client_id: Annotated[str | None, typer.Option(help="app client id (else ZX_XERO_CLIENT_ID / "
                                                          "ZX_ZOHO_CLIENT_ID, else a prompt)")] = None,
    client_secret: Annotated[str | None, typer.Option(
        help="app client secret (prefer ZX_XERO_CLIENT_SECRET / ZX_ZOHO_CLIENT_SECRET or the hidden prompt: "
             "options stay in shell history)", show_default=False)] = None,
    scopes: Annotated[str | None, typer.Option(help="space- or comma-separated scopes instead of the "
                                                       "defaults")] = None,
    broad_scopes: Annotated[bool, typer.Option("--broad-scopes", help="Xero: accounting.transactions "
                                               "(apps created before March 2026)")] = False,
    tenant: Annotated[str | None, typer.Option(help="Xero: the organisation (tenant id or name) when "
                                                       "several are connected")] = None,
    custom_connection: Annotated[bool, typer.Option("--custom-connection", help="Xero: a custom connection "
                                                    "(client credentials, no browser)")] = False,
    dc: Annotated[str | None, typer.Option("--dc", help="Zoho data centre (default: the org file's)")] = None,
    grant_code: Annotated[str | None, typer.Option(help="Zoho: a self-client grant code instead of the "
                                                           "browser (or ZX_ZOHO_GRANT_CODE)",
                                                      show_default=False)] = None,
    self_client: Annotated[bool, typer.Option("--self-client", help="Zoho: prompt for a self-client grant "
                                              "code (hidden)")] = False,
    port: Annotated[int, typer.Option(help=_PORT_HELP)] = 8765,
    redirect_host: Annotated[str, typer.Option(help="host in the redirect URI: 127.0.0.1 or localhost (the "
                                                    "server always listens on 127.0.0.1)")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="only print the address to open")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the consent")] = 300.0,
) -> None:
    """Connect an org with its own consent: `zxsync connect xero ORG`, `zxsync connect zoho ORG --dc eu`,
    or the sandboxes with `zxsync connect ORG --sandbox`. Tokens and secrets go encrypted into the ledger."""
    from zxsync import onboarding

    if use_sandbox:
        slug = org or target
        try:
            xero, zoho = onboarding.connect_sandbox(slug)
        except _errors() as exc:
            raise _fail(_message(exc)) from None
        typer.echo(f"Connected {slug} to the Xero sandbox (tenant {xero.tenant_id}) and the Zoho CRM "
                   f"sandbox ({zoho.api_domain}).\nNext, as for a real org: zxsync setup zoho-fields {slug}")
        return
    if target not in ("xero", "zoho") or not org:
        raise typer.BadParameter("use `zxsync connect xero ORG`, `zxsync connect zoho ORG` or "
                                 "`zxsync connect ORG --sandbox`", param_hint="TARGET")
    system = target
    label = "Xero" if system == "xero" else "Zoho CRM"
    cid = _value(client_id, f"ZX_{system.upper()}_CLIENT_ID", f"{label} client id", secret=False)
    secret = _value(client_secret, f"ZX_{system.upper()}_CLIENT_SECRET", f"{label} client secret", secret=True)
    wanted = [s for s in (scopes or "").replace(",", " ").split() if s] or None
    common = {"port": port, "redirect_host": redirect_host, "open_browser": not no_browser, "echo": typer.echo,
              "timeout": timeout}
    try:
        if system == "xero":
            chosen = wanted or (onboarding.XERO_BROAD_SCOPES if broad_scopes else onboarding.XERO_SCOPES)
            if custom_connection:
                conn, organisation = onboarding.connect_xero_custom(org, client_id=cid, client_secret=secret,
                                                                    scopes=chosen, tenant=tenant)
            else:
                conn, organisation = onboarding.connect_xero(org, client_id=cid, client_secret=secret, scopes=chosen,
                                                             tenant=tenant, ask_tenant=_ask_tenant, **common)
            typer.echo(f"Connected {org} to the Xero organisation '{organisation.get('Name')}' (tenant "
                       f"{conn.tenant_id}); scopes: {' '.join(conn.scopes)}.")
        else:
            code = grant_code or os.environ.get("ZX_ZOHO_GRANT_CODE")
            if self_client and not code:
                code = typer.prompt("Zoho self-client grant code", hide_input=True)
            conn, zoho_org = onboarding.connect_zoho(
                org, client_id=cid, client_secret=secret, dc=dc or _org_dc(org), scopes=wanted or onboarding.ZOHO_SCOPES,
                grant_code=code, **common)
            typer.echo(f"Connected {org} to the Zoho CRM org '{zoho_org.get('company_name') or ''}' "
                       f"({conn.tenant_id}) at {conn.api_domain}; scopes: {' '.join(conn.scopes)}.")
    except _errors() as exc:
        raise _fail(_message(exc)) from None
    typer.echo("The tokens and the client secret are stored encrypted in the ledger.")


def _org_dc(org: str) -> str:
    from mappings.config import ConfigError, load_org

    try:
        return load_org(org).zoho.data_centre
    except ConfigError:
        return "com"


# --- setup zoho-fields ----------------------------------------------------------------------------------
@setup_app.command("zoho-fields")
def setup_zoho_fields(org: Annotated[str, typer.Argument(help="org slug")]) -> None:
    """Create the Xero_* fields the sync writes in the org's Zoho CRM (only the missing ones)."""
    from zxsync.onboarding import ensure_zoho_fields

    try:
        results = ensure_zoho_fields(org)
    except _errors() as exc:
        raise _fail(_message(exc)) from None
    for r in results:
        parts = []
        if r.created:
            parts.append(f"created {', '.join(r.created)}")
        if r.existing:
            parts.append(f"already there: {', '.join(r.existing)}")
        typer.echo(f"{r.module:<16} {'; '.join(parts) or 'nothing needed'}")
    created = sum(len(r.created) for r in results)
    existing = sum(len(r.existing) for r in results)
    typer.echo(f"{created} field(s) created, {existing} already there.")


# --- mappings discover / check ----------------------------------------------------------------------
@mappings_app.command("discover")
def mappings_discover(
    org: Annotated[str, typer.Argument(help="org slug")],
    output: Annotated[Path | None, typer.Option(help="write here instead of orgs/ORG.yaml")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a mapping that exists (kept as .bak)")] = False,
) -> None:
    """Write a starter mapping from the org's real Xero codes and Zoho picklists (guesses marked REVIEW)."""
    from zxsync.discover import discover

    try:
        path, reviews = discover(org, output=output, force=force)
    except _errors() as exc:
        raise _fail(_message(exc)) from None
    typer.echo(f"Wrote the starter mapping to {path}: {reviews} guess(es) marked REVIEW to check.\n"
               f"Then: zxsync mappings check {org}")


@mappings_app.command("check")
def mappings_check(org: Annotated[str, typer.Argument(help="org slug")]) -> None:
    """Check the mapping against the live Xero and Zoho metadata; exit 1 listing every gap."""
    from mappings.config import load_org
    from zxsync.discover import check_mapping, fetch_live, format_gaps

    try:
        config = load_org(org)
        live = fetch_live(org, config)
    except _errors() as exc:
        raise _fail(_message(exc)) from None
    gaps = check_mapping(config, live)
    typer.echo(format_gaps(config, gaps, live))
    raise typer.Exit(1 if any(g.blocking for g in gaps) else 0)


# --- doctor ------------------------------------------------------------------------------------------
@app.command()
def doctor(org: Annotated[str, typer.Argument(help="org slug")]) -> None:
    """A checklist: connections, scopes, tenant, API budget left, Zoho fields, lock, mapping (exit 1 on failures)."""
    from zxsync.doctor import doctor_failed, format_checks, run_doctor

    checks = run_doctor(org)
    typer.echo(format_checks(org, checks))
    raise typer.Exit(1 if doctor_failed(checks) else 0)
