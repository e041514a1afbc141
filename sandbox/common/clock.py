"""A virtual clock: real time plus an offset that ``PUT /_sandbox/clock`` advances.

Token expiry, the idempotency window, rate windows and record timestamps all read this clock, so
tests can jump past a 30-minute token life or a 6-minute idempotency window without waiting.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class VirtualClock:
    """Wall-clock time shifted by an offset that only moves forward."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = offset_seconds
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def time(self) -> float:
        """Seconds since the epoch, virtual."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """The virtual time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back: expiries already granted must stay consistent)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._offset

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
