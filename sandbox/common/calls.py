"""Call statistics and the journal behind ``GET /_sandbox/stats`` and ``GET /_sandbox/journal``."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Counts:
    calls: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    writes: int = 0
    rate_limited: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "reads": self.reads, "writes": self.writes,
                "rate_limited": self.rate_limited}


class CallRecorder:
    """Counts every emulated call (by route template) and journals it with the keys it wrote.

    ``writes`` counts POST/PUT/PATCH/DELETE on emulated routes except token endpoints and
    read-only POSTs (the sandbox decides which those are); ``rate_limited`` counts 429 answers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._total = _Counts()
            self._by_tenant: dict[str, _Counts] = defaultdict(_Counts)
            self._journal: list[dict[str, Any]] = []
            self._seq = 0

    def record(self, *, method: str, route: str, path: str, status: int, tenant: str | None,
               is_write: bool, is_read: bool, time: str, idempotency_key: str | None,
               keys: list[Any] | None, started: float, finished: float,
               fault: str | None = None) -> int:
        """Record one finished call; returns its journal sequence number."""
        name = f"{method} {route}"
        with self._lock:
            targets = [self._total] + ([self._by_tenant[tenant]] if tenant else [])
            for counts in targets:
                counts.calls[name] += 1
                counts.writes += int(is_write)
                counts.reads += int(is_read)
                counts.rate_limited += int(status == 429)
            self._seq += 1
            self._journal.append({
                "seq": self._seq, "time": time, "method": method, "path": path, "status": status,
                "tenant": tenant, "idempotency_key": idempotency_key, "keys": keys or [],
                # Real timestamps (not virtual) so tests can check windows and overlap.
                "started": started, "finished": finished, "fault": fault,
            })
            return self._seq

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out = self._total.as_dict()
            out["by_tenant"] = {t: c.as_dict() for t, c in self._by_tenant.items()}
            return out

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            # seq is 1-based and dense, so slicing is exact.
            return list(self._journal[since:])
