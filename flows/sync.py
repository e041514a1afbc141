"""Sync one organisation: extract, map, validate, load, reconcile.

The flow only orchestrates; every step is a small task in ``tasks/`` that returns small values
(stage names and counts), so a support person's Retry of a failed run resumes after the last
batch that completed, and nothing already written is sent again.

    Xero changes --extract--> pages ---------------------------------- reconcile --> Zoho
    Zoho changes --extract--> pages --map--> documents --validate--> batches --load--> Xero
                                                            Xero's answers --reconcile--> Zoho

Xero comes first so that this run's pushes see its latest lock state (an invoice paid in Xero
since the last run is never edited); what the run pushes is written back from Xero's answers.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.options import RunOptions
from tasks.extract import (
    ExtractResult,
    extract_affected_invoices,
    extract_xero,
    extract_zoho,
    extract_zoho_deleted,
)
from tasks.limits import use_prefect_limits
from tasks.load import load_batch, pushed_stage, settle_intents
from tasks.map import map_page
from tasks.plan import RunPlan, begin_run
from tasks.reconcile import (
    ID_WRITEBACK,
    import_contacts,
    import_invoices,
    reconcile_page,
    writeback_ids,
    writeback_page_rejects,
    writeback_pushed,
)
from tasks.report import Progress, add_counts, finish_run, relearn_zoho_credits, stop_at_credit_reserve
from tasks.runtime import org_lock
from tasks.validate import validate_page

#: Modules whose records are documents (Xero writes them back; Zoho deletions may void them).
DOCUMENT_MODULES = ("invoices", "purchase_orders", "sales_orders", "quotes")


def run_name() -> str:
    """``acme · schedule · both · since-last``: who, why and what, readable in the runs list."""
    params = flow_run.parameters
    options = params.get("options") or {}
    if isinstance(options, RunOptions):
        options = options.model_dump()
    window = options.get("window") or {}
    kind = window.get("kind", "since-last-run")
    label = {"last-days": f"last-{window.get('days')}-days",
             "record-ids": f"{len(window.get('record_ids') or [])}-records"}.get(kind, "since-last")
    parts = [params.get("org", "?"), options.get("trigger", "manual"), options.get("direction", "both"), label]
    if options.get("dry_run"):
        parts.append("dry-run")
    return " · ".join(str(p) for p in parts)


@flow(name="sync-organisation", flow_run_name=run_name, persist_result=True)
def sync_organisation(org: str, options: RunOptions | None = None) -> dict[str, Any]:
    """Sync one organisation between Zoho CRM and Xero, then publish the sync log artifacts."""
    options = options or RunOptions()
    use_prefect_limits(org)  # ZX_PREFECT_LIMITS=true: tenant limits shared by every process (workers)
    plan = begin_run(org, options)
    # Credits free up over Zoho's rolling 24 hours: re-learn them from this run's first answer rather
    # than trust what an earlier run in this process saw when it stopped at the reserve.
    relearn_zoho_credits(plan.org)
    with org_lock(plan.org, plan.run_id):
        totals: dict[str, dict[str, int]] = {}
        extracts: list[ExtractResult] = []
        # When the Zoho credit reserve is reached, the client refuses the next call before sending
        # it (so no batch is half done and no further Zoho call is made) and the run ends *Failed*,
        # not Completed: part of what it found is not synced yet (its watermarks don't move), and a
        # finance user must not read a green "Completed" as "Xero is up to date". Failed shows in the
        # runs list and alerts like any other failure; its message names the credit reserve, the
        # credits left and when they reset, and says the next run carries on (nothing done is lost
        # or sent twice). See tasks.report.stop_run.
        with stop_at_credit_reserve(plan, totals, extracts):
            summary = sync_steps(plan, totals, extracts)
    return summary


def sync_steps(plan: RunPlan, totals: dict[str, dict[str, int]], extracts: list[ExtractResult]) -> dict[str, Any]:
    """The run's steps, in order (inside the org lock); returns the summary."""
    for module, counts in settle_intents(plan).items():
        add_counts(totals, module, counts)
    pulled = pull_from_xero(plan, totals)
    extracts += pulled
    progress = Progress(plan)
    for module in plan.to_xero():
        extracted = extract_zoho(plan, module)
        extracts.append(extracted)
        progress.found(len(extracted.pages))
        push_module(plan, module, extracted, totals, progress)
        if module in DOCUMENT_MODULES:
            deleted = extract_zoho_deleted(plan, module)
            extracts.append(deleted)
            push_module(plan, module, deleted, totals, progress, deleted=True)
        if module in ID_WRITEBACK:
            add_counts(totals, module, writeback_ids(plan, module))
    import_from_xero(plan, pulled, totals)
    progress.finish()
    return finish_run(plan, totals, extracts)


