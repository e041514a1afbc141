"""Outbound callbacks (Xero webhooks, Zoho notifications): posted in order on a background thread,
so the API call that caused them is never slowed, and retried with growing pauses until accepted
or until the sandbox gives up on them.

Ordering is strict: a delivery that keeps failing holds back the ones queued after it (Xero
replays events in order once a webhook recovers).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Delivery:
    """One POST: where, the exact bytes, the headers, and a label for the log."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    queued_at: float = field(default_factory=time.time)
    attempts: int = 0


@dataclass
class RetryPolicy:
    """Pauses between attempts double from ``initial`` up to ``maximum``; after ``give_up_after``
    seconds of failures the delivery is handed to ``on_give_up`` and dropped. ``timeout`` is how
    long a receiver may take to answer (Xero: 5 seconds)."""

    initial: float = 0.5
    maximum: float = 60.0
    give_up_after: float = 86400.0
    timeout: float = 5.0

    def pause(self, attempt: int) -> float:
        return min(self.maximum, self.initial * (2 ** max(0, attempt - 1)))


Accept = Callable[[requests.Response], bool]


class Deliverer:
    """A queue of deliveries and the daemon thread that posts them."""

    def __init__(self, name: str, *, policy: RetryPolicy | None = None, accept: Accept | None = None,
                 on_give_up: Callable[[Delivery], None] | None = None, log_size: int = 500) -> None:
        self.name = name
        self.policy = policy or RetryPolicy()
        self.accept: Accept = accept or (lambda r: 200 <= r.status_code < 300)
        self.on_give_up = on_give_up
        self._queue: deque[Delivery] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._paused = False
        self._session = requests.Session()
        #: The latest attempts: ``{time, url, label, status, ok, error, attempt}``.
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.delivered = 0
        self.failed_attempts = 0
        self.given_up = 0

    # --- control ---------------------------------------------------------------------------------
    def submit(self, delivery: Delivery) -> None:
        with self._cond:
            self._queue.append(delivery)
            self._ensure_thread()
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def pause(self, paused: bool = True) -> None:
        """Hold deliveries (they stay queued) until resumed."""
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop everything queued and forget the counters."""
        with self._cond:
            self._queue.clear()
            self.log.clear()
            self.delivered = self.failed_attempts = self.given_up = 0
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued (tests, admin ``?wait``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue or self._paused:
                    return not self._queue
            time.sleep(0.02)
        return False

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-delivery", daemon=True)
            self._thread.start()

    # --- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._queue or self._paused):
                    self._cond.wait(1.0)
                if self._stop:
                    return
                delivery = self._queue[0]
            ok = self._attempt(delivery)
            with self._cond:
                if ok:
                    if self._queue and self._queue[0] is delivery:
                        self._queue.popleft()
                    self.delivered += 1
                    continue
                if time.time() - delivery.queued_at >= self.policy.give_up_after:
                    if self._queue and self._queue[0] is delivery:
                        self._queue.popleft()
                    self.given_up += 1
                    give_up = self.on_give_up
                else:
                    give_up = None
                    # Wait out the pause (a stop, a clear or a pause ends the wait early).
                    self._cond.wait(self.policy.pause(delivery.attempts))
            if give_up is not None:
                give_up(delivery)

    def _attempt(self, delivery: Delivery) -> bool:
        delivery.attempts += 1
        entry: dict[str, Any] = {"time": time.time(), "url": delivery.url, "label": delivery.label,
                                 "attempt": delivery.attempts, "status": None, "ok": False, "error": None,
                                 **delivery.meta}
        try:
            response = self._session.post(delivery.url, data=delivery.body, headers=delivery.headers,
                                          timeout=self.policy.timeout)
            entry["status"] = response.status_code
            entry["ok"] = self.accept(response)
        except requests.RequestException as exc:
            entry["error"] = type(exc).__name__
        self.log.append(entry)
        if not entry["ok"]:
            self.failed_attempts += 1
        return bool(entry["ok"])

    def post_now(self, url: str, body: bytes, headers: dict[str, str]) -> requests.Response | None:
        """One synchronous POST outside the queue (Xero's intent-to-receive probes); None when the
        receiver could not be reached or took longer than the policy's timeout."""
        try:
            return self._session.post(url, data=body, headers=headers, timeout=self.policy.timeout)
        except requests.RequestException:
            return None
