"""Benchmark: map and validate 10,000 Zoho invoices of 5 lines each (a script, not a test).

    .venv/bin/python benchmarks/map_validate.py [--invoices 10000] [--lines 5] [--page 200]

The invoices are generated deterministically (seeded), with the demo organisation's mapping
(orgs/demo.yaml) and a demo-like Xero reference data set built here. It runs the engine twice:
in pages of 200 records (how the sync runs) and as one batch, and prints records per second and
peak memory (tracemalloc for the Python heap during the run, getrusage for the process peak RSS).
Wall and CPU time are both printed: on a shared machine the CPU figure is the stable one.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import resource
import sys
import time
import tracemalloc
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd

from mappings import ReferenceData, load_org_file, map_invoices

REPO = Path(__file__).resolve().parent.parent
PRODUCTS = [
    ("p1", "Router", "HW-001", "Hardware", "120.00"),
    ("p2", "Cable", "HW-002", "Hardware", "0.1234"),
    ("p3", "Licence", "SW-001", "Software", "499.00"),
    ("p4", "Installation", "SV-001", "Services", "95.50"),
    ("p5", "Support hour", "SV-002", "Services", "150.00"),
]
TAXES = [("GST 15%", Decimal(15)), ("Zero Rated", Decimal(0))]
LINES = 5


def reference() -> ReferenceData:
    def acc(code: str, cls: str, system: str | None = None, status: str = "ACTIVE") -> dict[str, Any]:
        return {"Code": code, "Name": code, "Class": cls, "Status": status, "SystemAccount": system}

    def tax(tt: str, rate: str, **can: bool) -> dict[str, Any]:
        return {
            "TaxType": tt,
            "Name": tt,
            "Status": "ACTIVE",
            "EffectiveRate": rate,
            **{f"CanApplyTo{k}": v for k, v in can.items()},
        }

    return ReferenceData.from_api(
        organisation={
            "BaseCurrency": "NZD",
            "Timezone": "NEWZEALANDSTANDARDTIME",
            "PeriodLockDate": "/Date(1743379200000+0000)/",
            "EndOfYearLockDate": "2025-03-31",
        },
        accounts=[
            acc("200", "REVENUE"),
            acc("210", "REVENUE"),
            acc("220", "REVENUE"),
            acc("260", "REVENUE"),
            acc("300", "EXPENSE"),
            acc("429", "EXPENSE"),
            acc("610", "ASSET", "DEBTORS"),
            acc("860", "LIABILITY", "ROUNDING"),
        ],
        tax_rates=[
            tax("OUTPUT2", "15", Revenue=True),
            tax("INPUT2", "15", Expenses=True),
            tax("ZERORATED", "0", Revenue=True),
            tax("NONE", "0", Revenue=True, Expenses=True, Liabilities=True, Assets=True, Equity=True),
        ],
        branding_themes=[
            {"BrandingThemeID": "t0", "Name": "Standard", "SortOrder": 0},
            {"BrandingThemeID": "t1", "Name": "Special Projects", "SortOrder": 1},
            {"BrandingThemeID": "t2", "Name": "Very orange invoice!", "SortOrder": 2},
        ],
        tracking_categories=[
            {
                "Name": "Region",
                "Options": [{"Name": n} for n in ("North", "South", "Eastside", "West Coast")],
            },
            {"Name": "Department", "Options": [{"Name": n} for n in ("Sales", "Services", "Support")]},
        ],
        currencies=[{"Code": c} for c in ("NZD", "AUD", "USD")],
    )


def r2(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def invoices(n: int, lines: int, seed: int = 20250701) -> list[dict[str, Any]]:
    """Deterministic Zoho invoices with Zoho's own line arithmetic (docs/demo-universe.md)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        rows, sub = [], Decimal(0)
        for j in range(lines):
            pid, name, code, _cat, price = PRODUCTS[rnd.randrange(len(PRODUCTS))]
            qty = Decimal(rnd.randrange(1, 400)) / 4
            lp = Decimal(price)
            disc = r2(Decimal(rnd.randrange(0, 500)) / 100) if rnd.random() < 0.2 else Decimal(0)
            tname, pct = TAXES[0] if rnd.random() < 0.85 else TAXES[1]
            after = r2(qty * lp) - disc
            t = r2(after * pct / 100)
            sub += after + t
            rows.append(
                {
                    "id": f"{4150868000000000000 + i * 10 + j}",
                    "Product_Name": {"id": pid, "name": name},
                    "Product_Code": code,
                    "Quantity": float(qty),
                    "List_Price": float(lp),
                    "Discount": float(disc),
                    "Line_Tax": [{"name": tname, "percentage": float(pct), "value": float(t)}],
                    "Description": f"{name} for project {i % 97}",
                }
            )
        hd = r2(sub * Decimal("0.02")) if rnd.random() < 0.1 else Decimal(0)
        adj = Decimal(rnd.randrange(-100, 100)) / 100 if rnd.random() < 0.1 else Decimal(0)
        out.append(
            {
                "id": f"{4150868000100000000 + i}",
                "Subject": f"Order {i}",
                "Invoice_Number": f"INV-{i:06d}",
                "Status": rnd.choice(["Created", "Approved", "Delivered"]),
                "Invoice_Date": "2025-07-01",
                "Due_Date": "2025-07-31",
                "Currency": rnd.choice(["NZD"] * 8 + ["AUD", "USD"]),
                "Exchange_Rate": 1.0,
                "Account_Name": {"id": f"acc-{i % 400}", "name": f"Customer {i % 400}"},
                "Billing_State": rnd.choice(["Auckland", "Wellington", "Otago", "Gisborne"]),
                "Invoiced_Items": rows,
                "Sub_Total": float(sub),
                "Discount": float(hd),
                "Adjustment": float(adj),
                "Excise_Duty": 0.0,
                "Tax": 0.0,
                "Grand_Total": float(sub - hd + adj),
            }
        )
    return out


