"""Per-process resources the tasks share: one ledger, one API client per (org, system).

A flow's tasks run on threads of one process; opening the ledger or a client per task would
waste connections and, for the clients, split the per-tenant rate limiter and token cache.
Everything is keyed by the settings in force, so tests that switch ``ZX_HOME`` get fresh ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from connectors.xero import XeroClient
from connectors.zoho import ZohoClient
from ledger import Ledger, LedgerCredentialStore, default_holder
from zxsync.settings import get_settings

_lock = threading.RLock()
_ledgers: dict[str, Ledger] = {}
_clients: dict[tuple[str, str, str], Any] = {}
#: Optional outer gate per (system, org), e.g. a Prefect global concurrency limit (set by tasks).
_gates: dict[tuple[str, str], Callable[[], AbstractContextManager[Any]]] = {}


def ledger() -> Ledger:
    """The ledger of the current settings (opened and migrated once per process)."""
    url = get_settings().resolved_database_url
    with _lock:
        if url not in _ledgers:
            _ledgers[url] = Ledger.open(url)
        return _ledgers[url]


def set_gate(system: str, org: str, gate: Callable[[], AbstractContextManager[Any]] | None) -> None:
    """Install (or remove) an outer per-call gate for one org's clients created from now on."""
    with _lock:
        if gate is None:
            _gates.pop((system, org), None)
        else:
            _gates[(system, org)] = gate
        _clients.pop((system, org, get_settings().resolved_database_url), None)


def xero(org: str) -> XeroClient:
    """The Xero client of ``org`` (shares the per-tenant limiter and token with every other)."""
    key = ("xero", org, get_settings().resolved_database_url)
    with _lock:
        if key not in _clients:
            _clients[key] = XeroClient(LedgerCredentialStore(ledger()), org, gate=_gates.get(("xero", org)))
        return _clients[key]


def zoho(org: str) -> ZohoClient:
    """The Zoho CRM client of ``org``."""
    key = ("zoho", org, get_settings().resolved_database_url)
    with _lock:
        if key not in _clients:
            _clients[key] = ZohoClient(LedgerCredentialStore(ledger()), org, gate=_gates.get(("zoho", org)))
        return _clients[key]


def reset() -> None:
    """Close everything (tests, and the CLI before it exits)."""
    with _lock:
        _clients.clear()
        for ledger_ in _ledgers.values():
            ledger_.close()
        _ledgers.clear()


# --- the org lock held for a whole run ------------------------------------------------------------
_leases: dict[str, Any] = {}


@contextmanager
def org_lock(org: str, run_id: str, *, wait: float | None = None) -> Iterator[Any]:
    """Hold ``org``'s lock for the run (renewed in the background); waits ``wait`` seconds for a
    run already holding it, then raises ``OrgBusy`` naming that run."""
    settings = get_settings()
    wait = settings.org_lock_wait_seconds if wait is None else wait
    ttl = settings.org_lock_ttl_seconds
    with ledger().org_lock(org, holder=f"run {run_id} ({default_holder('sync')})", timeout=wait, ttl=ttl,
                           renew_every=ttl / 4) as lease:
        _leases[org] = lease
        try:
            yield lease
        finally:
            _leases.pop(org, None)


def ensure_org_lock(org: str) -> None:
    """Before a write: make sure this process still holds the org's lock (raises ``LeaseLost``)."""
    lease = _leases.get(org)
    if lease is not None:
        lease.ensure()