def push_module(plan: RunPlan, module: str, extracted: ExtractResult, totals: dict[str, dict[str, int]],
                progress: Progress, *, deleted: bool = False) -> None:
    """Zoho -> Xero for one module, page by page: map, validate, load each batch, then write Xero's
    answers and the page's rejects back to Zoho."""
    for page in extracted.pages:
        mapped = map_page(plan, module, page, deleted)
        checked = validate_page(plan, mapped)
        add_counts(totals, module, checked.counts)
        if plan.dry_run:
            add_counts(totals, module, {f"would_{action}": n for action, n in checked.planned.items()})
        for batch in checked.batches:
            add_counts(totals, module, load_batch(plan, batch))
        if module in DOCUMENT_MODULES and checked.batches:
            add_counts(totals, module, writeback_pushed(plan, module, [pushed_stage(b) for b in checked.batches]))
        add_counts(totals, module, writeback_page_rejects(plan, module, mapped.stage))
        progress.advance()


def pull_from_xero(plan: RunPlan, totals: dict[str, dict[str, int]]) -> list[ExtractResult]:
    """Xero -> Zoho for linked documents changed in Xero (and those whose payments or credit notes
    changed): status, amounts, payments, numbers. Returns what was read."""
    log = get_run_logger()
    extracts: list[ExtractResult] = []
    # Only modules whose direction (the org's, narrowed by the run's) brings Xero back to Zoho: a
    # to-xero run writes nothing to Zoho but the ids and numbers of what it pushed.
    modules = set(plan.to_zoho())
    if modules & {"contacts", "vendors"}:
        extracts.append(extract_xero(plan, "Contacts"))  # imported after the push (see import_from_xero)
    invoice_like = modules & {"invoices", "sales_orders", "quotes", "payments"} or (
        "purchase_orders" in modules and plan.purchase_target == "bill")
    if invoice_like:
        invoices = extract_xero(plan, "Invoices")
        extracts.append(invoices)
        for page in invoices.pages:
            add_counts(totals, "invoices", reconcile_page(plan, "xero:Invoices", page))
        if "payments" in modules:
            payments = extract_xero(plan, "Payments")
            credit_notes = extract_xero(plan, "CreditNotes")
            extracts += [payments, credit_notes]
            affected = extract_affected_invoices(plan, [payments, credit_notes], invoices)
            for page in affected.pages:
                add_counts(totals, "payments", reconcile_page(plan, "xero:Invoices", page))
    if "purchase_orders" in modules and plan.purchase_target == "purchase_order":
        orders = extract_xero(plan, "PurchaseOrders")
        extracts.append(orders)
        for page in orders.pages:
            add_counts(totals, "purchase_orders", reconcile_page(plan, "xero:PurchaseOrders", page))
    log.info("Xero changes read: %s", ", ".join(f"{e.stream} {e.records}" for e in extracts) or "none")
    return extracts


def import_from_xero(plan: RunPlan, pulled: list[ExtractResult], totals: dict[str, dict[str, int]]) -> None:
    """Records born in Xero become Zoho records — after the push, which has linked every Xero
    record that matches a Zoho one (so a first sync never copies a customer back as a duplicate).
    Contacts first: imported invoices need their customer."""
    for extracted in pulled:
        if extracted.stream == "xero:Contacts":
            for page in extracted.pages:
                add_counts(totals, "contacts", import_contacts(plan, page))
    invoices = plan.module("invoices")
    if invoices is not None and invoices.to_zoho:
        for extracted in pulled:
            if extracted.stream == "xero:Invoices":
                for page in extracted.pages:
                    add_counts(totals, "invoices", import_invoices(plan, page))
