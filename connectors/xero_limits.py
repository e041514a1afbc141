"""Xero's per-tenant limits, kept by one limiter per tenant that every client in the process shares.

Xero allows per tenant 5 calls in progress, 60 calls per minute and 5,000 per day, and reports
what is left on every tenant call (``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``,
``X-AppMinLimit-Remaining``). :class:`XeroTenantLimiter` is the shared rolling-window limiter
(so a long load never sees a 429) plus:

- the day's budget, read from ``X-DayLimit-Remaining``: a call that would take the tenant below a
  small reserve is refused with :class:`BudgetExhausted` before it is sent;
- calls made by someone else on the same tenant (another process, another app instance): when
  ``X-MinLimit-Remaining`` shows more calls in Xero's minute than ours, the difference is booked
  into our window so we slow down instead of running into a 429.

Limiters live in a module-level registry keyed by tenant and limits, so every ``XeroClient`` of
a tenant in this process shares one (two clients with private limiters would each allow 5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.errors import BudgetExhausted
from connectors.http import Clock, RollingWindowLimiter

DAY_HEADER = "X-DayLimit-Remaining"
MINUTE_HEADER = "X-MinLimit-Remaining"
APP_MINUTE_HEADER = "X-AppMinLimit-Remaining"
PROBLEM_HEADER = "X-Rate-Limit-Problem"
#: A day's remaining count older than this no longer blocks a single probing call.
DAY_STALE_SECONDS = 900.0


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header, or None when absent or unreadable."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def default_day_reserve(daily_budget: int) -> int:
    """Calls kept back at the end of the day's budget (for a reconcile or an operator's look)."""
    return max(5, daily_budget // 100)


class XeroTenantLimiter(RollingWindowLimiter):
    """Window + concurrency (from :class:`RollingWindowLimiter`), the day's budget and foreign calls."""

    def __init__(self, tenant_id: str, calls_per_window: int, window_seconds: float, concurrency: int, *,
                 daily_budget: int, day_reserve: int | None = None, clock: Clock = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(calls_per_window, window_seconds, concurrency, clock=clock, sleep=sleep)
        self.tenant_id = tenant_id
        self.daily_budget = daily_budget
        self.day_reserve = default_day_reserve(daily_budget) if day_reserve is None else day_reserve
        self._budget_lock = threading.Lock()
        #: What Xero said is left today (None until a tenant call answered).
        self.day_remaining: int | None = None
        self.minute_remaining: int | None = None
        self.app_minute_remaining: int | None = None
        #: Calls sent (or about to be) whose answer has not been read yet.
        self._pending = 0
        #: Calls this process made for the tenant (used before Xero first reports the day's budget).
        self.calls_sent = 0
        #: Calls by others that ``X-MinLimit-Remaining`` revealed and we booked into our window.
        self.foreign_calls = 0
        self._day_observed_at: float | None = None
        #: After a 429 for the day: no call before this time.
        self._day_blocked_until = 0.0
        #: Whether a first call has gone alone and been answered (see :meth:`slot`).
        self._probed = False
        self._probe_lock = threading.Lock()

    # --- the day's budget --------------------------------------------------------------------
    def _left_today(self) -> int:
        now = self._clock()
        if now < self._day_blocked_until:
            return 0
        if self.day_remaining is not None:
            assert self._day_observed_at is not None
            probe_after = max(self._day_observed_at + DAY_STALE_SECONDS, self._day_blocked_until)
            if now >= probe_after and self._pending == 0 and self.day_remaining - 1 < self.day_reserve:
                # Xero's day may have reset since we last heard: let one call probe it.
                return self.day_reserve + 1
            return self.day_remaining - self._pending
        return self.daily_budget - self.calls_sent - self._pending

    def _exhausted(self, left: int) -> BudgetExhausted:
        return BudgetExhausted(
            "xero", f"the day's API budget for tenant {self.tenant_id} is spent: {max(left, 0)} calls left, "
            f"{self.day_reserve} kept in reserve; the sync stops here and can resume when Xero's daily "
            f"limit resets")

    def check_budget(self) -> None:
        """Raise :class:`BudgetExhausted` when one more call would go below the reserve."""
        with self._budget_lock:
            left = self._left_today()
        if left - 1 < self.day_reserve:
            raise self._exhausted(left)

    def day_spent(self, retry_after: float | None) -> None:
        """Xero said the day's limit is hit (429 with X-Rate-Limit-Problem: day)."""
        with self._budget_lock:
            now = self._clock()
            self.day_remaining = 0
            self._day_blocked_until = now + (retry_after if retry_after is not None else 3600.0)
            # No probe before the block ends (the stale rule would otherwise allow one earlier).
            self._day_observed_at = self._day_blocked_until - DAY_STALE_SECONDS

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A window/concurrency slot for one call, refused when the day's budget is spent.

        A fresh limiter (a new process) knows nothing of the calls a previous process made in
        Xero's current minute: its first call goes alone, and the others wait for its answer's
        ``X-MinLimit-Remaining`` to be booked (a burst of 5 could otherwise meet a 429).
        """
        if not self._probed:
            with self._probe_lock:
                if not self._probed:
                    try:
                        with self._counted_slot():
                            yield
                    finally:
                        self._probed = True
                    return
        with self._counted_slot():
            yield

    @contextmanager
    def _counted_slot(self) -> Iterator[None]:
        with super().slot():
            # Checked once the slot is ours: answers that arrived while we waited are counted.
            with self._budget_lock:
                left = self._left_today()
                if left - 1 < self.day_reserve:
                    raise self._exhausted(left)
                self._pending += 1
                self.calls_sent += 1
            try:
                yield
            finally:
                with self._budget_lock:
                    self._pending -= 1

    # --- what the headers say ----------------------------------------------------------------
    def observe(self, headers: Mapping[str, str], *, book_foreign: bool = True) -> None:
        """Read Xero's remaining-call headers from one answer of this tenant."""
        day = header_int(headers, DAY_HEADER)
        minute = header_int(headers, MINUTE_HEADER)
        app_minute = header_int(headers, APP_MINUTE_HEADER)
        with self._budget_lock:
            if day is not None:
                self.day_remaining = day
                self._day_observed_at = self._clock()
            if minute is not None:
                self.minute_remaining = minute
            if app_minute is not None:
                self.app_minute_remaining = app_minute
        if minute is not None and book_foreign:
            self._book_foreign_calls(minute)

    def _book_foreign_calls(self, minute_remaining: int) -> None:
        # Xero has counted (limit - remaining) calls in its minute. Ours are all in our window (a
        # call stays there until window_seconds after its answer, longer than Xero counts it), so
        # any excess was made by someone else: book it so that our pace accounts for it.
        with self._cond:
            now = self._clock()
            self._expire(now)
            ours = self._in_flight + len(self._finished)
            excess = (self.calls_per_window - minute_remaining) - ours
            if excess > 0:
                self._finished.extend([now] * excess)
                self.foreign_calls += excess

    def in_window(self) -> int:
        """Calls (ours and booked foreign ones) currently counted in the rolling window."""
        with self._cond:
            self._expire(self._clock())
            return self._in_flight + len(self._finished)


@dataclass(frozen=True)
class LimitKey:
    tenant_id: str
    calls_per_window: int
    window_seconds: float
    concurrency: int
    daily_budget: int
    day_reserve: int | None


_registry: dict[LimitKey, XeroTenantLimiter] = {}
_registry_lock = threading.Lock()


def tenant_limiter(tenant_id: str, *, calls_per_window: int, window_seconds: float, concurrency: int,
                   daily_budget: int, day_reserve: int | None = None) -> XeroTenantLimiter:
    """The process-wide limiter of ``tenant_id`` for these limits (created on first use)."""
    key = LimitKey(tenant_id, calls_per_window, window_seconds, concurrency, daily_budget, day_reserve)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = XeroTenantLimiter(tenant_id, calls_per_window, window_seconds, concurrency,
                                        daily_budget=daily_budget, day_reserve=day_reserve)
            _registry[key] = limiter
        return limiter


def forget_limiters() -> None:
    """Drop every shared limiter (tests that reset a sandbox's counters start afresh)."""
    with _registry_lock:
        _registry.clear()
