"""Onboarding commands one by one: org add, the loopback redirect and PKCE, connect xero (consent,
several tenants, refusals, custom connection), connect zoho (consent, self-client grant code),
setup zoho-fields."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from test_onboarding_support import (  # noqa: F401  (fixtures are requested by their names)
    Browser,
    app_env,
    demo_file_fixture,
    invoke,
    new_org,
    orgs_dir_fixture,
    sandboxes_fixture,
)

from connectors.credentials import Connection
from ledger import Ledger
from mappings.config import load_org_file, parse_org
from tests.e2e_support import Sandboxes
from zxsync.onboarding import (
    LoopbackRedirect,
    OnboardingError,
    connect_xero,
    ensure_zoho_fields,
    pkce_pair,
    required_zoho_fields,
    xero_authorize_url,
)


def _stored(org: str, system: str) -> Connection | None:
    with Ledger.open() as ledger:
        try:
            return ledger.load_connection(org, system)  # type: ignore[arg-type]
        except KeyError:
            return None


# --- org add ----------------------------------------------------------------------------------------------


def test_org_add_writes_a_valid_org_file_from_flags(orgs_dir: Path) -> None:
    out = invoke("org", "add", "acme-nz", "--name", "Acme: NZ Ltd", "--timezone", "Pacific/Auckland", "--dc", "au",
                 "--modules", "contacts,invoices,payments", "--purchase-target", "purchase_order")
    path = orgs_dir / "acme-nz.yaml"
    assert str(path) in out and "zxsync connect xero acme-nz" in out
    org = load_org_file(path)
    assert (org.slug, org.name, org.timezone, org.zoho.data_centre) == ("acme-nz", "Acme: NZ Ltd", "Pacific/Auckland",
                                                                        "com.au")
    assert org.modules.invoices.enabled and org.modules.payments.enabled and not org.modules.vendors.enabled
    assert org.modules.purchase_orders.target == "purchase_order" and not org.modules.purchase_orders.enabled
    assert (org.xero.connection, org.zoho.connection) == ("acme-nz-xero", "acme-nz-zoho")


def test_org_add_prompts_for_what_is_missing(orgs_dir: Path) -> None:
    invoke("org", "add", "harbour", input="Harbour Co\nEurope/London\neu\n")
    org = load_org_file(orgs_dir / "harbour.yaml")
    assert (org.name, org.timezone, org.zoho.data_centre) == ("Harbour Co", "Europe/London", "eu")
    assert org.modules.vendors.enabled and not org.modules.quotes.enabled  # the defaults


def test_org_add_refuses_bad_values_and_existing_files(orgs_dir: Path) -> None:
    common = ["--name", "X", "--dc", "com"]
    out = invoke("org", "add", "acme", *common, "--timezone", "Mars/Olympus", code=1)
    assert "timezone" in out and "Mars/Olympus" in out
    assert "slug" in invoke("org", "add", "Acme_Ltd", *common, "--timezone", "UTC", code=1)
    assert "unknown Zoho data centre" in invoke("org", "add", "acme", "--name", "X", "--dc", "moon",
                                                "--timezone", "UTC", code=1)
    assert "unknown module" in invoke("org", "add", "acme", *common, "--timezone", "UTC", "--modules", "ledgers",
                                      code=1)
    assert not list(orgs_dir.iterdir())
    invoke("org", "add", "acme", *common, "--timezone", "UTC")
    assert "exists already" in invoke("org", "add", "acme", *common, "--timezone", "UTC", code=1)
    invoke("org", "add", "acme", "--name", "Y", "--dc", "com", "--timezone", "UTC", "--force")
    assert parse_org(yaml.safe_load((orgs_dir / "acme.yaml").read_text()), "acme.yaml").name == "Y"


# --- PKCE and the loopback redirect -------------------------------------------------------------------------


def test_pkce_pair_is_rfc7636_s256() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier
    url = xero_authorize_url("https://login.xero.com", client_id="CID", redirect_uri="http://127.0.0.1:8765/callback",
                             scopes=["offline_access", "accounting.invoices"], state="s", code_challenge=challenge)
    query = urlsplit(url).query
    assert url.startswith("https://login.xero.com/identity/connect/authorize?")
    assert "scope=offline_access+accounting.invoices" in query and "code_challenge_method=S256" in query


def test_loopback_redirect_takes_the_first_callback_only() -> None:
    with LoopbackRedirect(0) as rx:
        assert rx.redirect_uri == f"http://127.0.0.1:{rx.port}/callback"
        assert requests.get(f"http://127.0.0.1:{rx.port}/favicon.ico", timeout=5).status_code == 404
        page = requests.get(f"{rx.redirect_uri}?code=abc&state=s1", timeout=5)
        assert page.status_code == 200 and "close this tab" in page.text
        requests.get(f"{rx.redirect_uri}?code=other&state=s2", timeout=5)
        assert rx.wait(1) == f"{rx.redirect_uri}?code=abc&state=s1"
    with LoopbackRedirect(0, redirect_host="localhost") as rx:
        assert rx.redirect_uri.startswith("http://localhost:")
        with pytest.raises(OnboardingError, match="no authorisation arrived"):
            rx.wait(0.05)


def test_a_busy_port_is_reported_with_what_to_do() -> None:
    with LoopbackRedirect(0) as taken, pytest.raises(OnboardingError, match="another --port"):
        LoopbackRedirect(taken.port).__enter__()


# --- connect xero ----------------------------------------------------------------------------------------


def test_connect_xero_refuses_a_redirect_whose_state_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webbrowser.open", Browser(direct={"code": "stolen", "state": "forged"}).open)
    with pytest.raises(OnboardingError, match="state does not match"):
        connect_xero("acme", client_id="CID", client_secret="SECRET", port=0, echo=lambda _: None, timeout=10)
    monkeypatch.setattr("webbrowser.open", Browser(direct={"error": "access_denied"}).open)
    with pytest.raises(OnboardingError, match="refused the authorisation: access_denied"):
        connect_xero("acme", client_id="CID", client_secret="SECRET", port=0, echo=lambda _: None, timeout=10)
    assert _stored("acme", "xero") is None


def test_connect_xero_asks_which_organisation_when_several_are_connected(
        sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, _ = new_org(sandboxes, "Second Org Ltd", seed="empty")
    app_env(monkeypatch, "xero", xero_app)
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", browser.open)
    out = invoke("connect", "xero", "acme", "--port", "0", "--no-browser", "--timeout", "0.3", code=1)
    assert "/identity/connect/authorize?" in out and "no authorisation arrived" in out and not browser.opened
    # With a browser the consent goes through, and the user picks the second organisation listed.
    out = invoke("connect", "xero", "acme", "--port", "0", input="2\n")
    listed = [line.split("(")[-1].rstrip(")") for line in out.splitlines() if line.strip().startswith("2. ")]
    conn = _stored("acme", "xero")
    assert conn is not None and listed == [conn.tenant_id]
    assert conn.grant == "authorization_code" and conn.refresh_token and conn.access_token
    assert "accounting.payments" in conn.scopes and "offline_access" in conn.scopes


def test_connect_xero_with_broad_scopes_and_a_tenant_by_name(sandboxes: Sandboxes,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, _ = new_org(sandboxes, "Broad Scopes Ltd", seed="empty")
    app_env(monkeypatch, "xero", xero_app)
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", browser.open)
    out = invoke("connect", "xero", "acme", "--port", "0", "--broad-scopes", "--tenant", "broad scopes ltd")
    assert "'Broad Scopes Ltd'" in out
    assert "accounting.transactions" in browser.opened[-1] and "accounting.invoices" not in browser.opened[-1]
    assert _stored("acme", "xero").tenant_id == xero_app["tenant_id"]  # type: ignore[union-attr]
    assert "none of the connected" in invoke("connect", "xero", "other", "--port", "0", "--tenant", "Nobody Ltd",
                                             code=1)


def test_connect_xero_custom_connection(sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, _ = new_org(sandboxes, "Custom Co", seed="empty")
    custom = requests.get(f"{sandboxes.xero.url}/_sandbox/credentials",
                          params={"org": xero_app["tenant_id"], "grant": "client_credentials"}, timeout=30).json()
    app_env(monkeypatch, "xero", custom)
    out = invoke("connect", "xero", "custom", "--custom-connection")
    assert "'Custom Co'" in out
    conn = _stored("custom", "xero")
    assert conn is not None and conn.grant == "client_credentials" and conn.refresh_token is None
    assert conn.tenant_id == xero_app["tenant_id"] and "offline_access" not in conn.scopes
    # A web app's credentials cannot use the client-credentials grant: said plainly.
    app_env(monkeypatch, "xero", xero_app)
    assert "unauthorized_client" in invoke("connect", "xero", "custom2", "--custom-connection", code=1)


def test_connect_records_the_tenant_and_zoho_org_in_the_org_file(
        sandboxes: Sandboxes, demo_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, zoho_app = new_org(sandboxes, "Recorded Ltd", seed="empty")
    app_env(monkeypatch, "xero", xero_app)
    app_env(monkeypatch, "zoho", zoho_app)
    monkeypatch.setattr("webbrowser.open", Browser().open)
    invoke("connect", "xero", "demo", "--port", "0", "--tenant", xero_app["tenant_id"])
    invoke("connect", "zoho", "demo", "--port", "0")
    text = demo_file.read_text()
    assert f"tenant_id: {xero_app['tenant_id']}" in text and f"org_id: '{zoho_app['org_id']}'" in text
    assert "# Harbour Demo Ltd: the demo organisation" in text  # comments kept


# --- connect zoho --------------------------------------------------------------------------------------------


def test_connect_zoho_by_consent_stores_the_accounts_server_and_api_domain(
        sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    _, zoho_app = new_org(sandboxes, "Zoho Consent Ltd", seed="empty")
    app_env(monkeypatch, "zoho", zoho_app)
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", browser.open)
    out = invoke("connect", "zoho", "acme", "--port", "0", "--dc", "eu")
    conn = _stored("acme", "zoho")
    assert conn is not None and conn.tenant_id == zoho_app["org_id"] and zoho_app["org_id"] in out
    assert conn.accounts_url == sandboxes.zoho.url and conn.api_domain == sandboxes.zoho.url
    assert conn.refresh_token and conn.access_token and "ZohoCRM.coql.READ" in conn.scopes
    consent = browser.opened[-1]
    assert "access_type=offline" in consent and "prompt=consent" in consent
    assert "scope=ZohoCRM.modules.ALL%2CZohoCRM.settings.ALL" in consent  # comma-separated, as Zoho wants


def test_connect_zoho_refuses_a_forged_accounts_server(sandboxes: Sandboxes,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _, zoho_app = new_org(sandboxes, "Forged Ltd", seed="empty")
    app_env(monkeypatch, "zoho", zoho_app)

    def forge(location: str) -> str:
        return location.replace("accounts-server=http", "accounts-server=https%3A%2F%2Fevil.example%2F&x=http")

    monkeypatch.setattr("webbrowser.open", Browser(rewrite=forge).open)
    assert "is not a Zoho accounts server" in invoke("connect", "zoho", "acme", "--port", "0", code=1)
    assert _stored("acme", "zoho") is None


def test_connect_zoho_with_a_self_client_grant_code(sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch) -> None:
    _, zoho_app = new_org(sandboxes, "Self Client Ltd", seed="empty")
    app_env(monkeypatch, "zoho", zoho_app)
    # A self client's grant code, as Zoho's API console generates it.
    consent = requests.get(f"{sandboxes.zoho.url}/oauth/v2/auth", allow_redirects=False, timeout=30, params={
        "response_type": "code", "client_id": zoho_app["client_id"], "redirect_uri": "https://www.zoho.com",
        "scope": "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.coql.READ,ZohoCRM.org.READ,ZohoCRM.users.READ",
        "access_type": "offline"})
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    monkeypatch.setenv("ZX_ZOHO_GRANT_CODE", code)
    out = invoke("connect", "zoho", "acme")
    assert zoho_app["org_id"] in out and _stored("acme", "zoho").refresh_token  # type: ignore[union-attr]
    # A grant code is single-use: the second exchange fails with Zoho's reason, nothing stored.
    out = invoke("connect", "zoho", "again", "--grant-code", code, code=1)
    assert "invalid_code" in out and _stored("again", "zoho") is None


# --- setup zoho-fields --------------------------------------------------------------------------------------


def test_required_fields_follow_the_enabled_modules(orgs_dir: Path) -> None:
    invoke("org", "add", "few", "--name", "Few", "--timezone", "UTC", "--dc", "com",
           "--modules", "invoices,sales_orders,payments")
    fields = required_zoho_fields(load_org_file(orgs_dir / "few.yaml"))
    assert set(fields) == {"Invoices", "Sales_Orders"}
    assert [f.api_name for f in fields["Sales_Orders"]] == [f.api_name for f in fields["Invoices"]]
    assert "Xero_Invoice_ID" in {f.api_name for f in fields["Invoices"]}
    assert set(required_zoho_fields(None)) == {"Accounts", "Contacts", "Vendors", "Products", "Invoices",
                                               "Purchase_Orders", "Sales_Orders", "Quotes"}


def test_setup_zoho_fields_waits_for_a_running_sync_then_says_so(sandboxes: Sandboxes, demo_file: Path) -> None:
    from zxsync.onboarding import connect_sandbox

    connect_sandbox("demo")
    with Ledger.open() as ledger, ledger.org_lock("demo", "run 42 (a sync)", timeout=0), \
            pytest.raises(OnboardingError, match="run 42"):
        ensure_zoho_fields("demo", lock_wait=0.2)
    assert sandboxes.stats("zoho")["writes"] == 0
    results = ensure_zoho_fields("demo")
    assert {r.module for r in results} == {"Accounts", "Contacts", "Vendors", "Products", "Invoices",
                                           "Purchase_Orders"}
    assert all(r.created and not r.existing for r in results)


def test_connect_sandbox_still_connects_both(sandboxes: Sandboxes, demo_file: Path) -> None:
    out = invoke("connect", "demo", "--sandbox")
    assert "Xero sandbox" in out and "Zoho CRM sandbox" in out
    assert _stored("demo", "xero") is not None and _stored("demo", "zoho") is not None
