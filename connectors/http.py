"""What both HTTP clients share: a call-rate limiter, backoff, and one retry loop.

The limiter is per tenant (Xero) or per org (Zoho) and is the reason we never see a 429 in a
long load: at most ``concurrency`` calls in flight and at most ``calls_per_window`` calls in any
rolling window. A call occupies the window from the moment it is sent until ``window_seconds``
after its answer arrived; the server counts it somewhere in between, so no server window, fixed
or rolling, can ever see more than the limit (the price is one round-trip per window, ~1 %).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.errors import (
    ApiError,
    BadResponseError,
    RateLimitError,
    ServerError,
    TransportError,
)

Clock = Callable[[], float]


class RollingWindowLimiter:
    """At most ``concurrency`` calls in flight and ``calls_per_window`` per rolling window."""

    def __init__(self, calls_per_window: int, window_seconds: float, concurrency: int,
                 clock: Clock = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if calls_per_window < 1 or concurrency < 1 or window_seconds <= 0:
            raise ValueError("limits must be positive")
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        #: Answer times of finished calls still inside the window, oldest first.
        self._finished: deque[float] = deque()
        #: A 429's Retry-After pauses everyone until this time.
        self._paused_until = 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._finished and self._finished[0] <= horizon:
            self._finished.popleft()

    def _wait_time(self, now: float) -> float:
        """Seconds until one more call may start (0 = now)."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._in_flight >= self.concurrency:
            return -1.0  # wait for a release
        self._expire(now)
        if self._in_flight + len(self._finished) < self.calls_per_window:
            return 0.0
        if not self._finished:
            return -1.0  # the window is full of calls still in flight
        return self._finished[0] + self.window_seconds - now

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one call's place: blocks until the call may be sent; frees it when the answer is in."""
        with self._cond:
            while True:
                wait = self._wait_time(self._clock())
                if wait == 0.0:
                    break
                self._cond.wait(timeout=None if wait < 0 else max(wait, 0.001))
            self._in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._finished.append(self._clock())
                self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` (a 429 told us to)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._cond.notify_all()


class ConcurrencyLimiter:
    """Only a cap on calls in flight (Zoho CRM limits concurrency, not rate)."""

    def __init__(self, concurrency: int) -> None:
        self._sem = threading.BoundedSemaphore(concurrency)
        self.concurrency = concurrency

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._sem:
            yield


@dataclass
class RetryPolicy:
    """How often and how long to retry retryable failures."""

    max_retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt 1 -> up to base seconds)."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def parse_json(system: str, response: requests.Response) -> Any:
    """The JSON body, or :class:`BadResponseError` for an HTML page, a truncated or empty body."""
    content_type = response.headers.get("Content-Type", "")
    if not response.content:
        raise BadResponseError(system, "empty response body", status=response.status_code,
                               method=response.request.method, url=response.url)
    if "json" not in content_type.lower():
        snippet = response.text[:200].strip().replace("\n", " ")
        raise BadResponseError(system, f"expected JSON, got {content_type or 'no content type'}: {snippet}",
                               status=response.status_code, method=response.request.method, url=response.url)
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError) as exc:
        raise BadResponseError(system, f"unreadable JSON ({exc})", status=response.status_code,
                               method=response.request.method, url=response.url) from exc


@dataclass
class Answer:
    """A successful answer: status, headers and the parsed JSON body (None for 204/304/no body)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    response: requests.Response


class HttpClient:
    """One ``requests.Session`` with one retry loop; subclasses turn answers into typed errors."""

    system = "http"

    def __init__(self, *, timeout: float = 60.0, retry: RetryPolicy | None = None,
                 session: requests.Session | None = None,
                 gate: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        #: An extra, outer gate per call (e.g. a Prefect global concurrency limit when several
        #: processes share one tenant); injected by the caller so connectors stay Prefect-free.
        self.gate = gate

    # --- hooks --------------------------------------------------------------------------------
    def error_for(self, response: requests.Response) -> ApiError:
        """Turn a non-2xx answer into a typed error (subclasses parse the API's envelope)."""
        if response.status_code == 429:
            return RateLimitError(self.system, "rate limited", status=429,
                                  retry_after=retry_after_seconds(response.headers))
        if response.status_code >= 500:
            return ServerError(self.system, response.reason or "server error", status=response.status_code)
        return ApiError(self.system, response.reason or "request failed", status=response.status_code)

    def on_rate_limited(self, error: RateLimitError, limiter: Any) -> float:
        """How long to wait before retrying a 429 (and pause the limiter for everyone)."""
        wait = error.retry_after if error.retry_after is not None else self.retry.backoff(1)
        if hasattr(limiter, "pause"):
            limiter.pause(wait)
        return wait

    def observe(self, response: requests.Response) -> None:
        """See every answer (budget headers and the like)."""

    # --- the loop -----------------------------------------------------------------------------
    def send(self, method: str, url: str, *, limiter: Any = None, idempotent: bool,
             params: Mapping[str, Any] | None = None, json_body: Any = None,
             data: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
             auth: Any = None, before_attempt: Callable[[int], Mapping[str, str]] | None = None,
             expect_json: bool = True) -> Answer:
        """Send with retries: 429 after Retry-After, 5xx and unreadable answers with backoff, and
        transport failures and unreadable answers only when the call is idempotent (a read, or a
        write with an Idempotency-Key). Returns the 2xx/3xx :class:`Answer` with its JSON parsed;
        raises a typed :class:`ApiError` otherwise.

        ``before_attempt(attempt)`` may return extra headers per attempt (fresh auth, keys).
        """
        attempt = 0
        while True:
            attempt += 1
            extra = dict(before_attempt(attempt)) if before_attempt else {}
            all_headers = {**(headers or {}), **extra}
            gate = self.gate() if self.gate else nullcontext()
            slot = limiter.slot() if limiter is not None else nullcontext()
            error: ApiError
            try:
                with gate, slot:
                    response = self.session.request(method, url, params=params, json=json_body, data=data,
                                                    headers=all_headers, auth=auth, timeout=self.timeout)
                    # Read the whole body inside the slot: a broken read is part of the call.
                    _ = response.content
                    # And what the answer says of the limits, before the next call may go.
                    self.observe(response)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                error = TransportError(self.system, f"{type(exc).__name__}: {exc}", method=method, url=url)
            else:
                if response.status_code < 400:
                    try:
                        body = (parse_json(self.system, response)
                                if expect_json and response.status_code not in (204, 304) else None)
                    except BadResponseError as exc:
                        error = exc
                    else:
                        return Answer(response.status_code, response.headers, body, response)
                else:
                    error = self.error_for(response)
                    error.method, error.url = method, url
            if not error.retryable or attempt > self.retry.max_retries:
                raise error
            if error.outcome_unknown and not idempotent:
                raise error
            if isinstance(error, RateLimitError):
                wait = self.on_rate_limited(error, limiter)
            else:
                wait = self.retry.backoff(attempt)
            self.retry.sleep(wait)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form; HTTP-date form is not used by Xero or Zoho)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
