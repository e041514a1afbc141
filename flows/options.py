"""The parameters of a sync run: what support staff pick in the Prefect UI's "Run" form.

They are pydantic models, so the UI renders them as a form (modules, direction, window, dry run)
and the server rejects malformed values before a run starts. Secrets are never parameters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

ModuleName = Literal["contacts", "vendors", "products", "invoices", "purchase_orders", "sales_orders",
                     "quotes", "payments"]
DirectionName = Literal["to-xero", "to-zoho", "both"]

#: Dependency order inside a run: contacts and items before the documents that use them.
MODULE_ORDER: tuple[ModuleName, ...] = ("contacts", "vendors", "products", "invoices", "purchase_orders",
                                        "sales_orders", "quotes", "payments")


class Window(BaseModel):
    """Which records a run looks at."""

    kind: Literal["since-last-run", "last-days", "record-ids"] = Field(
        default="since-last-run",
        description="since-last-run: what changed since the last successful run (the default); "
                    "last-days: everything modified in the last N days (the rerun tool); "
                    "record-ids: only the listed Zoho or Xero record ids")
    days: int | None = Field(default=None, ge=1, le=3650, description="for last-days")
    record_ids: list[str] = Field(default_factory=list, description="for record-ids: Zoho ids or Xero ids")

    @model_validator(mode="after")
    def _complete(self) -> Window:
        if self.kind == "last-days" and self.days is None:
            raise ValueError("window kind last-days needs days")
        if self.kind == "record-ids" and not self.record_ids:
            raise ValueError("window kind record-ids needs record_ids")
        return self

    @property
    def label(self) -> str:
        """Short text for run names: since-last, last-7-days, 3-records."""
        if self.kind == "last-days":
            return f"last-{self.days}-days"
        if self.kind == "record-ids":
            return f"{len(self.record_ids)}-records"
        return "since-last"


class RunOptions(BaseModel):
    """How to run one sync of one organisation."""

    modules: list[ModuleName] = Field(
        default_factory=list, description="modules to sync; empty = every module the org enables")
    direction: DirectionName = Field(
        default="both", description="to-xero, to-zoho or both (each module's own direction still applies)")
    window: Window = Field(default_factory=Window)
    dry_run: bool = Field(default=False, description="map and validate, write nothing, report what would change")
    trigger: Literal["schedule", "manual", "event", "cli"] = Field(
        default="manual", description="who started the run (shown in the run name and tags)")

    def label(self) -> str:
        """``both · since-last`` (plus ``· dry-run``)."""
        parts = [self.direction, self.window.label] + (["dry-run"] if self.dry_run else [])
        return " · ".join(parts)
