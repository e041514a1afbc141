"""Run the sandboxes: on threads inside a process (tests, the demo) or in the foreground (CLI).

``python -m sandbox --xero-port 8701 --zoho-port 8702 --state-dir DIR`` serves both on 127.0.0.1;
port 0 picks a free port. URLs are printed once the sockets are bound.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from sandbox.common.base import Sandbox

HOST = "127.0.0.1"


class _QuietDrops(logging.Filter):
    """Injected connection drops are expected: keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "DroppedConnection"


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class RunningSandbox:
    """A sandbox serving on a background thread."""

    sandbox: Sandbox
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sandbox.store.close()


def bind(port: int = 0, host: str = HOST) -> socket.socket:
    """A listening socket on loopback (port 0 = any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio sets TCP_NODELAY only on sockets created with proto=IPPROTO_TCP; without it, Nagle plus
    # the client's delayed ACK adds ~40 ms to every keep-alive request (accepted sockets inherit this).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def start(sandbox: Sandbox, port: int = 0, log_level: str = "warning") -> RunningSandbox:
    """Serve ``sandbox`` on a daemon thread; returns once it accepts connections."""
    sock = bind(port)
    actual = sock.getsockname()[1]
    config = uvicorn.Config(sandbox.asgi, log_level=log_level, access_log=False, lifespan="off",
                            timeout_keep_alive=30, backlog=1024)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"{sandbox.name}-sandbox")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the {sandbox.name} sandbox did not start")
        time.sleep(0.02)
    return RunningSandbox(sandbox=sandbox, url=f"http://{HOST}:{actual}", server=server, thread=thread)


def start_both(state_dir: Path | None, xero_port: int = 0, zoho_port: int = 0,
               seed: str = "demo") -> tuple[RunningSandbox, RunningSandbox]:
    """Start the Xero and the Zoho CRM sandboxes (state persisted under ``state_dir`` when given)."""
    from sandbox.xero.app import XeroSandbox
    from sandbox.zoho.app import ZohoSandbox

    xero = start(XeroSandbox(state_dir, seed=seed), xero_port)
    try:
        zoho = start(ZohoSandbox(state_dir, seed=seed), zoho_port)
    except BaseException:
        xero.stop()
        raise
    return xero, zoho


def serve_forever(state_dir: Path, xero_port: int = 8701, zoho_port: int = 8702) -> None:
    """Foreground mode: start both, print the URLs, stop cleanly on Ctrl-C or SIGTERM."""
    xero, zoho = start_both(state_dir, xero_port, zoho_port)
    print(f"Xero sandbox:     {xero.url}   (set ZX_XERO_LOGIN_URL, ZX_XERO_IDENTITY_URL, ZX_XERO_API_URL)")
    print(f"Zoho CRM sandbox: {zoho.url}   (set ZX_ZOHO_ACCOUNTS_URL, ZX_ZOHO_API_URL)")
    print(f"State:            {state_dir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        xero.stop()
        zoho.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--xero-port", type=int, default=8701)
    parser.add_argument("--zoho-port", type=int, default=8702)
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".zxsync" / "sandbox")
    args = parser.parse_args(argv)
    serve_forever(args.state_dir, args.xero_port, args.zoho_port)


if __name__ == "__main__":
    main()
