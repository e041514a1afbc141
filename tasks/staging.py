"""Mapping results and batches in and out of the ledger's stage (JSON, small keys between tasks)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel

from mappings import Document, MappingResult, Reject
from mappings.results import Skip
from tasks import runtime
from tasks.plan import RunPlan


def document_to_json(doc: Document) -> dict[str, Any]:
    data = asdict(doc)
    data["line_keys"] = list(doc.line_keys)
    return data


def document_from_json(data: dict[str, Any]) -> Document:
    return Document(**{**data, "line_keys": tuple(data.get("line_keys") or ())})


def mapping_to_stage(plan: RunPlan, name: str, result: MappingResult) -> str:
    """Stage a page's mapping result under ``name``."""
    body = {"entity": result.entity, "module": result.module,
            "documents": [document_to_json(d) for d in result.documents],
            "unchanged": [{"zoho_id": d.zoho_id, "xero_id": d.xero_id, "number": d.number} for d in result.unchanged],
            "rejects": [r.model_dump() for r in result.rejects],
            "skipped": [asdict(s) for s in result.skipped]}
    return runtime.ledger().stage_put(plan.org, plan.run_id, name, [body])


def mapping_from_stage(plan: RunPlan, name: str) -> MappingResult:
    body = runtime.ledger().stage_get(plan.org, plan.run_id, name)[0]
    return MappingResult(
        entity=body["entity"], module=body["module"],
        documents=[document_from_json(d) for d in body["documents"]],
        unchanged=[Document(entity=body["entity"], module=body["module"], zoho_id=u["zoho_id"], number=u["number"],
                            action="unchanged", xero_id=u["xero_id"], payload={}, content_hash="")
                   for u in body["unchanged"]],
        rejects=[Reject.model_validate(r) for r in body["rejects"]],
        skipped=[Skip(**s) for s in body["skipped"]])


class MappedPage(BaseModel):
    """Where a page's mapping result is staged, and its counts."""

    module: str
    page: str
    stage: str
    counts: dict[str, int]


class BatchRef(BaseModel):
    """One batch of documents to send to Xero in one request."""

    module: str
    entity: str
    action: str
    stage: str
    size: int
