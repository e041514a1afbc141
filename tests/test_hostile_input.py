"""Hostile input through the whole pipeline (issue 10, acceptance 4): more than 60 malformed or
adversarial CRM records — quotes, apostrophes and unicode in names, HTML and script, 10,000-char
descriptions, 200 lines, negative and zero quantities, currencies Xero has not enabled, dates on or
before the lock date, emails Xero refuses, duplicate natural keys — inserted through Zoho's API
next to ordinary records, then synced. Each ends either synced exactly as the oracle predicts or
rejected with its own reason (rule, record, a reason naming what is wrong, a fix hint); the
ordinary records beside them are unaffected.

What Zoho's API itself refuses today (a quantity of zero or less, an email Zoho calls invalid) is
written into the Zoho sandbox's store after the insert, the way records entered before a
validation rule existed (or imported) live in a real CRM.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flows.options import RunOptions
from ledger import Ledger
from tests.chaos_support import (
    SandboxOrg,
    SecretWatch,
    baseline,
    check_accounting,
    converged,
    create_org,
    fast_limits,
    legacy_edit,
    report_rows,
    results_in,
    use_orgs_dir,
    zoho_insert,
)
from tests.e2e_support import running_sandboxes
from zxsync.runs import format_summary, run_sync

pytestmark = pytest.mark.chaos

LONG = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 200)[:10_000]
SCRIPT = "<script>alert(document.cookie)</script>"


@dataclass
class Hostile:
    """One adversarial record, what must become of it, and how its reject must read."""

    key: str
    module: str  # Accounts, Products, Invoices
    record: dict[str, Any]
    #: synced (exactly as predicted), rejected, either, skipped (before sync_from: left alone)
    outcome: str = "synced"
    #: When rejected: rule id prefixes that may explain it, and words its reason must contain.
    rules: tuple[str, ...] = ()
    reason_has: tuple[str, ...] = ()
    #: A change written into the sandbox's store after the insert (what Zoho's API refuses today).
    legacy: Callable[[dict[str, Any]], None] | None = None
    person: dict[str, Any] | None = None
    zoho_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _line(product: str, qty: float = 1, price: float | None = None, tax: str | list[str] | None = "GST 15%",
          **more: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"Product_Name": {"id": product}, "Quantity": qty, **more}
    if price is not None:
        row["List_Price"] = price
    if tax is not None:
        row["Line_Tax"] = [{"name": t} for t in ([tax] if isinstance(tax, str) else tax)]
    return row


def _invoice(account: str, lines: list[dict[str, Any]], subject: str = "Hostile order", **more: Any) -> dict[str, Any]:
    return {"Subject": subject, "Account_Name": {"id": account}, "Invoice_Date": "2025-07-01",
            "Due_Date": "2025-07-31", "Status": "Approved", "Currency": "NZD", "Invoiced_Items": lines, **more}


def _set_rows(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(record: dict[str, Any]) -> None:
        for row in record["Invoiced_Items"]:
            row.update(changes)
    return edit


def _set_first_row(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(record: dict[str, Any]) -> None:
        record["Invoiced_Items"][0].update(changes)
    return edit


def accounts() -> list[Hostile]:
    person = {"First_Name": "Pat", "Last_Name": "Tester"}
    return [
        Hostile("quoted name", "Accounts", {"Account_Name": '"Quoted" Trading "Co"', "Account_Number": "H-01"}),
        Hostile("apostrophe", "Accounts", {"Account_Name": "O'Brien & Sons", "Account_Number": "H-02"},
                person={"First_Name": "Seán", "Last_Name": "O'Brien", "Email": "sean.o'brien@obrien.example"}),
        Hostile("unicode", "Accounts", {"Account_Name": "Ōtautahi Café — 日本語 Ünïcødé", "Account_Number": "H-03"}),
        Hostile("script name", "Accounts", {"Account_Name": f"{SCRIPT} Ltd", "Account_Number": "H-04"}),
        Hostile("emoji", "Accounts", {"Account_Name": "Unicorn 🦄 Supplies", "Account_Number": "H-05"}),
        Hostile("padded", "Accounts", {"Account_Name": "   Padded\tName Ltd   ", "Account_Number": "H-06"}),
        Hostile("same name 1", "Accounts", {"Account_Name": "Twin Peaks Ltd", "Account_Number": "H-07"}),
        Hostile("same name 2", "Accounts", {"Account_Name": "Twin Peaks Ltd", "Account_Number": "H-08"}),
        # Duplicate natural key in Xero: AccountNumber is unique there, not in Zoho.
        Hostile("same number 1", "Accounts", {"Account_Name": "Same Number Alpha", "Account_Number": "H-DUP"},
                outcome="either", rules=("xero.refused",), reason_has=("account number",)),
        Hostile("same number 2", "Accounts", {"Account_Name": "Same Number Beta", "Account_Number": "H-DUP"},
                outcome="either", rules=("xero.refused",), reason_has=("account number",)),
        # Already in Xero under the same name (created there by hand): linked, not duplicated.
        Hostile("exists in xero", "Accounts", {"Account_Name": "O'Neill's Bar", "Account_Number": "H-11"}),
        Hostile("email xero refuses", "Accounts", {"Account_Name": "Bad Email Ltd", "Account_Number": "H-12"},
                person={**person, "Email": "pat@badmail.example"}, outcome="either",
                rules=("email.", "xero.refused"), reason_has=("email",)),
        Hostile("long account number", "Accounts", {"Account_Name": "Long Number Ltd",
                                                    "Account_Number": "N" * 40}),
        Hostile("sql", "Accounts", {"Account_Name": "Robert'); DROP TABLE Contacts;--", "Account_Number": "H-14"}),
        Hostile("backslashes", "Accounts", {"Account_Name": 'C:\\Temp "x" \'y\' Ltd', "Account_Number": "H-15"}),
        Hostile("website", "Accounts", {"Account_Name": "Shouting Web Ltd", "Account_Number": "H-16",
                                        "Website": "  HTTPS://SHOUTING.EXAMPLE/Path  "}),
    ]


def products() -> list[Hostile]:
    return [
        Hostile("quoted code", "Products", {"Product_Name": 'Widget "Pro"', "Product_Code": 'Q-"1"', "Unit_Price": 10}),
        Hostile("apostrophe code", "Products", {"Product_Name": "O'Brien's Valve", "Product_Code": "O'B-2",
                                                "Unit_Price": 12.5}),
        Hostile("unicode product", "Products", {"Product_Name": "Ünïcødé ✓ gadget", "Product_Code": "UNI-ü",
                                                "Unit_Price": 3}),
        Hostile("long name", "Products", {"Product_Name": "Very long product name " * 5, "Product_Code": "LONG-1",
                                          "Unit_Price": 1}),
        # The first product keeps the code; the second is refused, naming the first.
        Hostile("duplicate code 1", "Products", {"Product_Name": "Twin Part A", "Product_Code": "DUP-CODE",
                                                 "Unit_Price": 4}),
        Hostile("duplicate code 2", "Products", {"Product_Name": "Twin Part B", "Product_Code": "DUP-CODE",
                                                 "Unit_Price": 5}, outcome="rejected", rules=("item.code_duplicate",),
                reason_has=("DUP-CODE",)),
        Hostile("no code", "Products", {"Product_Name": "Codeless thing", "Unit_Price": 2}, outcome="rejected",
                rules=("item.code_missing",), reason_has=("Product_Code",)),
        Hostile("4dp price", "Products", {"Product_Name": "Tiny unit", "Product_Code": "TINY-1", "Unit_Price": 0.1234}),
        Hostile("html name", "Products", {"Product_Name": "<img src=x onerror=alert(1)>", "Product_Code": "HTML-1",
                                          "Unit_Price": 9}),
        Hostile("10k description", "Products", {"Product_Name": "Verbose part", "Product_Code": "VERB-1",
                                                "Unit_Price": 7, "Description": LONG},
                outcome="rejected", rules=("length.",), reason_has=("Description", "4000")),
        Hostile("negative price", "Products", {"Product_Name": "Rebate voucher", "Product_Code": "REBATE-1",
                                               "Unit_Price": -5}, outcome="either", rules=("line.", "item."),
                reason_has=("price",)),
    ]


def invoices(acc: dict[str, str], prod: dict[str, str], good_account: str, good_product: str) -> list[Hostile]:
    g, p = good_account, good_product
    return [
        Hostile("quotes in subject", "Invoices", _invoice(g, [_line(p)], subject='O\'Brien\'s "big" order')),
        Hostile("unicode subject", "Invoices", _invoice(g, [_line(p)], subject="Ōrder für Café ✓ 日本 🦄")),
        Hostile("script subject", "Invoices", _invoice(g, [_line(p)], subject=SCRIPT)),
        Hostile("apostrophe PO", "Invoices", _invoice(g, [_line(p)], Purchase_Order="PO-O'B \"7\"")),
        Hostile("2000-char line description", "Invoices",
                _invoice(g, [_line(p, Description=LONG[:2000])])),
        Hostile("10k header description", "Invoices", _invoice(g, [_line(p)], Description=LONG)),
        Hostile("200 lines", "Invoices", _invoice(g, [_line(p, qty=k % 7 + 1) for k in range(200)])),
        Hostile("negative quantity line", "Invoices", _invoice(g, [_line(p, qty=5), _line(p, qty=1)]),
                legacy=_set_first_row(Quantity=-1.0), outcome="either", rules=("line.quantity",),
                reason_has=("quantity",)),
        Hostile("zero quantity line", "Invoices", _invoice(g, [_line(p, qty=5), _line(p, qty=1)]),
                legacy=_set_first_row(Quantity=0.0), outcome="either", rules=("line.quantity",),
                reason_has=("quantity",)),
        Hostile("all negative", "Invoices", _invoice(g, [_line(p, qty=2)]), legacy=_set_rows(Quantity=-2.0),
                outcome="rejected", rules=("totals.negative", "line.quantity"), reason_has=("negative", "quantity")),
        Hostile("GBP", "Invoices", _invoice(g, [_line(p, tax="Zero Rated")], Currency="GBP"), outcome="rejected",
                rules=("currency.",), reason_has=("GBP",)),
        Hostile("before lock date", "Invoices", _invoice(g, [_line(p)], Invoice_Date="2025-03-01",
                                                         Due_Date="2025-03-31"),
                outcome="rejected", rules=("date.before_",), reason_has=("2025-03-01",)),
        Hostile("on lock date", "Invoices", _invoice(g, [_line(p)], Invoice_Date="2025-03-31", Due_Date="2025-04-30"),
                outcome="rejected", rules=("date.before_",), reason_has=("2025-03-31",)),
        Hostile("before sync_from", "Invoices", _invoice(g, [_line(p)], Invoice_Date="2024-12-01",
                                                         Due_Date="2024-12-31"), outcome="skipped"),
        Hostile("on hold", "Invoices", _invoice(g, [_line(p)], Status="On Hold"), outcome="rejected",
                rules=("status.unmapped",), reason_has=("On Hold",)),
        Hostile("cancelled, never pushed", "Invoices", _invoice(g, [_line(p)], Status="Cancelled"),
                outcome="skipped"),
        Hostile("unmapped tax", "Invoices", _invoice(g, [_line(p, tax="Luxury Tax 20%")]), outcome="rejected",
                rules=("tax.unmapped",), reason_has=("Luxury Tax 20%",)),
        Hostile("two taxes", "Invoices", _invoice(g, [_line(p, tax=["GST 15%", "Zero Rated"])]), outcome="rejected",
                rules=("tax.multiple",), reason_has=("GST 15%",)),
        Hostile("customer refused", "Invoices", _invoice(acc["same number 2"], [_line(p)]), outcome="either",
                rules=("dependency.", "contact."), reason_has=("Same Number",)),
        Hostile("customer refused too", "Invoices", _invoice(acc["same number 1"], [_line(p)]), outcome="either",
                rules=("dependency.", "contact."), reason_has=("Same Number",)),
        Hostile("codeless product", "Invoices", _invoice(g, [_line(prod["no code"])]), outcome="either",
                rules=("dependency.item", "item."), reason_has=("Codeless",)),
        Hostile("duplicate-code product", "Invoices", _invoice(g, [_line(prod["duplicate code 2"])]),
                outcome="either", rules=("dependency.item", "item."), reason_has=("Twin Part",)),
        Hostile("discount over amount", "Invoices", _invoice(g, [_line(p, qty=1, price=10, Discount=15), _line(p, qty=3)]),
                outcome="either", rules=("line.", "totals."), reason_has=("discount",)),
        Hostile("header discount over total", "Invoices", _invoice(g, [_line(p, qty=1, price=10)], Discount=50),
                outcome="rejected", rules=("totals.negative",), reason_has=("negative",)),
        Hostile("odd decimals", "Invoices", _invoice(g, [_line(p, qty=1.25, price=0.3333), _line(p, qty=3, price=0.1)])),
        Hostile("huge amounts", "Invoices", _invoice(g, [_line(p, qty=999999.99, price=99999.99)]),
                outcome="either", rules=("line.", "totals.", "xero."), reason_has=("amount", "total", "xero")),
        Hostile("no due date", "Invoices", {**_invoice(g, [_line(p)]), "Due_Date": None}, outcome="either",
                rules=("date.due_missing",), reason_has=("due",)),
        Hostile("due before date", "Invoices", _invoice(g, [_line(p)], Due_Date="2025-06-01"), outcome="either",
                rules=("date.", "xero."), reason_has=("due",)),
        Hostile("unicode city", "Invoices", _invoice(g, [_line(p)], Billing_City="Ōamaru")),
        Hostile("control characters", "Invoices", _invoice(g, [_line(p)], subject="Line one\nline two\ttabbed")),
        Hostile("invisible characters", "Invoices", _invoice(g, [_line(p)], subject="Zero\u200bwidth \u202eRTL")),
        Hostile("255-char subject", "Invoices", _invoice(g, [_line(p)], subject="S" * 255)),
        Hostile("apostrophe customer", "Invoices", _invoice(acc["apostrophe"], [_line(prod["apostrophe code"])])),
        Hostile("customer linked by name", "Invoices", _invoice(acc["exists in xero"], [_line(p)])),
        Hostile("unicode customer and item", "Invoices", _invoice(acc["unicode"], [_line(prod["unicode product"])])),
        Hostile("script customer, html item", "Invoices", _invoice(acc["script name"], [_line(prod["html name"])])),
        Hostile("quoted customer and item", "Invoices", _invoice(acc["quoted name"], [_line(prod["quoted code"])])),
        Hostile("number already in xero", "Invoices", _invoice(g, [_line(p, qty=2)], subject="Taken number")),
        Hostile("free line", "Invoices", _invoice(g, [_line(p, qty=1, price=0), _line(p, qty=1)])),
        Hostile("html line description", "Invoices", _invoice(g, [_line(p, Description="<b>bold</b> & <i>x</i>")])),
        Hostile("AUD without rate", "Invoices", _invoice(g, [_line(p, tax="Zero Rated")], Currency="AUD")),
        Hostile("discount equals amount", "Invoices", _invoice(g, [_line(p, qty=1, price=10, Discount=10),
                                                                   _line(p, qty=1)])),
        Hostile("USD", "Invoices", _invoice(g, [_line(p, tax="Zero Rated")], Currency="USD")),
        Hostile("4dp item", "Invoices", _invoice(g, [_line(prod["4dp price"], qty=1000)])),
    ]


def _reject_entries(org: str, zoho_id: str) -> list[Any]:
    with Ledger.open() as ledger:
        return [j for j in ledger.journal_for(org) if j.zoho_id == zoho_id and j.outcome in ("rejected", "deferred")]


def test_hostile_records_are_synced_exactly_or_rejected_with_their_own_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str]) -> None:
    orgs_dir = use_orgs_dir(tmp_path / "orgs", monkeypatch)
    outputs: list[str] = []
    with running_sandboxes(tmp_path / "sandbox", monkeypatch, seed="empty", onboard=None) as boxes, \
            results_in(tmp_path / "prefect-results") as results:
        fast_limits(boxes, monkeypatch)
        overrides = _org_overrides()
        org = create_org(boxes, orgs_dir, "hostile", invoices=40, **overrides)
        hostile = _insert_hostile(org)
        assert len(hostile) >= 60
        base = baseline(org)
        base.expected.outcomes.update({h.zoho_id: h.outcome for h in hostile})
        good = set(base.manifest.invoices) - {h.zoho_id for h in hostile}
        assert len(good) == 40

        watch = SecretWatch(boxes)
        summaries = []
        for _ in range(3):
            summary = run_sync(org.slug, RunOptions(trigger="cli"))
            summaries.append(summary)
            outputs.append(format_summary(summary))
            watch.collect([org.slug])
            assert summary["state"] == "COMPLETED", summary
            assert check_accounting(summary) == [], summary
            if converged(org, base).converged:
                break
        report = converged(org, base)

        # Each hostile record: synced exactly (the oracle's comparison) or rejected with its own reason.
        problems: list[str] = []
        outcomes: dict[str, str] = {}
        in_xero_now = _in_xero_now(org)
        for h in hostile:
            entries = _reject_entries(org.slug, h.zoho_id)
            latest = [j for j in entries if j.run_id == summaries[-1]["run_id"]] or entries
            in_xero = not any(f.record == h.zoho_id and f.kind == "missing" for f in report.findings)
            rejected = bool(latest) and not _synced(org, h, in_xero_now)
            outcomes[h.key] = "rejected" if rejected else ("skipped" if h.outcome == "skipped" else "synced")
            if h.outcome == "skipped" and (rejected or _synced(org, h, in_xero_now)):
                problems.append(f"{h.key}: must be left alone, but it was {'rejected' if rejected else 'pushed'}")
            if h.outcome == "synced" and rejected:
                problems.append(f"{h.key}: rejected although it is valid: {[j.message for j in latest]}")
            if h.outcome == "rejected" and not rejected:
                with Ledger.open() as ledger:
                    told = [(j.action, j.outcome, j.rule, j.message) for j in ledger.journal_for(org.slug)
                            if j.zoho_id == h.zoho_id]
                problems.append(f"{h.key}: not rejected (in Xero: {_synced(org, h, in_xero_now)}; journal: {told})")
            if rejected:
                for j in latest[:1]:
                    if h.rules and not j.rule.startswith(h.rules):
                        problems.append(f"{h.key}: rejected by {j.rule}, expected one of {h.rules}: {j.message}")
                    text = f"{j.message} {j.hint}".casefold()
                    if h.reason_has and not any(w.casefold() in text for w in h.reason_has):
                        problems.append(f"{h.key}: the reason does not say what is wrong: {j.message}")
                    if not j.hint:
                        problems.append(f"{h.key}: no fix hint: {j.message}")
                    if re.search(r"\b(nan|None|null)\b", j.message):
                        problems.append(f"{h.key}: the reason shows a placeholder instead of a value: {j.message}")
        assert problems == [], "\n".join(problems)
        # The oracle: hostile records as their outcome says, the 40 ordinary ones exactly as seeded.
        assert report.converged, report.text()
        assert not [f for f in report.findings if f.record in good]

        rejected = sum(1 for o in outcomes.values() if o == "rejected")
        report_rows(request, "hostile input", [{
            "scenario": "hostile input", "size": f"{len(hostile)} hostile + 40 ordinary invoices' records",
            "faults": {}, "runs": len(summaries), "duplicates": report.duplicates, "lost": report.missing,
            "differing": report.differing,
            "outcome": f"{len(hostile) - rejected} synced/skipped, {rejected} rejected with reasons"}])

        watch.collect([org.slug])
        captured = capfd.readouterr()
        home = Path(str(request.getfixturevalue("zx_env")))
        assert watch.files_holding(home, results) == []
        assert watch.in_text(*outputs, captured.out, captured.err) == []


def _in_xero_now(org: SandboxOrg) -> dict[str, set[str]]:
    """Contact numbers and invoice numbers in Xero, read once (paged): per-record lookups by the
    test itself would spend the tenant's 60 calls a minute."""
    xero = org.xero()
    return {"Contacts": {c.get("ContactNumber") for c in xero.all("Contacts")},
            "Invoices": {i.get("InvoiceNumber") for i in xero.all("Invoices")}}


