"""Manual runs from the Prefect UI (issue 8): the sync flow's parameter schema renders RunOptions as
a form (modules, direction, window, dry run, with their defaults), the values the form submits are
validated by Prefect into RunOptions, and the direction picked there is obeyed end to end on the
sandboxes: to-zoho writes nothing to Xero yet brings a Xero payment into Zoho; to-xero writes
nothing to Zoho and leaves that payment for a later run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema

from flows.options import MODULE_ORDER, RunOptions, Window
from flows.sync import sync_organisation
from tests.e2e_support import Sandboxes, XeroReader, ZohoReader, running_sandboxes
from zxsync.onboarding import connect_sandbox
from zxsync.runs import run_sync

INVOICE_FIELDS = ["Invoice_Number", "Status", "Invoiced_Items", "Xero_Invoice_ID", "Xero_Status",
                  "Xero_Amount_Paid", "Xero_Amount_Due", "Xero_Sync_Status"]
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --------------------------------------------------------------------------------------------
# The form
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    rendered = parameter_schema(sync_organisation.fn).model_dump()
    # What the deployment sends to the UI is the flow's own parameter schema.
    assert sync_organisation.parameters.model_dump() == rendered
    return rendered


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` (directly or inside an optional ``anyOf``) to its definition."""
    if "$ref" in node:
        return schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    for option in node.get("anyOf", []):
        if "$ref" in option:
            return _resolve(schema, option)
    return node


def test_form_has_org_and_the_run_options(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    assert list(props) == ["org", "options"]
    assert schema["required"] == ["org"]  # options may be left out: the defaults below apply
    assert props["org"]["type"] == "string"
    options = _resolve(schema, props["options"])
    assert options["title"] == "RunOptions"
    assert {"modules", "direction", "window", "dry_run"} <= set(options["properties"])
    assert not options.get("required")  # every field of the form has a default


def test_form_fields_and_defaults(schema: dict[str, Any]) -> None:
    fields = _resolve(schema, schema["properties"]["options"])["properties"]

    # modules: a multi-select of the module names, empty (= every module the org enables) by default
    modules = fields["modules"]
    assert modules["type"] == "array" and modules["items"]["type"] == "string"
    assert modules["items"]["enum"] == list(MODULE_ORDER)
    assert modules.get("default", []) == [] and RunOptions().modules == []
    assert "empty = every module" in modules["description"]

    # direction: a drop-down of the three directions, both by default
    direction = fields["direction"]
    assert direction["type"] == "string" and direction["enum"] == ["to-xero", "to-zoho", "both"]
    assert direction["default"] == "both"

    # dry run: a switch, off by default
    assert fields["dry_run"]["type"] == "boolean" and fields["dry_run"]["default"] is False
    assert "write nothing" in fields["dry_run"]["description"]

    # window: a nested form with the three kinds, N days for last-days, ids for record-ids
    window = _resolve(schema, fields["window"])
    assert window["title"] == "Window" and not window.get("required")
    kind = window["properties"]["kind"]
    assert kind["enum"] == ["since-last-run", "last-days", "record-ids"]
    assert kind["default"] == "since-last-run"
    for name in ("since-last-run", "last-days", "record-ids"):
        assert name in kind["description"]
    days = window["properties"]["days"]
    days_int = next(o for o in days["anyOf"] if o.get("type") == "integer")
    assert (days_int["minimum"], days_int["maximum"], days["default"]) == (1, 3650, None)
    record_ids = window["properties"]["record_ids"]
    assert record_ids["type"] == "array" and record_ids["items"]["type"] == "string"
    assert record_ids.get("default", []) == []
    assert Window().kind == "since-last-run"


@pytest.mark.parametrize(("form", "label"), [
    ({}, "both · since-last"),
    ({"direction": "to-zoho", "window": {"kind": "last-days", "days": 7}}, "to-zoho · last-7-days"),
    ({"direction": "to-xero", "modules": ["invoices", "payments"], "dry_run": True,
      "window": {"kind": "record-ids", "record_ids": ["1001", "1002", "1003"]}}, "to-xero · 3-records · dry-run"),
])
def test_what_the_form_submits_becomes_run_options(form: dict[str, Any], label: str) -> None:
    """Prefect validates the submitted JSON against the flow signature into a RunOptions."""
    params = sync_organisation.validate_parameters({"org": "demo", "options": form})
    assert isinstance(params["options"], RunOptions)
    assert params["options"].label() == label
    assert params["options"] == RunOptions.model_validate(form)


@pytest.mark.parametrize("form", [
    {"direction": "sideways"},
    {"modules": ["ledgers"]},
    {"window": {"kind": "last-days"}},                 # N days missing
    {"window": {"kind": "last-days", "days": 0}},
    {"window": {"kind": "record-ids", "record_ids": []}},
    {"window": {"kind": "yesterday"}},
])
def test_the_form_rejects_bad_values_before_a_run(form: dict[str, Any]) -> None:
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError):
        sync_organisation.validate_parameters({"org": "demo", "options": form})