def _pass(pages: list[list[dict[str, Any]]], **kw: Any) -> tuple[int, int]:
    created = rejected = 0
    for page in pages:
        res = map_invoices(page, **kw)
        created += len(res.documents)
        rejected += len(res.rejected_ids)
    return created, rejected


def run(label: str, pages: list[list[dict[str, Any]]], **kw: Any) -> None:
    """Time one pass (no tracing: tracemalloc slows Python down), then measure a traced pass."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    created, rejected = _pass(pages, **kw)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.collect()
    tracemalloc.start()
    _pass(pages, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = sum(len(p) for p in pages)
    print(
        f"{label:<16} {total:>6} invoices in {elapsed:6.2f} s wall = {total / elapsed:6.0f} records/s "
        f"({total * LINES / elapsed:6.0f} lines/s); CPU {cpu:6.2f} s = {total / cpu:6.0f} records/s; "
        f"{created} documents, {rejected} rejects; peak traced heap {peak / 2**20:6.1f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--invoices", type=int, default=10_000)
    ap.add_argument("--lines", type=int, default=5)
    ap.add_argument("--page", type=int, default=200)
    args = ap.parse_args()
    global LINES
    LINES = args.lines
    org = load_org_file(REPO / "orgs" / "demo.yaml")
    ref = reference()
    data = invoices(args.invoices, args.lines)
    contact_links = {f"acc-{k}": f"xc-{k}" for k in range(400)}
    kw = dict(
        org=org,
        ref=ref,
        contact_links=contact_links,
        products=[
            {"id": p, "Product_Name": n, "Product_Code": c, "Product_Category": cat}
            for p, n, c, cat, _ in PRODUCTS
        ],
    )
    print(
        f"map + validate {args.invoices} invoices x {args.lines} lines (Python {platform.python_version()}, "
        f"pandas {pd.__version__}, {platform.machine()})"
    )
    map_invoices(data[:50], **kw)  # warm-up: imports, caches
    run(f"pages of {args.page}", [data[i : i + args.page] for i in range(0, len(data), args.page)], **kw)
    run("one batch", [data], **kw)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"process peak RSS {rss / 1024:.1f} MiB (getrusage)")


if __name__ == "__main__":
    main()
