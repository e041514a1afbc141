"""Helpers of the onboarding tests: a stand-in browser, the CLI runner, sandboxes with an empty
org registry."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from typer.testing import CliRunner

from tests.e2e_support import Sandboxes, running_sandboxes
from zxsync.settings import REPO_ROOT


class Browser:
    """Stands in for the user's browser: opens the authorize URL in a thread and follows the consent
    redirect to the loopback server (the sandboxes consent on their own).

    ``rewrite`` changes the provider's redirect before it is followed (a forged state, ...);
    ``direct`` skips the provider and sends these query parameters straight to the redirect URI.
    """

    def __init__(self, rewrite: Callable[[str], str] | None = None, direct: dict[str, str] | None = None) -> None:
        self.opened: list[str] = []
        self.rewrite = rewrite
        self.direct = direct

    def _visit(self, url: str) -> None:
        if self.direct is not None:
            redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
            requests.get(f"{redirect}?{urlencode(self.direct)}", timeout=30)
        elif self.rewrite is not None:
            consent = requests.get(url, allow_redirects=False, timeout=30)
            requests.get(self.rewrite(consent.headers["Location"]), timeout=30)
        else:
            requests.get(url, timeout=30)

    def open(self, url: str, *args: Any, **kw: Any) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._visit, args=(url,), daemon=True).start()
        return True


def invoke(*args: str, code: int = 0, input: str | None = None) -> str:
    """Run ``zxsync ARGS`` in this process; assert its exit code; return its output."""
    from zxsync.cli import app

    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == code, f"zxsync {' '.join(args)} -> {result.exit_code}\n{result.output}"
    return result.output


@pytest.fixture(name="orgs_dir")
def orgs_dir_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty org registry (ZX_ORGS_DIR) for this test."""
    from zxsync.settings import get_settings

    folder = tmp_path / "orgs"
    folder.mkdir()
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    get_settings.cache_clear()
    return folder


@pytest.fixture(name="demo_file")
def demo_file_fixture(orgs_dir: Path) -> Path:
    """The repository's demo org file, copied into the test's registry."""
    return Path(shutil.copy(REPO_ROOT / "orgs" / "demo.yaml", orgs_dir / "demo.yaml"))


@pytest.fixture(name="sandboxes")
def sandboxes_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orgs_dir: Path) -> Iterator[Sandboxes]:
    """Both sandboxes (demo seed, no Xero_* fields), nothing connected yet."""
    with running_sandboxes(tmp_path / "sandbox-state", monkeypatch, onboard=None) as boxes:
        yield boxes


def new_org(boxes: Sandboxes, name: str = "Kauri Traders Ltd", seed: str = "demo") -> tuple[dict, dict]:
    """A fresh Xero tenant and Zoho org with their apps' credentials (``POST /_sandbox/orgs``)."""
    xero = requests.post(f"{boxes.xero.url}/_sandbox/orgs", json={"name": name, "seed": seed}, timeout=60)
    zoho = requests.post(f"{boxes.zoho.url}/_sandbox/orgs", json={"name": name, "seed": seed}, timeout=60)
    assert xero.status_code == zoho.status_code == 201
    return xero.json(), zoho.json()


def app_env(monkeypatch: pytest.MonkeyPatch, system: str, creds: dict[str, Any]) -> None:
    """The app's client id and secret in the environment, as a user would export them."""
    monkeypatch.setenv(f"ZX_{system.upper()}_CLIENT_ID", creds["client_id"])
    monkeypatch.setenv(f"ZX_{system.upper()}_CLIENT_SECRET", creds["client_secret"])
