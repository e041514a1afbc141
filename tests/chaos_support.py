"""Helpers for the reliability tests (chaos, crash and Retry, token races, hostile input and
answers, ledger outage, secrets); holds no tests.

- :func:`chaos_size`: ``ZX_CHAOS=full`` (``make chaos``) picks the long version, anything else the
  reduced one CI runs inside ``make test`` — same code, smaller numbers.
- :func:`fault_rules`: a fault plan failing a given share of calls, spread evenly over the kinds.
- :func:`create_org`: a fresh Xero tenant and Zoho org in the running sandboxes (Zoho generated
  with ``n`` invoices, or empty), its org file in a tmp ``ZX_ORGS_DIR``, onboarded as a real org
  would be (connected, Xero_* fields created).
- :func:`check_accounting`: each entity's counts in a run's summary add up to the records it
  looked at, and the journal names every reject the summary counts.
- :class:`SecretWatch`: every client secret, refresh and access token issued, and where any of
  them shows in clear.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.e2e_support import Sandboxes, XeroReader, ZohoReader
from tests.oracle import Actual, Expected, Manifest, Report, XeroFacts, compare, expect, load_org_yaml

REPO = Path(__file__).resolve().parent.parent
FAULT_KINDS = ("429", "500", "503", "slow", "drop_before_commit", "drop_after_commit")
#: What a run's summary reports per entity (tasks/report.py) that is one record each.
OUTCOME_COLUMNS = ("created", "updated", "unchanged", "rejected", "deferred", "skipped", "linked", "deleted",
                   "voided", "locked")


# --- how big ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChaosSize:
    """The numbers of one flavour of the reliability suite."""

    name: str
    #: Invoices in the chaos org (plus n/5 accounts with a contact each and n/10 products).
    invoices: int
    #: Xero elements per request: smaller batches mean more calls, so more faults, per invoice.
    batch_size: int
    #: Kill points of the crash-and-Retry test.
    kill_points: int
    #: Invoices per org in the crash-and-Retry test.
    crash_invoices: int

    @property
    def full(self) -> bool:
        return self.name == "full"


def chaos_size() -> ChaosSize:
    """``ZX_CHAOS=full`` -> the long version; otherwise the reduced one CI runs."""
    if os.environ.get("ZX_CHAOS", "").strip().lower() == "full":
        return ChaosSize("full", invoices=2000, batch_size=50, kill_points=5, crash_invoices=200)
    return ChaosSize("reduced", invoices=250, batch_size=10, kill_points=2, crash_invoices=100)


# --- faults ----------------------------------------------------------------------------------------
def fault_rules(rate: float = 0.10, kinds: Iterable[str] = FAULT_KINDS, *, method: str = "*", path: str = "*",
                delay_seconds: float = 1.0, retry_after: int = 1) -> list[dict[str, Any]]:
    """Rules under which a share ``rate`` of matching calls fail, evenly spread over ``kinds``.

    The sandbox applies the first rule that fires, so each kind gets the probability ``p`` with
    ``1 - (1 - p) ** len(kinds) == rate``.
    """
    kinds = list(kinds)
    p = 1.0 - (1.0 - rate) ** (1.0 / len(kinds))
    return [{"method": method, "path": path, "kind": kind, "probability": p, "delay_seconds": delay_seconds,
             "retry_after": retry_after} for kind in kinds]


#: Where each kind is also injected once per run: Xero's invoice writes (a lost answer there is
#: what could duplicate an invoice) and any Zoho CRM call (a run makes few Zoho writes).
ONCE_EACH = {"xero": ("PUT", "/api.xro/2.0/Invoices"), "zoho": ("*", "/crm/v8/*")}


def chaos_plan(system: str, rate: float = 0.10, *, delay_seconds: float = 1.0) -> list[dict[str, Any]]:
    """``rate`` of all calls failing, evenly over :data:`FAULT_KINDS` — and, so that even a small
    run meets every kind, each kind once more on :data:`ONCE_EACH` (staggered, never back to back)."""
    method, path = ONCE_EACH[system]
    once = [{"method": method, "path": path, "kind": kind, "count": 1, "after": 2 * n,
             "delay_seconds": delay_seconds} for n, kind in enumerate(FAULT_KINDS)]
    return once + fault_rules(rate, delay_seconds=delay_seconds)


def call_count(url: str) -> int:
    """Emulated API calls a sandbox has answered (admin routes excluded)."""
    return sum(requests.get(f"{url}/_sandbox/stats", timeout=30).json()["calls"].values())


def set_faults(url: str, rules: list[dict[str, Any]], seed: int | None = None) -> None:
    body: dict[str, Any] = {"rules": rules}
    if seed is not None:
        body["seed"] = seed
    requests.put(f"{url}/_sandbox/faults", json=body, timeout=30).raise_for_status()


def clear_faults(url: str) -> dict[str, int]:
    """Remove every rule; returns how many faults of each kind were injected since the sandbox started."""
    injected = requests.get(f"{url}/_sandbox/faults", timeout=30).json().get("injected", {})
    requests.delete(f"{url}/_sandbox/faults", timeout=30).raise_for_status()
    return {str(k): int(v) for k, v in injected.items()}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Faults injected between two readings of :func:`injected`."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def injected(url: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in requests.get(f"{url}/_sandbox/faults", timeout=30).json()
            .get("injected", {}).items()}


def fast_limits(boxes: Sandboxes, monkeypatch: pytest.MonkeyPatch, *, window: float = 5.0) -> None:
    """Xero's 60 calls per minute shrunk to 60 per ``window`` seconds on both sides (the limiter
    stays binding; the tests just don't wait minutes), and short retry delays."""
    requests.put(f"{boxes.xero.url}/_sandbox/limits", json={"per_window": 60, "window_seconds": window},
                 timeout=30).raise_for_status()
    for name, value in {"ZX_XERO_WINDOW_SECONDS": str(window), "ZX_TASK_RETRY_DELAY_SECONDS": "0.5",
                        "ZX_HTTP_BACKOFF_BASE_SECONDS": "0.2", "ZX_HTTP_BACKOFF_MAX_SECONDS": "2"}.items():
        monkeypatch.setenv(name, value)
    _settings_changed()