# --------------------------------------------------------------------------------------------
# Direction, end to end on the sandboxes
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None):
    with running_sandboxes(tmp_path / "sandbox", monkeypatch) as boxes:
        connect_sandbox("demo")
        yield boxes


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _synced_then_paid_in_xero(demo: Sandboxes) -> dict[str, Any]:
    """A first two-way sync, then a customer pays one of the pushed invoices in full in Xero."""
    assert run_sync("demo", RunOptions(trigger="cli"))["state"] == "COMPLETED"
    xero = XeroReader(demo.xero.url)
    invoice = next(i for i in xero.all("Invoices", where='Type=="ACCREC"') if i["Status"] == "AUTHORISED")
    xero.put("Payments", {"Payments": [
        {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Date": "2025-07-01",
         "Amount": invoice["AmountDue"], "Reference": "paid in Xero"}]})
    return invoice


def _zoho_invoice(demo: Sandboxes, xero_id: str) -> dict[str, Any]:
    return next(i for i in ZohoReader(demo.zoho.url).records("Invoices", INVOICE_FIELDS)
                if i.get("Xero_Invoice_ID") == xero_id)


def _writes(demo: Sandboxes, which: str, since: int) -> list[tuple[str, str, list[Any]]]:
    """Write calls in a sandbox's journal (Zoho's COQL query is a POST that only reads)."""
    return [(j["method"], j["path"], j["keys"]) for j in demo.journal(which, since)
            if j["method"] in WRITE_METHODS and not j["path"].endswith("/coql")]


def test_direction_to_zoho_writes_nothing_to_xero_but_brings_xero_payments(demo: Sandboxes) -> None:
    paid = _synced_then_paid_in_xero(demo)
    # A pending Zoho-side change too: to-zoho must not push it.
    zoho = ZohoReader(demo.zoho.url)
    edited = next(i for i in zoho.records("Invoices", INVOICE_FIELDS)
                  if i.get("Xero_Invoice_ID") and i["Status"] == "Created")
    row = edited["Invoiced_Items"][0]
    zoho.update("Invoices", {"id": edited["id"], "Invoiced_Items": [{"id": row["id"], "Quantity": row["Quantity"] + 1}]})

    xero = XeroReader(demo.xero.url)
    xero_copy = xero.get(f"Invoices/{edited['Xero_Invoice_ID']}")["Invoices"][0]
    xero_writes, xero_mark = demo.stats("xero")["writes"], len(demo.journal("xero"))
    summary = run_sync("demo", RunOptions(direction="to-zoho"))
    assert summary["state"] == "COMPLETED", summary

    assert demo.stats("xero")["writes"] == xero_writes
    assert _writes(demo, "xero", xero_mark) == []
    # ... while the payment made in Xero reached the linked Zoho invoice.
    record = _zoho_invoice(demo, paid["InvoiceID"])
    assert record["Xero_Status"] == "PAID" and _money(record["Xero_Amount_Due"]) == 0
    assert _money(record["Xero_Amount_Paid"]) == _money(paid["AmountDue"])
    assert record["Xero_Sync_Status"] == "locked-paid"
    # The Zoho edit waits for a run that goes to Xero.
    now = xero.get(f"Invoices/{edited['Xero_Invoice_ID']}")["Invoices"][0]
    assert (now["Total"], now["UpdatedDateUTC"]) == (xero_copy["Total"], xero_copy["UpdatedDateUTC"])
    assert [li["Quantity"] for li in now["LineItems"]] == [li["Quantity"] for li in xero_copy["LineItems"]]


def test_direction_to_xero_writes_nothing_to_zoho(demo: Sandboxes) -> None:
    paid = _synced_then_paid_in_xero(demo)
    before = _zoho_invoice(demo, paid["InvoiceID"])

    zoho_writes, zoho_mark = demo.stats("zoho")["writes"], len(demo.journal("zoho"))
    summary = run_sync("demo", RunOptions(direction="to-xero"))
    assert summary["state"] == "COMPLETED", summary

    assert _writes(demo, "zoho", zoho_mark) == []
    assert demo.stats("zoho")["writes"] == zoho_writes
    after = _zoho_invoice(demo, paid["InvoiceID"])
    assert after["Xero_Status"] == before["Xero_Status"] != "PAID"
    assert _money(after["Xero_Amount_Paid"]) == _money(before["Xero_Amount_Paid"]) == 0

    # The payment was pending, not lost: the next run that goes to Zoho brings it.
    assert run_sync("demo", RunOptions(direction="both"))["state"] == "COMPLETED"
    assert _zoho_invoice(demo, paid["InvoiceID"])["Xero_Status"] == "PAID"