def _synced(org: SandboxOrg, h: Hostile, in_xero: dict[str, set[str]]) -> bool:
    """Whether the record has a Xero counterpart now (by its natural key)."""
    if h.module == "Accounts":
        return h.zoho_id in in_xero["Contacts"]
    if h.module == "Products":  # another product may own the code: this one must be linked to it
        return bool(org.zoho().record("Products", h.zoho_id).get("Xero_Item_ID"))
    return h.extra.get("number") in in_xero["Invoices"]


def _org_overrides() -> dict[str, Any]:
    """The demo's mappings, plus two that let 10,000 characters reach Xero: the product's own
    Description becomes the item's (Xero allows 4,000), and the invoice Reference falls back to
    the Description (cut to 255 like the Subject)."""
    from tests.chaos_support import REPO

    import yaml

    demo = yaml.safe_load((REPO / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
    fields = demo["fields"]
    fields["products"] = [m for m in fields["products"] if m["target"] != "Description"] + [
        {"target": "Description", "source": "Description"}]
    fields["invoices"] = [m if m["target"] != "Reference" else
                          {**m, "source": ["Purchase_Order", "Description", "Subject"]} for m in fields["invoices"]]
    return {"fields": fields}


def _insert_hostile(org: SandboxOrg) -> list[Hostile]:
    """Insert every hostile record through Zoho's API (legacy edits after), and the Xero records
    two of them collide with; returns them with their Zoho ids."""
    zoho = org.zoho()
    xero = org.xero()
    # Already in Xero before the first sync: a contact with a hostile name, an invoice number.
    xero.put("Contacts", {"Contacts": [{"Name": "O'Neill's Bar"}]})
    made: list[Hostile] = []
    acc: dict[str, str] = {}
    for h in accounts():
        h.zoho_id = zoho_insert(zoho, "Accounts", h.record)
        person = {"Last_Name": "Buyer", "First_Name": "Hostile", "Email": f"buyer.{h.zoho_id}@hostile.example",
                  **(h.person or {}), "Account_Name": {"id": h.zoho_id}}
        email = person.get("Email")
        if h.key == "email xero refuses":
            person["Email"] = "placeholder@valid.example"
        person_id = zoho_insert(zoho, "Contacts", person)
        if h.key == "email xero refuses":
            # Zoho's API checks emails loosely in real life; Xero refuses this one.
            legacy_edit(org, "Contacts", person_id, lambda r: r.update(Email="pat@badmail"))
            h.extra["email"] = email
        acc[h.key] = h.zoho_id
        made.append(h)
    prod: dict[str, str] = {}
    for h in products():
        h.zoho_id = zoho_insert(zoho, "Products", h.record)
        prod[h.key] = h.zoho_id
        made.append(h)
    good_account = next(r["id"] for r in zoho.records("Accounts", ["Account_Name"])
                        if r["Account_Name"].startswith("Customer "))
    good_product = next(r["id"] for r in zoho.records("Products", ["Product_Code"])
                        if str(r.get("Product_Code") or "").startswith("GEN-"))
    for h in invoices(acc, prod, good_account, good_product):
        h.zoho_id = zoho_insert(zoho, "Invoices", h.record)
        if h.legacy is not None:
            legacy_edit(org, "Invoices", h.zoho_id, h.legacy)
        h.extra["number"] = zoho.record("Invoices", h.zoho_id)["Invoice_Number"]
        made.append(h)
    taken = next(h for h in made if h.key == "number already in xero")
    contact = xero.get("Contacts", where='Name=="O\'Neill\'s Bar"')["Contacts"][0]["ContactID"]
    xero.put("Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "Status": "DRAFT",
                                         "InvoiceNumber": taken.extra["number"], "Date": "2025-07-02",
                                         "DueDate": "2025-08-01", "LineItems": [
                                             {"Description": "typed in Xero by hand", "Quantity": 1,
                                              "UnitAmount": 99, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    return made
