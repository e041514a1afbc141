"""`zxsync doctor ORG`: a readable checklist that fails (exit 1) on what would stop a sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from test_onboarding_support import (  # noqa: F401  (fixtures are requested by their names)
    demo_file_fixture,
    invoke,
    orgs_dir_fixture,
    sandboxes_fixture,
)

from ledger import Ledger
from tests.e2e_support import Sandboxes
from zxsync.doctor import run_doctor
from zxsync.onboarding import connect_sandbox, onboard_sandbox_org


def _line(out: str, name: str) -> str:
    """The checklist line of the check ``name`` (and its '->' fix line, when there is one)."""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if re.match(rf"\s+\[\w+\s*\] {re.escape(name)}\s", line))
    fix = lines[i + 1] if i + 1 < len(lines) and "->" in lines[i + 1] else ""
    return f"{lines[i]}\n{fix}"


def test_doctor_names_what_to_do_before_anything_is_connected(demo_file: Path) -> None:
    out = invoke("doctor", "demo", code=1)
    assert "[ok  ] Org file" in _line(out, "Org file")
    for system, label in (("xero", "Xero connection"), ("zoho", "Zoho CRM connection")):
        line = _line(out, label)
        assert "[FAIL]" in line and "not connected" in line and f"zxsync connect {system} demo" in line
    assert "[skip]" in _line(out, "Mapping check") and "[ok  ]" in _line(out, "Org lock")
    assert out.rstrip().endswith("check(s) failed.")


def test_doctor_on_a_connected_org_without_its_zoho_fields(sandboxes: Sandboxes, demo_file: Path) -> None:
    connect_sandbox("demo")
    out = invoke("doctor", "demo", code=1)
    assert "[ok  ]" in _line(out, "Xero connectivity")
    assert "'Harbour Demo Ltd'" in _line(out, "Xero tenant") and "NZD" in _line(out, "Xero tenant")
    assert "[ok  ]" in _line(out, "Xero scopes") and "accounting.payments" in _line(out, "Xero scopes")
    assert re.search(r"\[ok  \] Xero calls left today\s+\d+ \(X-DayLimit-Remaining\)", out)
    assert "[ok  ]" in _line(out, "Zoho CRM connectivity") and "[ok  ]" in _line(out, "Zoho CRM scopes")
    assert "[ok  ]" in _line(out, "Zoho CRM credits left")
    fields = _line(out, "Zoho Xero_* fields")
    assert "[FAIL]" in fields and "Invoices: Xero_Invoice_ID" in fields and "zxsync setup zoho-fields demo" in fields
    mapping = _line(out, "Mapping check")
    assert "[FAIL]" in mapping and "zxsync mappings check demo" in mapping

    # A running sync holds the org's lock: a warning, not a failure.
    with Ledger.open() as ledger, ledger.org_lock("demo", "run 7 (sync on host-a)", timeout=0):
        checks = {c.name: c for c in run_doctor("demo")}
    assert checks["Org lock"].status == "warn" and "run 7 (sync on host-a)" in checks["Org lock"].detail


def test_doctor_is_ready_once_the_org_is_onboarded_and_mapped(sandboxes: Sandboxes, demo_file: Path) -> None:
    onboard_sandbox_org("demo")
    data = yaml.safe_load(demo_file.read_text())
    data["status"]["invoices"]["to_xero"]["On Hold"] = "DRAFT"  # the demo's one unmapped status
    demo_file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = invoke("doctor", "demo")
    assert "[FAIL]" not in out and out.rstrip().endswith("Ready to sync.")
    assert "[ok  ]" in _line(out, "Zoho Xero_* fields") and "[warn]" in _line(out, "Mapping check")


def test_doctor_flags_scopes_and_dead_connections(sandboxes: Sandboxes, demo_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    xero, zoho = connect_sandbox("demo")
    with Ledger.open() as ledger:
        ledger.save_connection(xero.model_copy(update={"scopes": ["offline_access", "accounting.transactions",
                                                                  "accounting.contacts", "accounting.settings"]}))
        ledger.save_connection(zoho.model_copy(update={"broken_reason": "invalid_code: the refresh token was revoked"}))
    checks = {c.name: c for c in run_doctor("demo")}
    assert checks["Xero scopes"].status == "warn" and "13 Sep 2027" in (checks["Xero scopes"].fix or "")
    assert checks["Zoho CRM connection"].status == "fail" and "revoked" in checks["Zoho CRM connection"].detail
    assert "zxsync connect zoho demo" in (checks["Zoho CRM connection"].fix or "")
    assert checks["Mapping check"].status == "skip"
    with Ledger.open() as ledger:
        ledger.save_connection(xero.model_copy(update={"scopes": ["offline_access", "accounting.invoices",
                                                                  "accounting.settings.read"]}))
    checks = {c.name: c for c in run_doctor("demo")}
    assert checks["Xero scopes"].status == "fail"
    assert "payments" in checks["Xero scopes"].detail and "contacts" in checks["Xero scopes"].detail
