"""Secrets at rest and in output: the key never under ZX_HOME, connections encrypted in the ledger,
and no client secret, token or authorization code printed or logged — errors included."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import requests
from test_onboarding_support import (  # noqa: F401  (fixtures are requested by their names)
    Browser,
    app_env,
    demo_file_fixture,
    invoke,
    new_org,
    orgs_dir_fixture,
    sandboxes_fixture,
)

from ledger import Ledger
from tests.e2e_support import Sandboxes
from zxsync.onboarding import LoopbackRedirect
from zxsync.settings import Settings


def test_the_secret_key_file_never_lives_inside_zx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZX_SECRET_KEY")
    home = tmp_path / "zxhome"
    inside = Settings(home=home, secret_key_file=home / "keys" / "secret.key")
    with pytest.raises(RuntimeError, match="must not live inside ZX_HOME"):
        inside.fernet_key()
    assert not (home / "keys" / "secret.key").exists()
    outside = Settings(home=home, secret_key_file=tmp_path / "config" / "secret.key")
    key = outside.fernet_key()
    assert stat.S_IMODE(os.stat(tmp_path / "config" / "secret.key").st_mode) == 0o600
    assert outside.fernet_key() == key  # generated once, then read


def test_a_connected_org_keeps_its_secrets_only_encrypted(sandboxes: Sandboxes, demo_file: Path,
                                                          monkeypatch: pytest.MonkeyPatch, zx_env: Path) -> None:
    xero_app, zoho_app = new_org(sandboxes, "At Rest Ltd", seed="empty")
    app_env(monkeypatch, "xero", xero_app)
    app_env(monkeypatch, "zoho", zoho_app)
    monkeypatch.setattr("webbrowser.open", Browser().open)
    outputs = [invoke("connect", "xero", "demo", "--port", "0", "--tenant", xero_app["tenant_id"]),
               invoke("connect", "zoho", "demo", "--port", "0")]
    with Ledger.open() as ledger:
        conns = [ledger.load_connection("demo", "xero"), ledger.load_connection("demo", "zoho")]
    secrets = {s.get_secret_value() for c in conns
               for s in (c.client_secret, c.refresh_token, c.access_token) if s is not None}
    assert {xero_app["client_secret"], zoho_app["client_secret"]} <= secrets and len(secrets) == 6
    for path in zx_env.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s.encode() in data], path
    assert not [s for s in secrets for out in outputs if s in out]


def test_a_refused_connection_prints_why_but_not_the_secret(sandboxes: Sandboxes, demo_file: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, zoho_app = new_org(sandboxes, "Typo Ltd", seed="empty")
    wrong = "this-is-the-wrong-secret-0123456789"
    monkeypatch.setattr("webbrowser.open", Browser().open)
    app_env(monkeypatch, "xero", {**xero_app, "client_secret": wrong})
    out = invoke("connect", "xero", "demo", "--port", "0", "--tenant", xero_app["tenant_id"], code=1)
    assert "invalid_client" in out and "check the client id and secret" in out and wrong not in out
    app_env(monkeypatch, "zoho", {**zoho_app, "client_secret": wrong})
    out = invoke("connect", "zoho", "demo", "--port", "0", code=1)
    assert "invalid_client_secret" in out and wrong not in out
    with Ledger.open() as ledger:
        assert ledger.list_connections("demo") == []


def test_secrets_are_prompted_hidden_and_never_shown_in_help(sandboxes: Sandboxes, demo_file: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    xero_app, _ = new_org(sandboxes, "Prompted Ltd", seed="empty")
    monkeypatch.setattr("webbrowser.open", Browser().open)
    for name in ("ZX_XERO_CLIENT_ID", "ZX_XERO_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    out = invoke("connect", "xero", "demo", "--port", "0", "--tenant", xero_app["tenant_id"],
                 input=f"{xero_app['client_id']}\n{xero_app['client_secret']}\n")
    assert "Xero client secret:" in out and "Connected demo" in out
    assert xero_app["client_id"] in out and xero_app["client_secret"] not in out  # the id is echoed, the secret not
    monkeypatch.setenv("ZX_XERO_CLIENT_SECRET", xero_app["client_secret"])
    assert xero_app["client_secret"] not in invoke("connect", "--help")


def test_the_loopback_server_logs_nothing_of_the_redirect(capfd: pytest.CaptureFixture[str]) -> None:
    with LoopbackRedirect(0) as rx:
        requests.get(f"{rx.redirect_uri}?code=THE-GRANT-CODE-123&state=s", timeout=5)
        requests.get(f"http://127.0.0.1:{rx.port}/other?code=THE-GRANT-CODE-123", timeout=5)
        assert "THE-GRANT-CODE-123" in rx.wait(1)
    captured = capfd.readouterr()
    assert "THE-GRANT-CODE-123" not in captured.out + captured.err