def _settings_changed() -> None:
    from tasks import runtime
    from zxsync.settings import get_settings

    get_settings.cache_clear()
    runtime.reset()


# --- orgs ------------------------------------------------------------------------------------------
@dataclass
class SandboxOrg:
    """One organisation living in both sandboxes, with its org file."""

    slug: str
    name: str
    xero_tenant: str
    zoho_org: str
    org_file: Path
    boxes: Sandboxes

    def xero(self) -> XeroReader:
        return XeroReader(self.boxes.xero.url, self.xero_tenant)

    def zoho(self) -> ZohoReader:
        return ZohoReader(self.boxes.zoho.url, self.zoho_org)

    def org_yaml(self) -> dict[str, Any]:
        return load_org_yaml(self.org_file)


def use_orgs_dir(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp org registry for this test (``ZX_ORGS_DIR``)."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    _settings_changed()
    return folder


def write_org_file(folder: Path, slug: str, name: str, **overrides: Any) -> Path:
    """The demo org's mappings under another slug (the generated seeds share the demo's universe)."""
    data = yaml.safe_load((REPO / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
    data.update(slug=slug, name=name, **overrides)
    path = folder / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def create_org(boxes: Sandboxes, orgs_dir: Path, slug: str, *, invoices: int | None, name: str | None = None,
               onboard: bool = True, **overrides: Any) -> SandboxOrg:
    """A new Xero tenant (reference data only) and Zoho org (``invoices`` generated, None = empty),
    the org file, and the onboarding (connections in the ledger, Xero_* fields in Zoho)."""
    from zxsync.onboarding import onboard_sandbox_org

    name = name or f"{slug.title()} Ltd"
    xero = requests.post(f"{boxes.xero.url}/_sandbox/orgs", json={"name": name, "seed": "empty"}, timeout=120)
    zoho = requests.post(f"{boxes.zoho.url}/_sandbox/orgs",
                         json={"name": name, "seed": "empty" if invoices is None else str(invoices)}, timeout=300)
    xero.raise_for_status()
    zoho.raise_for_status()
    path = write_org_file(orgs_dir, slug, name, **overrides)
    org = SandboxOrg(slug=slug, name=name, xero_tenant=xero.json()["tenant_id"], zoho_org=zoho.json()["org_id"],
                     org_file=path, boxes=boxes)
    if onboard:
        onboard_sandbox_org(slug, xero_org=org.xero_tenant, zoho_org=org.zoho_org)
    return org


@dataclass
class Baseline:
    """The seed manifest and the expectations derived from it (taken before any sync)."""

    manifest: Manifest
    facts: XeroFacts
    expected: Expected


def baseline(org: SandboxOrg) -> Baseline:
    """Read the Zoho org as seeded and the Xero facts, and predict the converged state."""
    manifest = Manifest.read(org.zoho())
    facts = XeroFacts.read(org.xero())
    return Baseline(manifest=manifest, facts=facts, expected=expect(manifest, org.org_yaml(), facts))


def converged(org: SandboxOrg, base: Baseline) -> Report:
    """The oracle's verdict on both systems now."""
    return compare(base.expected, Actual.read(org.xero(), org.zoho()), base.manifest)


# --- the sync log ----------------------------------------------------------------------------------
def check_accounting(summary: dict[str, Any], *, org: str | None = None) -> list[str]:
    """Problems with a run's sync log: per entity, the outcome columns must add up to the records
    the run looked at; every reject counted must be named (record, rule, reason) in the journal."""
    from ledger import Ledger

    problems: list[str] = []
    for entity, row in summary.items():
        if not isinstance(row, dict) or "looked_at" not in row:
            continue
        told = sum(int(row.get(c, 0)) for c in OUTCOME_COLUMNS)
        if told != row["looked_at"]:
            problems.append(f"{entity}: looked at {row['looked_at']} record(s) but accounted for {told}: {row}")
    if not any(isinstance(r, dict) and "looked_at" in r for r in summary.values()):
        problems.append(f"the summary says nowhere how many records the run looked at: {summary}")
    with Ledger.open() as ledger:
        entries = ledger.journal_for(org or summary["org"], run_id=summary["run_id"])
    named = [j for j in entries if j.outcome in ("rejected", "deferred")]
    for j in named:
        if not (j.zoho_id or j.xero_id) or not j.rule or not j.message:
            problems.append(f"a reject without its record, rule or reason: {j}")
    rejected = sum(int(r.get("rejected", 0)) + int(r.get("deferred", 0)) for r in summary.values()
                   if isinstance(r, dict))
    distinct = {(j.entity, j.zoho_id or j.xero_id) for j in named}
    if rejected and len(distinct) < rejected:
        problems.append(f"{rejected} reject(s) counted but only {len(distinct)} named in the journal")
    return problems


# --- secrets ---------------------------------------------------------------------------------------
@dataclass
class SecretWatch:
    """Every secret the sandboxes issued and the ledger stored, gathered as the test goes (access
    tokens are pruned by the sandboxes once expired, so :meth:`collect` after each step)."""

    boxes: Sandboxes
    secrets: set[str] = field(default_factory=set)

    def collect(self, orgs: Iterable[str] = ()) -> set[str]:
        xero_store, zoho_store = self.boxes.xero.sandbox.store, self.boxes.zoho.sandbox.store
        with xero_store.lock:
            for kind in ("refresh", "access"):
                self.secrets |= set(xero_store.table("_xero", kind))
            self.secrets |= {c["client_secret"] for c in xero_store.table("_xero", "clients").values()}
        with zoho_store.lock:
            for kind in ("refresh", "access"):
                self.secrets |= set(zoho_store.table("_oauth", kind))
            self.secrets |= {c["client_secret"] for c in zoho_store.table("_oauth", "client").values()}
        try:
            from ledger import Ledger

            with Ledger.open() as ledger:
                for org in orgs:
                    for system in ("xero", "zoho"):
                        try:
                            conn = ledger.load_connection(org, system)
                        except KeyError:
                            continue
                        for secret in (conn.client_secret, conn.refresh_token, conn.access_token,
                                       conn.previous_refresh_token):
                            if secret is not None:
                                self.secrets.add(secret.get_secret_value())
        except Exception:  # noqa: BLE001 - a ledger that is down (outage test) has nothing new to tell
            pass
        self.secrets = {s for s in self.secrets if s and len(s) >= 12}
        return self.secrets

    def files_holding(self, *roots: Path) -> list[str]:
        """``path: first characters...`` for every file under ``roots`` holding a secret in clear."""
        needles = [s.encode() for s in self.secrets]
        hits: list[str] = []
        for root in roots:
            if not root.exists():
                continue
            for path in [root] if root.is_file() else root.rglob("*"):
                if not path.is_file():
                    continue
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                hits += [f"{path}: {n[:6].decode()}..." for n in needles if n in data]
        return hits

    def in_text(self, *texts: str) -> list[str]:
        everything = "\n".join(texts)
        return [s[:6] + "..." for s in self.secrets if s in everything]


def harness_database() -> Path | None:
    """The session's Prefect test database file (logs, states, artifacts of in-process runs)."""
    from prefect.settings import get_current_settings

    url = str(get_current_settings().server.database.connection_url.get_secret_value()
              if hasattr(get_current_settings().server.database.connection_url, "get_secret_value")
              else get_current_settings().server.database.connection_url)
    if "sqlite" not in url:
        return None
    return Path(url.split(":///", 1)[-1])


def sqlite_dump(path: Path) -> str:
    """Every text value of a SQLite database (WAL content included), for a secret search."""
    if not path.exists():
        return ""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        parts: list[str] = []
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                parts += [v if isinstance(v, str) else v.decode("utf-8", "replace") for v in row
                          if isinstance(v, str | bytes)]
        return "\n".join(parts)
    finally:
        connection.close()


@contextmanager
def results_in(folder: Path) -> Iterator[Path]:
    """Persisted task and flow results of in-process runs go to ``folder`` (to be searched)."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    folder.mkdir(parents=True, exist_ok=True)
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(folder)}):
        yield folder


def looked_at_columns(summary: dict[str, Any]) -> dict[str, int]:
    return {e: int(r["looked_at"]) for e, r in summary.items() if isinstance(r, dict) and "looked_at" in r}


def report_rows(request: pytest.FixtureRequest, title: str, rows: list[dict[str, Any]]) -> None:
    """Print a scenario's rows as a table (shown even when pytest captures output) and append them
    to ``ZX_CHAOS_REPORT`` for ``python -m benchmarks.chaos``."""
    from benchmarks.chaos import format_table, record_row

    for row in rows:
        record_row(row)
    text = f"\n{title} ({chaos_size().name})\n{format_table(rows)}\n"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        print(text, flush=True)


# --- writing into the Zoho sandbox -----------------------------------------------------------------
def zoho_insert(zoho: ZohoReader, module: str, record: dict[str, Any]) -> str:
    """Insert one record through Zoho's API (as a CRM user would); returns its id."""
    answer = requests.post(f"{zoho.base}/crm/v8/{module}", json={"data": [record], "trigger": []},
                           headers=zoho.headers, timeout=60)
    body = answer.json() if answer.content else {}
    row = (body.get("data") or [{}])[0]
    if answer.status_code >= 400 or row.get("status") != "success":
        raise AssertionError(f"Zoho refused the {module} record {record!r}: {answer.status_code} {body}")
    return str(row["details"]["id"])


def legacy_edit(org: SandboxOrg, module: str, record_id: str, edit: Any) -> None:
    """Change a stored Zoho record behind the API (data from before a validation rule, or an
    import): ``edit(record)`` mutates it; inventory totals are recomputed as Zoho computes them."""
    from sandbox.zoho.records import compute_totals
    from sandbox.zoho.schema import INVENTORY

    sandbox = org.boxes.zoho.sandbox
    with sandbox.store.lock:
        zorg = sandbox.org(org.zoho_org)
        record = zorg.get(module, record_id)
        assert record is not None, (module, record_id)
        edit(record)
        if module in INVENTORY:
            compute_totals(zorg, module, record)
        zorg.touch(module, record_id)
        sandbox.store.flush()
