"""The benchmarks' stack: both sandboxes and a Prefect server as child processes, orgs generated
through ``POST /_sandbox/orgs``, and syncs run as ``zxsync sync ORG --json`` child processes whose
calls, CPU time, peak RSS and Prefect task runs are measured from outside.

Everything lives in one temporary folder (``ZX_HOME``, the org registry, the sandboxes' state,
Prefect's home). The sandboxes run in their own process so the sync process's RSS and CPU are its
own. Calls are counted by the sandboxes (``/_sandbox/stats`` per tenant, before and after a run):
deterministic, unlike the wall and CPU times on a shared machine.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent
ZXSYNC = str(Path(sys.executable).with_name("zxsync"))
#: Limits far above anything a run uses: the "relaxed" runs measure calls and work, not waiting.
RELAXED_XERO = {"per_window": 1_000_000, "window_seconds": 60, "concurrent": 5, "per_day": 10_000_000,
                "app_per_window": 10_000_000}
RELAXED_ZOHO = {"credits_per_day": 100_000_000, "concurrency": 25, "sub_concurrency": 25}
RELAXED_ENV = {"ZX_XERO_CALLS_PER_WINDOW": "1000000", "ZX_XERO_WINDOW_SECONDS": "60",
               "ZX_XERO_DAILY_BUDGET": "10000000", "ZX_XERO_CONCURRENCY": "5"}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in load]}


def admin(url: str, method: str, path: str, body: Any = None, timeout: float = 600, **params: Any) -> Any:
    """A sandbox admin call (``/_sandbox/...``)."""
    answer = requests.request(method, f"{url}/_sandbox/{path}", json=body, params=params or None, timeout=timeout)
    answer.raise_for_status()
    return answer.json() if answer.content else None


# --- call counts ---------------------------------------------------------------------------------
@dataclass
class Calls:
    """Calls one tenant received between two ``/_sandbox/stats`` snapshots."""

    by_route: dict[str, int] = field(default_factory=dict)
    reads: int = 0
    writes: int = 0
    rate_limited: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_route.values())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "reads": self.reads, "writes": self.writes, "rate_limited": self.rate_limited,
                "by_route": dict(sorted(self.by_route.items()))}


def tenant_stats(url: str, tenant: str) -> dict[str, Any]:
    stats = admin(url, "GET", "stats")
    return stats["by_tenant"].get(tenant) or {"calls": {}, "reads": 0, "writes": 0, "rate_limited": 0}


def calls_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> Calls:
    routes = Counter(after["calls"])
    routes.subtract(before["calls"])
    return Calls(by_route={k: v for k, v in routes.items() if v}, reads=after["reads"] - before["reads"],
                 writes=after["writes"] - before["writes"],
                 rate_limited=after["rate_limited"] - before["rate_limited"])


# --- the stack -------------------------------------------------------------------------------------
@dataclass
class Org:
    """A generated organisation: its slug, Xero tenant and Zoho org, and how many invoices it has."""

    slug: str
    invoices: int
    xero_tenant: str
    zoho_org: str

    @property
    def accounts(self) -> int:
        return max(1, self.invoices // 5)

    @property
    def products(self) -> int:
        return max(1, self.invoices // 10)


@dataclass
class SyncRun:
    """One ``zxsync sync`` child process, measured."""

    org: str
    label: str
    returncode: int
    summary: dict[str, Any]
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_mib: float
    rss_samples: list[tuple[float, float]]
    xero: Calls
    zoho: Calls
    task_runs: dict[str, int]
    journal_from: dict[str, int]
    stderr_tail: str = ""
    support_cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("xero", "zoho", "rss_samples", "journal_from")}
        out["cpu_s"] = round(self.cpu_s, 2)
        out["xero"] = self.xero.as_dict()
        out["zoho"] = self.zoho.as_dict()
        out["task_runs_total"] = sum(self.task_runs.values())
        out["rss_profile_mib"] = rss_profile(self.rss_samples)
        return out


def rss_profile(samples: list[tuple[float, float]], points: int = 10) -> list[float]:
    """RSS (MiB) at 10 %, 20 %, ... 100 % of the run's wall time: flat or growing."""
    if not samples:
        return []
    end = samples[-1][0] or 1.0
    out = []
    for k in range(1, points + 1):
        moment = end * k / points
        out.append(round(max((r for t, r in samples if t <= moment), default=samples[0][1]), 1))
    return out


