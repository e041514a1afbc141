"""Zoho CRM's API limits (zoho-api-notes.md §4): a rolling 24-hour credit pool per org, concurrency
per edition, and the sub-concurrency of 10 for "complex" calls.

Credits: list/get/metadata 1 per call, COQL 1/2/3 by its LIMIT band, writes 1 per 10 records rounded
up. A call is charged once it is authenticated and admitted (also when it ends in a 4xx); a call
refused with 429 costs nothing. ``X-API-CREDITS-REMAINING`` is sent once half the day's credits are
used. Concurrency counts calls in flight per org from arrival to the last byte of the answer, so an
injected ``slow`` fault holds its slot like a slow real call does.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from typing import Any

from pydantic import BaseModel, Field

DAY_SECONDS = 86400.0

#: Edition -> (base credits, credits per user, maximum, concurrency) (notes §4.1-4.2).
EDITIONS: dict[str, tuple[int, int, int | None, int]] = {
    "Free": (5000, 0, 5000, 5),
    "Standard": (50000, 250, 100000, 10),
    "Professional": (50000, 500, 3000000, 15),
    "Enterprise": (50000, 1000, 5000000, 20),
    "Ultimate": (50000, 2000, None, 25),
}
DEFAULT_EDITION = "Enterprise"
DEFAULT_USERS = 10
SUB_CONCURRENCY = 10


def edition_credits(edition: str, users: int) -> int:
    base, per_user, maximum, _ = EDITIONS[edition]
    total = base + per_user * users
    return min(total, maximum) if maximum is not None else total


class LimitSettings(BaseModel):
    """``PUT /_sandbox/limits`` body; partial bodies change only what they name. ``edition`` and
    ``users`` derive credits and concurrency unless those are given too."""

    edition: str = DEFAULT_EDITION
    users: int = Field(DEFAULT_USERS, ge=1)
    credits_per_day: int = Field(edition_credits(DEFAULT_EDITION, DEFAULT_USERS), ge=1)
    concurrency: int = Field(EDITIONS[DEFAULT_EDITION][3], ge=1)
    sub_concurrency: int = Field(SUB_CONCURRENCY, ge=1)


def write_cost(n_records: int) -> int:
    return max(1, math.ceil(n_records / 10))


def coql_cost(limit: int) -> int:
    if limit <= 200:
        return 1
    if limit <= 1000:
        return 2
    return 3


class Limits:
    """Credit pools and in-flight counters per org; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = LimitSettings()
        self._usage: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._used: dict[str, int] = defaultdict(int)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.heavy_in_flight: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        with self._lock:
            self.settings = LimitSettings()
            self._usage.clear()
            self._used.clear()

    def restore_defaults(self) -> None:
        with self._lock:
            self.settings = LimitSettings()

    def update(self, body: dict[str, Any]) -> LimitSettings:
        """Apply a partial ``PUT /_sandbox/limits`` body (validated; unknown keys rejected)."""
        unknown = set(body) - set(LimitSettings.model_fields)
        if unknown:
            raise ValueError(f"unknown limit(s): {sorted(unknown)}")
        with self._lock:
            merged = self.settings.model_dump()
            if "edition" in body or "users" in body:
                edition = body.get("edition", merged["edition"])
                if edition not in EDITIONS:
                    raise ValueError(f"edition must be one of {sorted(EDITIONS)}")
                users = int(body.get("users", merged["users"]))
                merged.update(edition=edition, users=users, credits_per_day=edition_credits(edition, users),
                              concurrency=EDITIONS[edition][3])
            merged.update({k: v for k, v in body.items() if k not in ("edition", "users")})
            self.settings = LimitSettings.model_validate(merged)
            return self.settings

    # --- credits ---------------------------------------------------------------------------------
    def _prune(self, org: str, now: float) -> None:
        usage = self._usage[org]
        while usage and usage[0][0] <= now - DAY_SECONDS:
            _, cost = usage.popleft()
            self._used[org] -= cost

    def used(self, org: str, now: float) -> int:
        with self._lock:
            self._prune(org, now)
            return self._used[org]

    def try_charge(self, org: str, cost: int, now: float) -> bool:
        """Take ``cost`` credits from the org's rolling 24-hour pool; False when it would overdraw."""
        with self._lock:
            self._prune(org, now)
            if self._used[org] + cost > self.settings.credits_per_day:
                return False
            self._usage[org].append((now, cost))
            self._used[org] += cost
            return True

    def remaining_header(self, org: str, now: float) -> dict[str, str]:
        """``X-API-CREDITS-REMAINING`` once at least half the day's credits are used."""
        with self._lock:
            self._prune(org, now)
            limit = self.settings.credits_per_day
            used = self._used[org]
        if used * 2 >= limit:
            return {"X-API-CREDITS-REMAINING": str(max(0, limit - used))}
        return {}

    # --- concurrency -----------------------------------------------------------------------------
    def enter(self, org: str, heavy: bool) -> str | None:
        """Admit a call in flight; returns why it is refused (``concurrency`` / ``sub_concurrency``)."""
        with self._lock:
            if self.in_flight[org] >= self.settings.concurrency:
                return "concurrency"
            if heavy and self.heavy_in_flight[org] >= self.settings.sub_concurrency:
                return "sub_concurrency"
            self.in_flight[org] += 1
            if heavy:
                self.heavy_in_flight[org] += 1
            return None

    def leave(self, org: str, heavy: bool) -> None:
        with self._lock:
            self.in_flight[org] -= 1
            if heavy:
                self.heavy_in_flight[org] -= 1

    def snapshot(self, orgs: list[str], now: float) -> dict[str, Any]:
        out = self.settings.model_dump()
        with self._lock:
            usage = {}
            for org in orgs:
                self._prune(org, now)
                usage[org] = {"credits_used": self._used[org],
                              "credits_remaining": max(0, self.settings.credits_per_day - self._used[org]),
                              "in_flight": self.in_flight[org], "heavy_in_flight": self.heavy_in_flight[org]}
        out["orgs"] = usage
        return out
