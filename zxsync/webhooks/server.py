"""``zxsync webhooks``: the receivers on uvicorn, the dispatcher, and the Zoho channel keeper.

One process; three threads besides the web server's event loop:
- the dispatcher (pending ids -> runs; it holds a ledger lease, so only one server dispatches),
- the channel keeper (checks every org's Zoho channel at start and every hour, renews it a day
  before it expires),
- uvicorn itself (the handlers verify and queue; nothing slow happens there).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from ledger import Ledger, default_holder
from zxsync.webhooks.app import create_app
from zxsync.webhooks.channels import ChannelKeeper
from zxsync.webhooks.dispatch import Dispatcher, Launcher, PrefectLauncher
from zxsync.webhooks.intake import Intake
from zxsync.webhooks.settings import WebhookSettings, get_webhook_settings

log = logging.getLogger("zxsync.webhooks")


def _default_ledger() -> Ledger:
    from tasks import runtime

    return runtime.ledger()


def _default_zoho(org: str) -> Any:
    from tasks import runtime

    return runtime.zoho(org)


@dataclass
class WebhookServer:
    """The whole service; :meth:`start` returns once it accepts connections."""

    settings: WebhookSettings = field(default_factory=get_webhook_settings)
    launcher: Launcher | None = None
    ledger: Callable[[], Ledger] = _default_ledger
    zoho: Callable[[str], Any] = _default_zoho
    channels_enabled: bool = True

    def __post_init__(self) -> None:
        self.intake = Intake(self.ledger)
        self.dispatcher = Dispatcher(self.ledger, self.launcher or PrefectLauncher(),
                                     coalesce_seconds=self.settings.coalesce_seconds,
                                     max_ids_per_run=self.settings.max_ids_per_run,
                                     max_attempts=self.settings.max_attempts,
                                     min_run_interval=self.settings.min_run_interval_seconds)
        self.keeper = ChannelKeeper(self.ledger, self.zoho, self.settings)
        self.app = create_app(self.intake)
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self.url = ""

    def start(self) -> str:
        """Listen (port 0 = any free port), start the dispatcher and the keeper; returns the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        sock.listen(1024)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        web = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="webhooks-http",
                               daemon=True)
        web.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not web.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.02)
        holder = default_holder("webhooks")
        self._threads = [web, threading.Thread(target=self.dispatcher.run_forever, name="webhooks-dispatch",
                                               args=(self.stop_event, self.settings.poll_seconds, holder),
                                               daemon=True)]
        if self.channels_enabled:
            self._threads.append(threading.Thread(target=self.keeper.run_forever, args=(self.stop_event,),
                                                  name="webhooks-channels", daemon=True))
        for thread in self._threads[1:]:
            thread.start()
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish the current dispatcher pass, release the lease."""
        self.stop_event.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout)

    def serve_forever(self, say: Callable[[str], None] = print) -> None:
        """Foreground mode: start, report where, stop cleanly on Ctrl-C or SIGTERM."""
        url = self.start()
        say(f"webhooks listening on {url} (public address: {self.settings.public_url or 'not set'})")
        say(f"  Xero:    POST {url}/webhooks/xero/<key name>")
        say(f"  Zoho:    POST {url}/webhooks/zoho/<org>")
        say(f"  trigger: {url}/webhooks/trigger/<org>?module=&id=&exp=&sig=")
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        finally:
            self.stop()
