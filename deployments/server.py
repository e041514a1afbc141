"""A local Prefect server (API + UI) as a child process: the demo's sync log, and the tests' real server.

``prefect server start`` with ``PREFECT_HOME`` pointing where we say (its SQLite database is
``<home>/prefect.db`` unless a PostgreSQL URL is given), analytics off, on 127.0.0.1. A fresh
SQLite database is healthy in about 7 s on 2 vCPUs, an existing one in about 4 s.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from deployments.processes import Child, spawn

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when ``port`` can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def prefect_env(
    home: Path, api_url: str | None = None, base: Mapping[str, str] | None = None, **extra: str
) -> dict[str, str]:
    """An environment for a Prefect process: its home, no analytics, and the API to use (if any)."""
    env = dict(os.environ if base is None else base)
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    if api_url is None:
        env.pop("PREFECT_API_URL", None)
    else:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


@dataclass
class PrefectServer:
    """A running ``prefect server start`` child."""

    child: Child
    port: int
    home: Path

    @property
    def url(self) -> str:
        """The UI's address."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """What ``PREFECT_API_URL`` must say for clients of this server."""
        return f"{self.url}/api"

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.api_url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, timeout: float = 240.0) -> None:
        """Return once ``/api/health`` answers; stop the server and raise ``RuntimeError`` if it never does."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if not self.child.running() or time.monotonic() > deadline:
                tail = self.child.log_tail()
                self.stop(timeout=5)
                raise RuntimeError(
                    f"the Prefect server on port {self.port} did not start; its log ends with:\n{tail}"
                )
            time.sleep(0.5)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and its web-server child (SIGTERM, then SIGKILL)."""
        self.child.stop(timeout=timeout, first=signal.SIGTERM)


def start_prefect_server(
    home: Path,
    port: int = 0,
    *,
    database_url: str | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    startup_timeout: float = 240.0,
    wait: bool = True,
) -> PrefectServer:
    """Start ``prefect server start`` on 127.0.0.1 (``port`` 0 = any free port); wait until healthy
    unless ``wait`` is False (then call :meth:`PrefectServer.wait_healthy` before using it).

    ``database_url`` (``postgresql+asyncpg://...``) replaces the SQLite file under ``home``.
    Raises ``RuntimeError`` with the end of the server's log when it exits or stays unhealthy.
    """
    home.mkdir(parents=True, exist_ok=True)
    if port == 0:
        port = free_port()
    elif not port_is_free(port):
        raise RuntimeError(f"port {port} is in use on {HOST}: pick another one (0 = any free port)")
    extra = dict(extra_env or {})
    extra["PREFECT_UI_URL"] = f"http://{HOST}:{port}"
    if database_url:
        extra["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    env = prefect_env(home, None, **extra)
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)]
    child = spawn("prefect-server", argv, env=env, log_path=log_path or home / "server.log")
    server = PrefectServer(child=child, port=port, home=home)
    if wait:
        server.wait_healthy(startup_timeout)
    return server
