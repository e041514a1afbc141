"""Validate: settle what a mapped page may send, journal every reject, and cut the rest into batches.

The pre-flight checks against the org's live reference data ran inside the mapping engine, over
the same DataFrames (accounts, tax types, currencies, tracking, lock dates, lengths, picklists);
here every reject is recorded with its reason and fix hint — and so are the records deliberately
skipped — without ever blocking the good records beside them. What remains is split into
requests of at most 50 elements and 3.5 MB, ready for ``load``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import get_run_logger, task
from pydantic import BaseModel

from ledger import JournalEntry
from mappings import Reject
from tasks import runtime
from tasks.plan import RunPlan
from tasks.retry import TRANSIENT
from tasks.staging import BatchRef, MappedPage, document_to_json, mapping_from_stage


class ValidatedPage(BaseModel):
    """Batches ready to load, and what the page held."""

    module: str
    batches: list[BatchRef]
    counts: dict[str, int]
    #: For a dry run: what would be written, by action.
    planned: dict[str, int] = {}


#: Entities whose would-be creations a dry run remembers, so the documents using them map too.
DRY_RUN_PLACEHOLDERS = ("contact", "item")


def dry_run_stage(entity: str) -> str:
    return f"dry-run:creates:{entity}"


def remember_dry_run_creates(plan: RunPlan, entity: str, zoho_ids: list[str]) -> None:
    """A dry run creates nothing; the documents of the same run still need to know which of their
    contacts and items the run *would* create (else every invoice of a first run is 'deferred')."""
    ledger = runtime.ledger()
    try:
        known = ledger.stage_get(plan.org, plan.run_id, dry_run_stage(entity))
    except KeyError:
        known = []
    ledger.stage_put(plan.org, plan.run_id, dry_run_stage(entity), known + [{"zoho_id": z} for z in zoho_ids])


def dry_run_creates(plan: RunPlan, entity: str) -> set[str]:
    """Zoho ids this dry run would create in Xero (empty for a real run)."""
    if not plan.dry_run:
        return set()
    try:
        return {r["zoho_id"] for r in runtime.ledger().stage_get(plan.org, plan.run_id, dry_run_stage(entity))}
    except KeyError:
        return set()


def link_state_for(reject: Reject) -> str:
    """The link state a blocking reject leaves: locked (reported, not retried), deferred or rejected."""
    if reject.rule == "lock.paid":
        return "locked-paid"
    if reject.rule == "lock.part_paid":
        return "locked-part-paid"
    if reject.rule.startswith("lock.") or reject.rule == "cancel.locked":
        return "locked"
    return "deferred" if reject.deferred else "rejected"


def _first_blocking(rejects: list[Reject]) -> dict[str, Reject]:
    """Each refused record's first blocking reject (the one its link state follows)."""
    first: dict[str, Reject] = {}
    for r in rejects:
        if r.blocking:
            first.setdefault(r.record_id, r)
    return first


def record_rejects(plan: RunPlan, entity: str, rejects: list[Reject], *, update_links: bool = True) -> int:
    """Journal rejects (and warnings) and mark the records so the next run reads them again."""
    if not rejects:
        return 0
    ledger = runtime.ledger()
    entries = [JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=r.record_id,
                            action="reject" if r.blocking else "warn",
                            outcome=("deferred" if r.deferred else "rejected") if r.blocking else "warning",
                            rule=r.rule, field=r.field, message=r.message, hint=r.hint)
               for r in rejects]
    first = _first_blocking(rejects)
    with ledger.atomic():
        ledger.record(entries)
        if update_links and first:
            existing = ledger.links_by_zoho(plan.org, entity, list(first))
            rows = []
            for zoho_id, r in first.items():
                link = existing.get(zoho_id)
                extra = dict((link.extra if link else None) or {})
                extra["reason"] = r.reason
                extra["rule"] = r.rule
                rows.append({"zoho_id": zoho_id, "state": link_state_for(r), "extra": extra,
                             **({"zoho_number": r.record_number} if r.record_number else {})})
            ledger.upsert_links(plan.org, entity, rows)
    return len(first)


def reject_counts(rejects: list[Reject]) -> Counter[str]:
    """Records refused, by the state they are left in: ``rejected``, ``deferred`` or ``locked``
    (one per record, as :func:`record_rejects` marks them; warnings don't count)."""
    first = _first_blocking(rejects)
    return Counter("locked" if (state := link_state_for(r)).startswith("locked") else state for r in first.values())


@task(name="validate", persist_result=True, **TRANSIENT)
def validate_page(plan: RunPlan, mapped: MappedPage) -> ValidatedPage:
    """Journal the page's rejects and skips, and stage its documents as load batches."""
    log = get_run_logger()
    ledger = runtime.ledger()
    spec = plan.spec(mapped.module)
    result = mapping_from_stage(plan, mapped.stage)
    record_rejects(plan, spec.entity, result.rejects, update_links=not plan.dry_run)
    if result.skipped:
        ledger.record([JournalEntry(org=plan.org, run_id=plan.run_id, entity=spec.entity, zoho_id=s.zoho_id,
                                    action="skip", outcome="skipped", message=s.reason) for s in result.skipped])
    counts = Counter({"unchanged": len(result.unchanged), "rejected": 0, "skipped": len(result.skipped)})
    counts.update(reject_counts(result.rejects))
    by_action: dict[str, list[Any]] = {}
    for doc in result.documents:
        by_action.setdefault(doc.action, []).append(doc)
    planned = {action: len(docs) for action, docs in by_action.items()}
    for reject in result.rejects:
        if reject.blocking:
            log.info("Rejected %s", reject.message)
    if plan.dry_run:
        if spec.entity in DRY_RUN_PLACEHOLDERS and by_action.get("create"):
            remember_dry_run_creates(plan, spec.entity, [d.zoho_id for d in by_action["create"]])
        log.info("Dry run, %s page %s: would %s", spec.zoho, mapped.page,
                 ", ".join(f"{a} {n}" for a, n in planned.items()) or "change nothing")
        return ValidatedPage(module=mapped.module, batches=[], counts=dict(counts), planned=planned)
    xero = runtime.xero(plan.org)
    batches: list[BatchRef] = []
    for action, docs in by_action.items():
        elements = {d.zoho_id: d.payload for d in docs}
        by_id = {d.zoho_id: d for d in docs}
        planned_batches, too_big = xero.plan_batches(spec.xero, elements)
        if too_big:
            record_rejects(plan, spec.entity, [_too_big(plan, by_id[k], size) for k, size in too_big])
            counts["rejected"] += len(too_big)
        for n, batch in enumerate(planned_batches, start=1):
            name = f"{mapped.stage}:{action}:{n:03d}"
            ledger.stage_put(plan.org, plan.run_id, name, [document_to_json(by_id[k]) for k, _ in batch])
            batches.append(BatchRef(module=mapped.module, entity=spec.entity, action=action, stage=name,
                                    size=len(batch)))
    return ValidatedPage(module=mapped.module, batches=batches, counts=dict(counts), planned=planned)


def _too_big(plan: RunPlan, doc: Any, size: int) -> Reject:
    return Reject(org=plan.org, module=doc.module, record_id=doc.zoho_id, record_number=doc.number,
                  rule="xero.too_large", reason=f"the record is {size} bytes of JSON, more than one Xero request "
                  "may carry (3.5 MB)", hint="Split the record in Zoho (fewer lines or shorter descriptions)")