class Stack:
    """Sandboxes + Prefect server + an environment for the product, in one temporary folder."""

    def __init__(self, root: Path, *, log: Any = print) -> None:
        self.root = root
        self.log = log
        self.children: list[Any] = []
        self.xero_url = ""
        self.zoho_url = ""
        self.api_url = ""
        self.env: dict[str, str] = {}
        self.pids: dict[str, int] = {}

    # -- lifecycle --
    def start(self) -> Stack:
        from deployments.processes import spawn
        from deployments.server import free_port, prefect_env, start_prefect_server

        for sub in ("home", "orgs", "sandbox", "prefect", "logs", "keys"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        xport, zport = free_port(), free_port()
        sandboxes = spawn("sandboxes", [sys.executable, "-m", "sandbox", "--xero-port", str(xport), "--zoho-port",
                                        str(zport), "--state-dir", str(self.root / "sandbox")],
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_path=self.root / "logs" / "sandboxes.log",
                          cwd=self.root)
        self.children.append(sandboxes)
        self.pids = {"sandboxes": sandboxes.pid}
        self.xero_url, self.zoho_url = f"http://127.0.0.1:{xport}", f"http://127.0.0.1:{zport}"
        server = start_prefect_server(self.root / "prefect", log_path=self.root / "logs" / "prefect-server.log",
                                      extra_env={"PREFECT_SERVER_API_KEEPALIVE_TIMEOUT": "30"})
        self.children.append(server)
        self.pids["prefect_server"] = server.child.pid
        self.api_url = server.api_url
        self._wait(self.xero_url, sandboxes)
        self._wait(self.zoho_url, sandboxes)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ZX_", "PREFECT_"))}
        self.env = prefect_env(self.root / "prefect", self.api_url, base=base,
                               PREFECT_LOGGING_LEVEL="WARNING")
        self.env.update({
            "ZX_HOME": str(self.root / "home"), "ZX_ORGS_DIR": str(self.root / "orgs"),
            "ZX_SECRET_KEY": Fernet.generate_key().decode(),
            "ZX_SECRET_KEY_FILE": str(self.root / "keys" / "secret.key"),
            "ZX_XERO_LOGIN_URL": self.xero_url, "ZX_XERO_IDENTITY_URL": self.xero_url,
            "ZX_XERO_API_URL": self.xero_url, "ZX_ZOHO_ACCOUNTS_URL": self.zoho_url,
            "ZX_ZOHO_API_URL": self.zoho_url, "PYTHONUNBUFFERED": "1",
        })
        self._apply_env(self.env)
        return self

    def _wait(self, url: str, child: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{url}/_sandbox/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if not child.running() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox at {url} did not start:\n{child.log_tail()}")
            time.sleep(0.2)

    @staticmethod
    def _apply_env(env: Mapping[str, str]) -> None:
        """This process (onboarding, Prefect client) uses the same settings as the sync children."""
        from zxsync.settings import get_settings

        for key in [k for k in os.environ if k.startswith(("ZX_", "PREFECT_"))]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith(("ZX_", "PREFECT_"))})
        get_settings.cache_clear()

    def set_env(self, **values: str) -> None:
        """Change settings for the next sync runs (e.g. shrunk Xero limits)."""
        self.env.update(values)
        self._apply_env(self.env)

    def stop(self) -> None:
        from tasks import runtime

        runtime.reset()
        for child in reversed(self.children):
            try:
                child.stop(timeout=20)
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                self.log(f"  (stopping {child!r}: {exc})")
        self.children.clear()

    # -- limits --
    def relax_limits(self) -> None:
        admin(self.xero_url, "PUT", "limits", RELAXED_XERO)
        admin(self.zoho_url, "PUT", "limits", RELAXED_ZOHO)
        self.set_env(**RELAXED_ENV)

    def xero_limits(self, per_window: int, window_seconds: float, concurrent: int = 5,
                    per_day: int = 10_000_000) -> None:
        """The same Xero limits in the sandbox and in the product's settings."""
        admin(self.xero_url, "PUT", "limits", {"per_window": per_window, "window_seconds": window_seconds,
                                                "concurrent": concurrent, "per_day": per_day,
                                                "app_per_window": 10_000_000})
        self.set_env(ZX_XERO_CALLS_PER_WINDOW=str(per_window), ZX_XERO_WINDOW_SECONDS=str(window_seconds),
                     ZX_XERO_CONCURRENCY=str(concurrent), ZX_XERO_DAILY_BUDGET=str(per_day))

    def advance_clocks(self, seconds: float) -> None:
        """Move both sandboxes' virtual clocks on (record timestamps, token expiry, rate windows)."""
        for url in (self.xero_url, self.zoho_url):
            admin(url, "PUT", "clock", {"advance_seconds": seconds})

    # -- orgs --
    def org_file(self, slug: str, *, modules_off: tuple[str, ...] = ()) -> Path:
        """``orgs/<slug>.yaml``: the demo org's mapping (the generated data uses its taxes, statuses,
        currency and accounts), under another slug."""
        data = yaml.safe_load((REPO / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
        data.update(slug=slug, name=f"Benchmark {slug}")
        data["xero"] = {**data["xero"], "connection": f"{slug}-xero", "tenant_id": None}
        data["zoho"] = {**data["zoho"], "connection": f"{slug}-zoho", "org_id": None}
        for module in modules_off:
            data["modules"][module] = {**data["modules"][module], "enabled": False}
        path = self.root / "orgs" / f"{slug}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    def create_org(self, slug: str, invoices: int, *, xero_seed: str = "empty",
                   modules_off: tuple[str, ...] = ()) -> Org:
        """A Zoho org generated with ``invoices`` invoices (N/5 accounts, N/10 products), an empty Xero
        tenant (reference data only), the org file, and the org onboarded (connected, Xero_* fields)."""
        from tasks import runtime
        from zxsync.onboarding import onboard_sandbox_org

        began = time.monotonic()
        xero = admin(self.xero_url, "POST", "orgs", {"name": f"Benchmark {slug}", "seed": xero_seed})
        zoho = admin(self.zoho_url, "POST", "orgs", {"name": f"Benchmark {slug}", "seed": str(invoices)})
        zoho_org = str(zoho.get("org_id") or zoho.get("organization_id") or zoho.get("id"))
        self.org_file(slug, modules_off=modules_off)
        onboard_sandbox_org(slug, xero_org=xero["tenant_id"], zoho_org=zoho_org)
        runtime.reset()
        self.log(f"  org {slug}: {invoices} invoices generated and onboarded in {time.monotonic() - began:.1f} s")
        return Org(slug=slug, invoices=invoices, xero_tenant=xero["tenant_id"], zoho_org=zoho_org)

    # -- runs --
    def journal_len(self, url: str) -> int:
        stats = admin(url, "GET", "stats")
        return int(sum(stats["calls"].values()))

    def sync(self, org: Org, label: str, *, args: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
             timeout: float = 4 * 3600) -> SyncRun:
        """Run ``zxsync sync ORG --json`` as a child and measure it."""
        before_x = tenant_stats(self.xero_url, org.xero_tenant)
        before_z = tenant_stats(self.zoho_url, org.zoho_org)
        journal_from = {"xero": self.journal_len(self.xero_url), "zoho": self.journal_len(self.zoho_url)}
        support_before = self.support_cpu()
        run_env = {**self.env, **(env or {})}
        err_path = self.root / "logs" / f"sync-{org.slug}-{label}.log"
        began = time.monotonic()
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([ZXSYNC, "sync", org.slug, "--json", *args], env=run_env,
                                    stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=self.root)
            samples: list[tuple[float, float]] = []
            out_chunks: list[bytes] = []
            reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
            reader.start()
            stop = threading.Event()

            def sample() -> None:
                status = Path(f"/proc/{proc.pid}/status")
                while not stop.wait(0.25):
                    try:
                        for line in status.read_text().splitlines():
                            if line.startswith("VmRSS:"):
                                samples.append((time.monotonic() - began, int(line.split()[1]) / 1024))
                    except OSError:
                        return

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            deadline = began + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.05)
            stop.set()
            proc.returncode = os.waitstatus_to_exitcode(status)
            reader.join(30)
        wall = time.monotonic() - began
        support = {k: round(v - support_before.get(k, 0.0), 2) for k, v in self.support_cpu().items()}
        text = b"".join(out_chunks).decode(errors="replace").strip()
        summary: dict[str, Any] = {}
        for line in reversed(text.splitlines()):
            try:
                summary = json.loads(line)
                break
            except ValueError:
                continue
        stderr_tail = ""
        if proc.returncode != 0 or summary.get("state") != "COMPLETED":
            stderr_tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-40:])
        run = SyncRun(org=org.slug, label=label, returncode=proc.returncode, summary=summary, wall_s=round(wall, 2),
                      cpu_user_s=round(usage.ru_utime, 2), cpu_sys_s=round(usage.ru_stime, 2),
                      peak_rss_mib=round(usage.ru_maxrss / 1024, 1), rss_samples=samples,
                      xero=calls_between(before_x, tenant_stats(self.xero_url, org.xero_tenant)),
                      zoho=calls_between(before_z, tenant_stats(self.zoho_url, org.zoho_org)),
                      task_runs=self.task_runs(summary.get("run_id")), journal_from=journal_from,
                      stderr_tail=stderr_tail, support_cpu_s=support)
        return run

    def support_cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the sandboxes and the Prefect server (with their children)."""
        return {name: tree_cpu(pid) for name, pid in self.pids.items()}

    def task_runs(self, flow_run_id: str | None) -> dict[str, int]:
        """Task runs of one flow run, by task name (through the Prefect API)."""
        if not flow_run_id:
            return {}
        names: Counter[str] = Counter()
        offset = 0
        while True:
            answer = requests.post(f"{self.api_url}/task_runs/filter", timeout=60, json={
                "flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": offset})
            answer.raise_for_status()
            rows = answer.json()
            for row in rows:
                names[re.sub(r"-[0-9a-f]{3}$", "", row["name"])] += 1
            if len(rows) < 200:
                return dict(sorted(names.items()))
            offset += 200

    def journal(self, which: str, since: int) -> list[dict[str, Any]]:
        return admin(self.xero_url if which == "xero" else self.zoho_url, "GET", "journal", since=since)


@contextmanager
def stack(keep: bool = False, log: Any = print) -> Iterator[Stack]:
    """A started :class:`Stack` in a fresh temporary folder, stopped (and removed) afterwards."""
    root = Path(tempfile.mkdtemp(prefix="zx-bench-"))
    running = Stack(root, log=log)
    try:
        yield running.start()
    finally:
        running.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"  (kept {root})")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc)."""
    from deployments.processes import descendants

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b) if a > 0 else 0


