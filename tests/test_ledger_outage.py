"""Ledger outage (issue 10, acceptance 6): the ledger on a throwaway PostgreSQL instance this test
starts itself (``initdb`` into a temporary folder with the machine's PostgreSQL binaries, a free
port — never the machine's shared server). The instance is stopped while a ``zxsync sync`` process
is in the middle of loading invoices, just as Xero commits a batch the ledger will never hear of:
the run fails cleanly (it ends, the Prefect run is Failed with the database error, nothing hangs).
After a restart, with Xero's idempotency window long gone, the next run settles the interrupted
batch by lookup and converges with no duplicate.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prefect.settings import get_current_settings

from flows.options import RunOptions
from ledger import Ledger
from tests.chaos_support import (
    SecretWatch,
    baseline,
    check_accounting,
    converged,
    create_org,
    fast_limits,
    injected,
    report_rows,
    results_in,
    set_faults,
    use_orgs_dir,
)
from tests.e2e_support import running_sandboxes
from zxsync.runs import format_summary, run_sync
from zxsync.settings import get_settings

pytestmark = pytest.mark.chaos

ZXSYNC = str(Path(sys.executable).with_name("zxsync"))
XERO_INVOICES = "/api.xro/2.0/Invoices"


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayPostgres:
    """A PostgreSQL instance of our own: a fresh cluster in a temporary folder on a free port.

    The binaries refuse to run as root, so as root the cluster belongs to the ``postgres`` user
    (``runuser``); the folder is made under /tmp where that user can reach it.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="zx-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "zxledger")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/zxledger"

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bindir / tool), *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server goes away at once, connections cut (like a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture()
def postgres() -> Iterator[ThrowawayPostgres]:
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    instance = ThrowawayPostgres(bindir)
    try:
        yield instance
    finally:
        instance.destroy()


def test_the_ledger_going_away_mid_run_fails_cleanly_and_the_next_run_converges(
        postgres: ThrowawayPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None,
        request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ZX_DATABASE_URL", postgres.url)
    monkeypatch.setenv("ZX_XERO_BATCH_SIZE", "20")
    get_settings.cache_clear()
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    outputs: list[str] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes, \
            results_in(tmp_path / "prefect-results") as results:
        fast_limits(boxes, monkeypatch)
        org = create_org(boxes, orgs_dir, "outage", invoices=120)
        base = baseline(org)
        watch = SecretWatch(boxes)
        watch.collect([org.slug])
        from tasks import runtime

        runtime.reset()
        # The third invoice batch is held 4 s before Xero processes it: the ledger goes away meanwhile,
        # then Xero commits the batch — the write-ahead intent is all the ledger will have of it.
        before = injected(boxes.xero.url).get("slow", 0)
        set_faults(boxes.xero.url, [{"method": "PUT", "path": XERO_INVOICES, "kind": "slow", "count": 1,
                                     "after": 2, "delay_seconds": 4}])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=str(get_current_settings().api.url),
                   PREFECT_HOME=str(tmp_path / "prefect-outage"), ZX_TASK_RETRY_DELAY_SECONDS="0.5")
        process = subprocess.Popen([ZXSYNC, "sync", org.slug, "--json"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while injected(boxes.xero.url).get("slow", 0) <= before:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the third invoice batch never went out"
                time.sleep(0.1)
            postgres.stop("immediate")
            stop_at = time.monotonic()
            out, err = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
        outputs += [out, err]
        ended_after = time.monotonic() - stop_at

        # It failed cleanly: it ended by itself, non-zero, saying what went wrong, in one summary.
        assert process.returncode != 0, out[-2000:] + err[-2000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["state"] in ("FAILED", "CRASHED"), summary
        assert any(w in summary.get("error", "") for w in ("OperationalError", "connection", "Connection")), summary
        # Xero did commit the held batch after the ledger went away.
        xero_numbers = {i["InvoiceNumber"] for i in org.xero().all("Invoices", where='Type=="ACCREC"')}
        assert len(xero_numbers) >= 60, len(xero_numbers)

        postgres.start()
        requests.delete(f"{boxes.xero.url}/_sandbox/faults", timeout=30).raise_for_status()
        # Past Xero's 6-minute idempotency window: only the intent's lookup stands between us and copies.
        requests.put(f"{boxes.xero.url}/_sandbox/clock", json={"advance_seconds": 400}, timeout=30).raise_for_status()
        with Ledger.open() as ledger:
            assert ledger.pending_intents(org.slug), "the interrupted batch left no write-ahead intent"
        runtime.reset()
        after = run_sync(org.slug, RunOptions(trigger="cli"))
        outputs.append(format_summary(after))
        watch.collect([org.slug])
        assert after["state"] == "COMPLETED", after
        assert after["invoices"]["healed"] >= 1, after["invoices"]
        assert check_accounting(after) == [], after
        report = converged(org, base)
        report_rows(request, "ledger outage", [{
            "scenario": "PostgreSQL ledger stopped mid-run", "size": "120 invoices",
            "faults": {"ledger stop": 1}, "runs": f"2 (the first failed in {ended_after:.0f} s)",
            "duplicates": report.duplicates, "lost": report.missing, "differing": report.differing,
            "outcome": "converged" if report.converged else "NOT converged"}])
        assert report.converged, report.text()
        with Ledger.open() as ledger:
            assert not ledger.pending_intents(org.slug)

        captured = capfd.readouterr()
        home = Path(str(request.getfixturevalue("zx_env")))
        assert watch.files_holding(home, results, tmp_path / "prefect-outage", postgres.data) == []
        assert watch.in_text(*outputs, captured.out, captured.err) == []
