"""Limits across processes: Prefect global concurrency limits per tenant behind the in-process limiter.

The connectors already keep Xero's per-tenant limits inside one process (a shared limiter per
tenant), and per-org deployments (``concurrency_limit: 1``) plus the ledger's org lock keep one
sync run per org at a time. When more than one process can still call one tenant (several
workers, a CLI run or a restore next to a scheduled run, two orgs on one Xero tenant), turn on
``ZX_PREFECT_LIMITS=true``: every call of the org's clients then first passes a gate made of
Prefect global concurrency limits (``strict``: a missing limit is an error, never a silent pass):

- ``xero-calls:<tenant>`` — a concurrency limit of ``ZX_XERO_CONCURRENCY`` (Xero: 5 in flight);
- ``xero-rate:<tenant>`` — a rate limit (slot decay) shaped by :func:`rate_shape` so that no
  window of ``ZX_XERO_WINDOW_SECONDS`` can see more than ``ZX_XERO_CALLS_PER_WINDOW`` calls;
- ``zoho-calls:<org id>`` — a concurrency limit of ``ZX_ZOHO_CONCURRENCY``.

Burst math: Prefect's rate limit is a token bucket of ``limit`` slots that decay at
``slot_decay_per_second``, so any window of T seconds admits at most ``limit + decay * T`` calls
(a naive ``limit = 60, decay = 1`` admits ~120 in the first minute). For N calls per W seconds
:func:`rate_shape` takes a small burst B (``min(concurrency, N // 4)``, at least 1), keeps a margin
M (``max(1, N // 20)``) for grants that reach Xero closer together than the server gave them, and
``decay = (N - M - B) / W``. Xero's 60 per minute becomes B = 5, decay = 0.866/s (57 per minute).
The server floors the decay and a denied attempt resets the decay clock without decaying
(``server/models/concurrency_limits_v2.py``): real throughput is lower than the bound, never higher.
The rate slot is taken last, right before the call, while the in-flight slot is held, so a grant
is used at once.

Cost, and why one acquisition per call rather than per batch: calls are already batches (<= 50
elements per write, up to 1,000 per read page), so a run makes tens of calls; and the in-flight
slot must be held per call anyway. Measured on the 2-vCPU test box (docs/operations.md): a gated
call costs ~0.3 s more than an ungated one (enter + rate + exit, each a server round trip), and
Prefect's client serialises one process's acquisitions of a limit, so one process gets ~1 gated
call per second there: Xero's steady budget (60 a minute), fine for syncs, a cost for big first
loads. Hence the setting is off by default: per-org deployments (``concurrency_limit: 1``) and the
ledger's org lock already keep one run per org, and the in-process limiter is then exact and
cheap. The in-process limiter stays in front of Xero either way, and 429 + Retry-After is still
handled by the HTTP client.

Limits are created when missing and never overwritten: operators may tune them in the UI's
Concurrency page (delete one to have it re-created from the settings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from tasks import runtime
from zxsync.settings import Settings, get_settings

#: How long one call may wait for its slots before it fails (a wedged holder's lease expires first).
ACQUIRE_TIMEOUT_SECONDS = 600.0
#: Lease of a held concurrency slot: renewed while the call runs, freed if its process dies.
LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class LimitSpec:
    """One Prefect global concurrency limit: a concurrency limit, or a rate limit when ``decay`` > 0."""

    name: str
    limit: int
    decay: float = 0.0


def rate_shape(calls_per_window: int, window_seconds: float, concurrency: int) -> tuple[int, float]:
    """(burst, slot decay per second) with ``burst + decay * window_seconds <= calls_per_window - margin``.

    The margin (``max(1, calls_per_window // 20)``) absorbs the time between the server granting a
    slot and the call reaching Xero, which differs between processes and can bunch grants together.
    """
    burst = max(1, min(concurrency, calls_per_window // 4))
    margin = max(1, calls_per_window // 20)
    decay = (calls_per_window - margin - burst) / window_seconds
    if decay <= 0:
        raise ValueError(
            f"{calls_per_window} calls per {window_seconds} s leaves no room for a decaying rate limit"
        )
    return burst, math.floor(decay * 1e6) / 1e6  # rounded down: never above the window's budget


def xero_limits(tenant_id: str, settings: Settings | None = None) -> tuple[LimitSpec, LimitSpec]:
    """The concurrency and rate limits of one Xero tenant, from the settings."""
    s = settings or get_settings()
    burst, decay = rate_shape(s.xero_calls_per_window, s.xero_window_seconds, s.xero_concurrency)
    return (
        LimitSpec(f"xero-calls:{tenant_id}", s.xero_concurrency),
        LimitSpec(f"xero-rate:{tenant_id}", burst, decay),
    )


def zoho_limits(org_id: str, settings: Settings | None = None) -> LimitSpec:
    """The concurrency limit of one Zoho CRM org."""
    s = settings or get_settings()
    return LimitSpec(f"zoho-calls:{org_id}", s.zoho_concurrency)


def ensure(specs: list[LimitSpec]) -> None:
    """Create the limits that do not exist yet (existing ones are left as operators tuned them)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        for spec in specs:
            try:
                client.read_global_concurrency_limit_by_name(spec.name)
                continue
            except ObjectNotFound:
                pass
            create: dict[str, Any] = {"name": spec.name, "limit": spec.limit}
            if spec.decay:
                create["slot_decay_per_second"] = spec.decay
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(**create))
            except ObjectAlreadyExists:  # another process created it first: same thing
                pass


def gate(concurrency_name: str, rate: LimitSpec | None = None) -> Callable[[], AbstractContextManager[None]]:
    """A per-call gate: one concurrency slot held for the call, then one rate slot (if any)."""
    from prefect.concurrency.sync import concurrency, rate_limit

    @contextmanager
    def passage() -> Iterator[None]:
        with concurrency(
            concurrency_name,
            occupy=1,
            timeout_seconds=ACQUIRE_TIMEOUT_SECONDS,
            lease_duration=LEASE_SECONDS,
            strict=True,
        ):
            # Rate last, right before the call: a grant used at once keeps the bucket's bound true at
            # Xero (waiting for it while holding an in-flight slot costs little: the rate is scarcer).
            if rate is not None:
                rate_limit(rate.name, occupy=1, timeout_seconds=ACQUIRE_TIMEOUT_SECONDS, strict=True)
            yield

    return passage


def install(org: str) -> list[str]:
    """Create ``org``'s tenant limits when missing and gate its Xero and Zoho clients with them.

    Returns the names of the limits in use.
    """
    store = runtime.ledger()
    specs: list[LimitSpec] = []
    gates: dict[str, Callable[[], AbstractContextManager[None]]] = {}
    try:
        xero = store.load_connection(org, "xero")
    except KeyError:  # not connected yet: its first call fails with the connector's own message
        xero = None
    if xero is not None:
        calls, rate = xero_limits(xero.tenant_id or org)
        specs += [calls, rate]
        gates["xero"] = gate(calls.name, rate)
    try:
        zoho = store.load_connection(org, "zoho")
    except KeyError:
        zoho = None
    if zoho is not None:
        zoho_calls = zoho_limits(zoho.tenant_id or org)
        specs.append(zoho_calls)
        gates["zoho"] = gate(zoho_calls.name)
    ensure(specs)
    for system, passage in gates.items():
        runtime.set_gate(system, org, passage)
    return [s.name for s in specs]


def use_prefect_limits(org: str) -> list[str]:
    """When ``ZX_PREFECT_LIMITS`` is on: :func:`install` for ``org`` (else nothing; returns [])."""
    if not get_settings().prefect_limits:
        return []
    return install(org)