def self_rusage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


# --- users of the two systems (benchmark-side edits and the naive baseline) ----------------------------
class ZohoUser:
    """A Zoho CRM user of one sandbox org, with a token of its own (not the product's)."""

    def __init__(self, base: str, org_id: str) -> None:
        creds = requests.get(f"{base}/_sandbox/credentials", params={"org": org_id}, timeout=30).json()
        token = requests.post(f"{base}/oauth/v2/token", timeout=30, data={
            "grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
            "client_id": creds["client_id"], "client_secret": creds["client_secret"]}).json()
        self.base = f"{base}/crm/v8"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Zoho-oauthtoken {token['access_token']}"

    def pages(self, module: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"fields": ",".join(fields), "per_page": 200}
        while True:
            answer = self.session.get(f"{self.base}/{module}", params=params, timeout=120)
            if answer.status_code == 204:
                return
            answer.raise_for_status()
            body = answer.json()
            yield body["data"]
            if not body["info"].get("more_records"):
                return
            params["page_token"] = body["info"]["next_page_token"]

    def update(self, module: str, records: list[dict[str, Any]], chunk: int = 100) -> int:
        """Update records (``id`` + fields) ``chunk`` at a time, as an integration or import would."""
        calls = 0
        for start in range(0, len(records), chunk):
            answer = self.session.put(f"{self.base}/{module}", timeout=120,
                                      json={"data": records[start:start + chunk], "trigger": []})
            answer.raise_for_status()
            calls += 1
        return calls


class XeroUser:
    """A Xero app connected to one sandbox tenant, with its own consent and token."""

    def __init__(self, base: str, tenant: str) -> None:
        creds = requests.get(f"{base}/_sandbox/credentials", params={"org": tenant}, timeout=30).json()
        token = requests.post(f"{base}/connect/token", timeout=30, auth=(creds["client_id"], creds["client_secret"]),
                              data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"]}).json()
        self.base = f"{base}/api.xro/2.0"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": tenant,
                                     "Accept": "application/json"})

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.session.get(f"{self.base}/{path}", params=params, timeout=120)
        answer.raise_for_status()
        return answer.json()

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.put(f"{self.base}/{path}", json=body, timeout=120)
        answer.raise_for_status()
        return answer.json()
