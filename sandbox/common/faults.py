"""Fault injection: ``PUT /_sandbox/faults {"rules": [...]}``.

A rule matches a method (or ``*``) and an emulated path (exact, ``*`` for any, or a prefix ending
in ``*``); it fires for ``count`` matching calls or with a ``probability``, after skipping the
first ``after`` matches. Kinds: 429, 500, 503, slow (delay, then process), drop_before_commit,
drop_after_commit, and slow_after_commit (commit, then hold the answer back: the window in which
a client process can die after the server committed and before it heard so).

Hostile answers, as proxies and overloaded gateways produce them: html_502 (a gateway's HTML
error page; the request never reached the API), and, after the request was processed and
committed, truncated (the JSON cut in half, status and length consistent), wrong_type (the
real body labelled ``text/html``) and empty_200 (status 200, no body).
"""

from __future__ import annotations

import random
import threading
from typing import Literal

from pydantic import BaseModel, Field, model_validator

FaultKind = Literal["429", "500", "503", "slow", "drop_before_commit", "drop_after_commit", "slow_after_commit",
                    "html_502", "truncated", "wrong_type", "empty_200"]
#: Kinds that answer after the request was processed and committed, with a body the client cannot read.
GARBLED_AFTER_COMMIT = frozenset({"truncated", "wrong_type", "empty_200"})


class Fault(BaseModel):
    """One fault rule, as sent by tests."""

    method: str = "*"
    path: str = "*"
    kind: FaultKind
    count: int | None = Field(default=None, ge=0)
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    after: int = Field(default=0, ge=0)
    #: How long a ``slow`` fault delays the response.
    delay_seconds: float = Field(default=2.0, ge=0.0, le=120.0)
    #: Retry-After sent with an injected 429.
    retry_after: int = Field(default=1, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _kind_as_text(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("kind"), int):
            data = {**data, "kind": str(data["kind"])}
        return data

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if self.path == "*":
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


class _RuleState:
    def __init__(self, rule: Fault) -> None:
        self.rule = rule
        self.seen = 0
        self.fired = 0


class FaultPlan:
    """The active rules; thread-safe; deterministic under a seed."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[_RuleState] = []
        self._random = random.Random(seed)
        self.injected: dict[str, int] = {}

    def set(self, rules: list[Fault], seed: int | None = None) -> None:
        with self._lock:
            self._rules = [_RuleState(r) for r in rules]
            if seed is not None:
                self._random.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> list[Fault]:
        with self._lock:
            return [s.rule for s in self._rules]

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this call, if any (first matching rule that fires)."""
        with self._lock:
            for state in self._rules:
                rule = state.rule
                if not rule.matches(method, path):
                    continue
                state.seen += 1
                if state.seen <= rule.after:
                    continue
                if rule.count is not None and state.fired >= rule.count:
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                if rule.count is None and rule.probability is None:
                    pass  # no bound: fires on every match until cleared
                state.fired += 1
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                return rule
        return None
