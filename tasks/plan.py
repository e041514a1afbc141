"""What one run will do: the modules and directions, the window, the run's id — decided once.

``begin_run`` turns the org file and the run options into a small :class:`RunPlan` that every
later task receives; ``finish_run`` moves the watermarks forward and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from prefect import get_run_logger, task
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows.options import MODULE_ORDER, ModuleName, RunOptions, Window
from mappings import load_org
from tasks import runtime

#: Records modified this long before a watermark are read again: clocks and commit order differ.
OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class ModuleSpec:
    """How a product module maps onto Zoho modules, ledger entities and Xero collections."""

    zoho: str
    entity: str
    xero: str


def module_spec(name: str, purchase_target: str = "purchase_order") -> ModuleSpec:
    """The Zoho module, ledger entity and Xero collection behind a product module."""
    if name == "purchase_orders":
        return (ModuleSpec("Purchase_Orders", "bill", "Invoices") if purchase_target == "bill"
                else ModuleSpec("Purchase_Orders", "purchase_order", "PurchaseOrders"))
    return {
        "contacts": ModuleSpec("Accounts", "contact", "Contacts"),
        "vendors": ModuleSpec("Vendors", "contact", "Contacts"),
        "products": ModuleSpec("Products", "item", "Items"),
        "invoices": ModuleSpec("Invoices", "invoice", "Invoices"),
        "sales_orders": ModuleSpec("Sales_Orders", "sales_order", "Invoices"),
        "quotes": ModuleSpec("Quotes", "quote", "Invoices"),
        "payments": ModuleSpec("Invoices", "payment", "Payments"),
    }[name]


class ModulePlan(BaseModel):
    """One module in this run and which ways it flows."""

    name: ModuleName
    to_xero: bool
    to_zoho: bool


class RunPlan(BaseModel):
    """Everything later tasks need to know about the run (small: it is persisted with results)."""

    org: str
    run_id: str
    modules: list[ModulePlan]
    window: Window
    dry_run: bool
    trigger: str
    started_at: datetime
    purchase_target: Literal["purchase_order", "bill"] = "purchase_order"

    def module(self, name: str) -> ModulePlan | None:
        return next((m for m in self.modules if m.name == name), None)

    def to_xero(self) -> list[str]:
        """Modules pushed to Xero, in dependency order."""
        return [m.name for m in self.modules if m.to_xero and m.name != "payments"]

    def to_zoho(self) -> list[str]:
        """Modules whose Xero state comes back to Zoho."""
        return [m.name for m in self.modules if m.to_zoho]

    def spec(self, name: str) -> ModuleSpec:
        return module_spec(name, self.purchase_target)


def current_run_id() -> str:
    """The Prefect flow run's id (stable across a UI Retry of the same run)."""
    run_id = flow_run.get_id()
    if run_id is None:
        raise RuntimeError("sync tasks must run inside a flow run")
    return str(run_id)


@task(name="begin-run", persist_result=True)
def begin_run(org: str, options: RunOptions) -> RunPlan:
    """Read the org file, decide the modules, directions and window, and open the run in the ledger."""
    config = load_org(org)
    run_id = current_run_id()
    wanted = set(options.modules) or set(MODULE_ORDER)
    modules: list[ModulePlan] = []
    for name in MODULE_ORDER:
        setting = getattr(config.modules, name)
        if not setting.enabled or name not in wanted:
            continue
        to_xero = setting.direction in ("to-xero", "both") and options.direction in ("to-xero", "both")
        to_zoho = setting.direction in ("to-zoho", "both") and options.direction in ("to-zoho", "both")
        if to_xero or to_zoho:
            modules.append(ModulePlan(name=name, to_xero=to_xero, to_zoho=to_zoho))
    started = datetime.now(UTC)
    runtime.ledger().start_run(org, run_id, window=f"{options.trigger} · {options.label()}", started_at=started)
    plan = RunPlan(org=org, run_id=run_id, modules=modules, window=options.window, dry_run=options.dry_run,
                   trigger=options.trigger, started_at=started,
                   purchase_target=config.modules.purchase_orders.target)
    get_run_logger().info("Run %s of %s: to Xero %s; to Zoho %s; window %s%s", run_id, org,
                          ", ".join(plan.to_xero()) or "nothing", ", ".join(plan.to_zoho()) or "nothing",
                          options.window.label, " (dry run: nothing is written)" if plan.dry_run else "")
    return plan


def window_since(plan: RunPlan, stream: str) -> datetime | None:
    """Where a stream's read starts: its watermark minus the overlap, or N days back; None = all."""
    if plan.window.kind == "last-days":
        assert plan.window.days is not None
        return plan.started_at - timedelta(days=plan.window.days)
    mark = runtime.ledger().get_watermark(plan.org, stream)
    return None if mark is None else mark - OVERLAP
