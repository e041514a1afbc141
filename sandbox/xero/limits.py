"""Xero's rate limits: per tenant 5 in flight, 60 per minute, 5,000 per day; 10,000 per minute per app.

Calls are counted at arrival on the virtual clock; a call answered 429 is not counted. Windows
are rolling (the strictest reading of "a fixed window which resets at different times for each
tenant": a client that never trips a rolling window never trips any fixed one). Retry-After is the
whole seconds until the oldest counted call leaves the window. Sources: xero-api-notes.md §3.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

DAY_SECONDS = 86400.0


class LimitSettings(BaseModel):
    """The body of ``PUT /_sandbox/limits`` (partial bodies allowed)."""

    per_window: int = Field(60, ge=1)
    window_seconds: float = Field(60.0, gt=0)
    concurrent: int = Field(5, ge=1)
    per_day: int = Field(5000, ge=1)
    app_per_window: int = Field(10000, ge=1)


@dataclass
class Verdict:
    """What the limiter decided for one call."""

    allowed: bool
    problem: str | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    """Counts calls per tenant and per app; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = LimitSettings()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._minute: dict[str, deque[float]] = defaultdict(deque)
            self._day: dict[str, deque[float]] = defaultdict(deque)
            self._app: dict[str, deque[float]] = defaultdict(deque)
            self._in_flight: dict[str, int] = defaultdict(int)

    def configure(self, changes: dict[str, object]) -> LimitSettings:
        with self._lock:
            self.settings = LimitSettings.model_validate({**self.settings.model_dump(), **changes})
            return self.settings

    def restore_defaults(self) -> LimitSettings:
        with self._lock:
            self.settings = LimitSettings()
            return self.settings

    @staticmethod
    def _expire(q: deque[float], now: float, window: float) -> None:
        horizon = now - window
        while q and q[0] <= horizon:
            q.popleft()

    @staticmethod
    def _wait(q: deque[float], now: float, window: float) -> int:
        return max(1, math.ceil(q[0] + window - now)) if q else 1

    def admit(self, client_id: str, tenant: str | None, now: float) -> Verdict:
        """Count one arriving call (tenant None: only the app limit, e.g. ``/connections``)."""
        s = self.settings
        with self._lock:
            app = self._app[client_id]
            self._expire(app, now, s.window_seconds)
            if tenant is None:
                if len(app) >= s.app_per_window:
                    return Verdict(False, "appminute", self._wait(app, now, s.window_seconds),
                                   {"X-AppMinLimit-Remaining": "0"})
                app.append(now)
                return Verdict(True, headers={"X-AppMinLimit-Remaining": str(s.app_per_window - len(app))})
            minute, day = self._minute[tenant], self._day[tenant]
            self._expire(minute, now, s.window_seconds)
            self._expire(day, now, DAY_SECONDS)
            headers = {"X-DayLimit-Remaining": str(max(0, s.per_day - len(day))),
                       "X-MinLimit-Remaining": str(max(0, s.per_window - len(minute))),
                       "X-AppMinLimit-Remaining": str(max(0, s.app_per_window - len(app)))}
            if len(day) >= s.per_day:
                return Verdict(False, "day", self._wait(day, now, DAY_SECONDS), headers)
            if len(minute) >= s.per_window:
                return Verdict(False, "minute", self._wait(minute, now, s.window_seconds), headers)
            if len(app) >= s.app_per_window:
                return Verdict(False, "appminute", self._wait(app, now, s.window_seconds), headers)
            if self._in_flight[tenant] >= s.concurrent:
                # Xero sends Retry-After only for the minute/day windows (notes §3); nothing to wait out here.
                return Verdict(False, "concurrent", None, headers)
            minute.append(now)
            day.append(now)
            app.append(now)
            self._in_flight[tenant] += 1
            headers = {"X-DayLimit-Remaining": str(s.per_day - len(day)),
                       "X-MinLimit-Remaining": str(s.per_window - len(minute)),
                       "X-AppMinLimit-Remaining": str(s.app_per_window - len(app))}
            return Verdict(True, headers=headers)

    def release(self, tenant: str) -> None:
        """The call's answer is complete: it no longer counts as in flight."""
        with self._lock:
            self._in_flight[tenant] = max(0, self._in_flight[tenant] - 1)

    def in_flight_by_tenant(self) -> dict[str, int]:
        """Calls answered-but-not-finished per tenant (``GET /_sandbox/limits``)."""
        with self._lock:
            return {t: n for t, n in self._in_flight.items() if n}

    def in_flight(self, tenant: str) -> int:
        with self._lock:
            return self._in_flight[tenant]
