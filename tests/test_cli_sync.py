"""`zxsync connect demo --sandbox` and `zxsync sync demo --json` as a user runs them (issue 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e_support import running_sandboxes

ZXSYNC = str(Path(sys.executable).with_name("zxsync"))


def test_cli_connects_and_syncs_the_demo_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             zx_env: Path) -> None:
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "300"  # a loaded 2-core CI machine
        connect = subprocess.run([ZXSYNC, "connect", "demo", "--sandbox"], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert connect.returncode == 0, connect.stderr
        sync = subprocess.run([ZXSYNC, "sync", "demo", "--json"], env=env, capture_output=True, text=True,
                              timeout=600)
        assert sync.returncode == 0, sync.stderr[-3000:]
        summary = json.loads(sync.stdout.strip().splitlines()[-1])
        assert summary["state"] == "COMPLETED"
        for entity in ("contacts", "items", "invoices"):
            assert set(summary[entity]) >= {"created", "updated", "unchanged", "rejected"}
        assert summary["invoices"]["created"] == 145 and summary["invoices"]["rejected"] == 5, json.dumps(summary["invoices"])
        # Ephemeral Prefect ran under ZX_HOME, never the user's ~/.prefect.
        assert (zx_env / "prefect").is_dir()
        assert boxes.stats("xero")["writes"] > 0
