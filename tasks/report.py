"""Closing a run: watermarks forward, the run's outcome in the ledger, and the sync log artifacts.

The Prefect UI is the sync log: every run ends with a keyed table artifact (per entity: created,
updated, unchanged, rejected, ...) and a keyed markdown artifact listing each reject with its
reason and fix hint, so support staff can act without opening a database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from connectors.errors import BudgetExhausted
from connectors.zoho import forget_credit_estimates
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

#: Journal outcomes the rejects artifact lists (and the summary counts as rejects).
REJECT_OUTCOMES = ("rejected", "deferred", "locked", "error")


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
    entities = _entities(plan, totals, extracts)
    # One object: the run's state and, per entity, created / updated / unchanged / rejected / ...
    summary: dict[str, Any] = {"org": plan.org, "run_id": plan.run_id, "state": "COMPLETED", "dry_run": plan.dry_run,
                               **entities}
    # Only the rejects are read: the run's whole journal (a snapshot per record written) would make
    # memory grow with the org (benchmarks: 250 -> 1,040 MiB at the end of a 50,000-invoice first sync).
    rejects = ledger.journal_for(plan.org, run_id=plan.run_id, outcomes=REJECT_OUTCOMES)
    summary["rejects"] = len({(r.entity, r.zoho_id, r.xero_id) for r in rejects})
    ledger.finish_run(plan.run_id, "completed", counts=entities)
    _publish(plan, entities, rejects)
    if not plan.dry_run:
        ledger.stage_drop(plan.org, plan.run_id)
    get_run_logger().info("Run of %s done: %s", plan.org, "; ".join(
        f"{e}: " + ", ".join(f"{k} {v}" for k, v in row.items() if v) for e, row in entities.items()
        if any(row.values())) or "nothing to do")
    return summary


def _entities(plan: RunPlan, totals: dict[str, dict[str, int]],
              extracts: list[ExtractResult]) -> dict[str, dict[str, int]]:
    """Per entity: the summary columns (plus a dry run's would_* columns)."""
    # Every Zoho record a push looked at is accounted for: looked_at = created + updated + unchanged
    # + linked + rejected + skipped (+ deleted / voided for deletions).
    totals = {module: dict(counts) for module, counts in totals.items()}
    for module in plan.to_xero():
        zoho = plan.spec(module).zoho
        looked = sum(e.records for e in extracts if e.stream in (f"zoho:{zoho}", f"zoho:{zoho}:deleted"))
        totals.setdefault(module, {})["looked_at"] = looked
    # A dry run's would_create / would_update / ... columns are what it reports: keep them.
    would = sorted({c for v in totals.values() for c in v if c.startswith("would_")})
    return {ENTITY_LABEL.get(k, k): {c: int(v.get(c, 0)) for c in (*COLUMNS, *would)} for k, v in totals.items()}


class SyncStopped(Exception):
    """The run stopped cleanly before its end (the Zoho CRM credit reserve was reached); the
    message says why, what is kept and when to run again. One plain string argument, so Prefect
    can persist and reload it as the failed run's result."""


def relearn_zoho_credits(org: str) -> None:
    """At a run's start: forget what earlier runs in this process learnt of the org's Zoho credits
    (they free up over a rolling 24 hours); Zoho's first answer of this run tells where they stand."""
    forget_credit_estimates(org)


@contextmanager
def stop_at_credit_reserve(plan: RunPlan, totals: dict[str, dict[str, int]],
                           extracts: list[ExtractResult]) -> Iterator[None]:
    """Around a run's steps: when the Zoho credit reserve is reached (``BudgetExhausted`` from the
    Zoho client, raised before the call is sent), close the run with :func:`stop_run` and raise
    :class:`SyncStopped` with the clear message. Other errors pass through unchanged."""
    try:
        yield
    except BudgetExhausted as exc:
        if exc.system != "zoho":
            raise
        raise stop_run(plan, totals, extracts, exc) from None


def stop_run(plan: RunPlan, totals: dict[str, dict[str, int]], extracts: list[ExtractResult],
             error: BudgetExhausted) -> SyncStopped:
    """Close a run that stopped at the credit reserve: the ledger run ``failed`` with what it did,
    the sync log artifacts with a note. Returns the error the flow raises.

    The watermarks stay where they were (pages after the stop were never pushed: the next run reads
    them again) and the run's staging stays (the UI's Retry of this run resumes after its last
    completed batch). What was written is linked and journalled batch by batch, so nothing is lost
    and nothing is sent twice.
    """
    message = (f"Run stopped: the Zoho CRM credit reserve was reached ({error.message}). What this run synced is "
               "kept; the next run (or a Retry of this one) once credits are back carries on from there "
               "without duplicates.")
    entities = _entities(plan, totals, extracts)
    ledger = runtime.ledger()
    ledger.finish_run(plan.run_id, "failed", counts=entities)
    rejects = ledger.journal_for(plan.org, run_id=plan.run_id, outcomes=REJECT_OUTCOMES)
    _publish(plan, entities, rejects, note=message)
    get_run_logger().error("%s Done before the stop: %s", message, "; ".join(
        f"{e}: " + ", ".join(f"{k} {v}" for k, v in row.items() if v) for e, row in entities.items()
        if any(row.values())) or "nothing")
    return SyncStopped(message)


def _publish(plan: RunPlan, entities: dict[str, dict[str, int]], rejects: list[Any], note: str | None = None) -> None:
    table = [{"entity": name, **row} for name, row in entities.items()]
    title = "Dry run — nothing was written" if plan.dry_run else "Sync summary"
    if note:
        title = "Stopped before the end (what was done so far)"
    create_table_artifact(key=summary_key(plan.org), table=table,
                          description=f"# {title}: {plan.org}\n{plan.trigger} run, window {plan.window.label}"
                          + (f"\n\n**{note}**" if note else ""))
    lines = [f"# Rejected records: {plan.org}", ""]
    if not rejects:
        lines.append("Nothing was rejected in this run.")
    else:
        config = load_org(plan.org)
        lines += ["| record | in Zoho | in Xero | rule | reason | how to fix |", "|---|---|---|---|---|---|"]
        for r in rejects:
            record = r.zoho_id or r.xero_id or ""
            zoho, xero = _links(config, r)
            lines.append(f"| {record} | {zoho} | {xero} | {r.rule or r.outcome} | {_cell(r.message)} | "
                         f"{_cell(r.hint)} |")
    create_markdown_artifact(key=rejects_key(plan.org), markdown="\n".join(lines),
                             description=f"Rejects of run {plan.run_id}")
    _publish_changes(plan)


#: Records listed in the changes artifact (the summary table has the counts of all of them).
CHANGES_SHOWN = 200


def progress_key(org: str) -> str:
    return f"sync-progress-{org}"


def changes_key(org: str) -> str:
    return f"sync-changes-{org}"


def _publish_changes(plan: RunPlan) -> None:
    """What the run wrote, record by record with links to both systems (the first
    :data:`CHANGES_SHOWN`: read with a limit, so memory stays flat for any run)."""
    written = runtime.ledger().journal_for(plan.org, run_id=plan.run_id, outcomes=("ok",), limit=CHANGES_SHOWN + 1)
    lines = [f"# Records written: {plan.org}", ""]
    if plan.dry_run:
        lines.append("Dry run: nothing was written (the summary table says what would change).")
    elif not written:
        lines.append("Nothing was written in this run.")
    else:
        config = load_org(plan.org)
        lines += ["| record | action | in Zoho | in Xero | note |", "|---|---|---|---|---|"]
        for r in written[:CHANGES_SHOWN]:
            zoho, xero = _links(config, r)
            lines.append(f"| {r.entity} {r.zoho_id or r.xero_id or ''} | {r.action} | {zoho} | {xero} | "
                         f"{_cell(r.message)} |")
        if len(written) > CHANGES_SHOWN:
            lines += ["", (f"Only the first {CHANGES_SHOWN} are listed; the summary table counts them all and "
                           "the ledger's journal keeps every one.")]
    create_markdown_artifact(key=changes_key(plan.org), markdown="\n".join(lines),
                             description=f"Records written by run {plan.run_id}")


def _links(config: Any, entry: Any) -> tuple[str, str]:
    """Markdown links to a journalled record in Zoho and in Xero ('' where it has no id there)."""
    module = ZOHO_MODULE.get(entry.entity or "", "")
    zoho = f"[open]({config.record_url(module, entry.zoho_id)})" if entry.zoho_id and module else ""
    xero = f"[open]({xero_url(entry.entity or '', entry.xero_id)})" if entry.xero_id else ""
    return zoho, xero


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
            progress=0.0, key=progress_key(plan.org), description=f"{plan.org}: pages mapped, validated and loaded")

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
