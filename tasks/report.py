"""Closing a run: watermarks forward, the run's outcome in the ledger, and the sync log artifacts.

The Prefect UI is the sync log: every run ends with a keyed table artifact (per entity: created,
updated, unchanged, rejected, ...) and a keyed markdown artifact listing each reject with its
reason and fix hint, so support staff can act without opening a database.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from mappings import load_org
from tasks import runtime
from tasks.extract import ExtractResult
from tasks.plan import RunPlan

#: Columns of the summary table, in order.
COLUMNS = ("looked_at", "created", "updated", "unchanged", "linked", "rejected", "deferred", "locked", "skipped",
           "deleted", "voided", "healed", "written_back", "created_in_zoho", "writeback_errors")
#: How a module is named in summaries.
ENTITY_LABEL = {"contacts": "contacts", "vendors": "vendors", "products": "items", "invoices": "invoices",
                "purchase_orders": "purchase_orders", "sales_orders": "sales_orders", "quotes": "quotes",
                "payments": "payments"}


def summary_key(org: str) -> str:
    return f"sync-summary-{org}"


def rejects_key(org: str) -> str:
    return f"sync-rejects-{org}"


def _newer(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@task(name="finish-run", persist_result=True)
def finish_run(plan: RunPlan, totals: dict[str, dict[str, int]], extracts: list[ExtractResult]) -> dict[str, Any]:
    """Move the watermarks, close the run in the ledger, publish the artifacts; returns the summary."""
    ledger = runtime.ledger()
    if not plan.dry_run and plan.window.kind != "record-ids":
        for ex in extracts:
            # Never move a watermark back (a last-N-days rerun reads older records on purpose).
            mark = _newer(ledger.get_watermark(plan.org, ex.stream), ex.newest)
            if mark is not None:
                ledger.set_watermark(plan.org, ex.stream, mark)
    # Every Zoho record a push looked at is accounted for: looked_at = created + updated + unchanged
    # + linked + rejected + skipped (+ deleted / voided for deletions).
    totals = {module: dict(counts) for module, counts in totals.items()}
    for module in plan.to_xero():
        zoho = plan.spec(module).zoho
        looked = sum(e.records for e in extracts if e.stream in (f"zoho:{zoho}", f"zoho:{zoho}:deleted"))
        totals.setdefault(module, {})["looked_at"] = looked
    # A dry run's would_create / would_update / ... columns are what it reports: keep them.
    would = sorted({c for v in totals.values() for c in v if c.startswith("would_")})
    entities = {ENTITY_LABEL.get(k, k): {c: int(v.get(c, 0)) for c in (*COLUMNS, *would)} for k, v in totals.items()}
    # One object: the run's state and, per entity, created / updated / unchanged / rejected / ...
    summary: dict[str, Any] = {"org": plan.org, "run_id": plan.run_id, "state": "COMPLETED", "dry_run": plan.dry_run,
                               **entities}
    # Only the rejects are read: the run's whole journal (a snapshot per record written) would make
    # memory grow with the org (benchmarks: 250 -> 1,040 MiB at the end of a 50,000-invoice first sync).
    rejects = ledger.journal_for(plan.org, run_id=plan.run_id, outcomes=("rejected", "deferred", "locked", "error"))
    summary["rejects"] = len({(r.entity, r.zoho_id, r.xero_id) for r in rejects})
    ledger.finish_run(plan.run_id, "completed", counts=entities)
    _publish(plan, entities, rejects)
    if not plan.dry_run:
        ledger.stage_drop(plan.org, plan.run_id)
    get_run_logger().info("Run of %s done: %s", plan.org, "; ".join(
        f"{e}: " + ", ".join(f"{k} {v}" for k, v in row.items() if v) for e, row in entities.items()
        if any(row.values())) or "nothing to do")
    return summary


def _publish(plan: RunPlan, entities: dict[str, dict[str, int]], rejects: list[Any]) -> None:
    table = [{"entity": name, **row} for name, row in entities.items()]
    title = "Dry run — nothing was written" if plan.dry_run else "Sync summary"
    create_table_artifact(key=summary_key(plan.org), table=table,
                          description=f"# {title}: {plan.org}\n{plan.trigger} run, window {plan.window.label}")
    lines = [f"# Rejected records: {plan.org}", ""]
    if not rejects:
        lines.append("Nothing was rejected in this run.")
    else:
        config = load_org(plan.org)
        lines += ["| record | in Zoho | in Xero | rule | reason | how to fix |", "|---|---|---|---|---|---|"]
        for r in rejects:
            record = r.zoho_id or r.xero_id or ""
            module = ZOHO_MODULE.get(r.entity or "", "")
            zoho = f"[open]({config.record_url(module, r.zoho_id)})" if r.zoho_id and module else ""
            xero = f"[open]({xero_url(r.entity or '', r.xero_id)})" if r.xero_id else ""
            lines.append(f"| {record} | {zoho} | {xero} | {r.rule or r.outcome} | {_cell(r.message)} | "
                         f"{_cell(r.hint)} |")
    create_markdown_artifact(key=rejects_key(plan.org), markdown="\n".join(lines),
                             description=f"Rejects of run {plan.run_id}")


#: Ledger entity -> the Zoho module its records live in (for links in the sync log).
ZOHO_MODULE = {"contact": "Accounts", "item": "Products", "invoice": "Invoices", "sales_order": "Sales_Orders",
               "quote": "Quotes", "purchase_order": "Purchase_Orders", "bill": "Purchase_Orders"}


def xero_url(entity: str, xero_id: str) -> str:
    """Xero's deep link to a record (what support staff click in the sync log)."""
    if entity == "contact":
        return f"https://go.xero.com/Contacts/View/{xero_id}"
    if entity == "item":
        return f"https://go.xero.com/Accounts/Inventory/{xero_id}"
    if entity == "purchase_order":
        return f"https://go.xero.com/Accounts/Payable/PurchaseOrders/View/{xero_id}"
    if entity == "bill":
        return f"https://go.xero.com/AccountsPayable/View.aspx?InvoiceID={xero_id}"
    return f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={xero_id}"


class Progress:
    """A progress artifact on the run while it loads (pages done out of pages known so far)."""

    def __init__(self, plan: RunPlan) -> None:
        self.done = 0
        self.known = 0
        self.artifact_id = create_progress_artifact(
            progress=0.0, description=f"{plan.org}: pages mapped, validated and loaded")

    def found(self, pages: int) -> None:
        self.known += pages

    def advance(self) -> None:
        self.done += 1
        if self.known:
            update_progress_artifact(artifact_id=self.artifact_id, progress=min(100.0, 100.0 * self.done / self.known))

    def finish(self) -> None:
        update_progress_artifact(artifact_id=self.artifact_id, progress=100.0)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def add_counts(totals: dict[str, dict[str, int]], module: str, counts: dict[str, int]) -> None:
    """Fold a task's counts into the run's totals (``rejected`` split into deferred/locked by the task)."""
    row = Counter(totals.get(module, {}))
    row.update({k: v for k, v in counts.items() if isinstance(v, int)})
    totals[module] = dict(row)
