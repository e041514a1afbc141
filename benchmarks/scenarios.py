"""The benchmark scenarios of issue 11, each run through ``zxsync sync`` against the sandboxes.

a. first sync at several N (limits relaxed): calls by kind against the minimum, wall, CPU, peak
   RSS, Prefect task runs;
b. no-change and 1 %-changed runs after it: calls and writes;
c. a long load under Xero's per-minute shape (60 calls a window) with a shrunk window: utilisation
   and 429 share, from the sandbox's journal;
d. scale-out: several orgs synced at once on this box (one ``zxsync sync`` process per org, as a
   process worker runs flow runs) under shrunk per-tenant limits.

The naive baseline (e) is in benchmarks/naive.py. Every function returns plain dicts for the JSON.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Org, Stack, SyncRun, ZohoUser, ceil_div
from benchmarks.xero_rate_limit import in_flight, utilisation

#: Xero reference collections a run reads once (organisation, accounts, tax rates, themes, tracking,
#: currencies, items): what validation needs, read once per run, never per record.
XERO_REFERENCE = ("Organisation", "Accounts", "TaxRates", "BrandingThemes", "TrackingCategories", "Currencies",
                  "Items")
#: Xero change streams of the demo mapping (contacts both ways, invoices both ways, payments to Zoho).
XERO_STREAMS = ("Contacts", "Invoices", "Payments", "CreditNotes")
#: Zoho modules of the demo mapping with their field metadata read once per run.
#: Time between two scheduled runs in scenario b (virtual: the sandboxes' clocks are moved on).
GAP_SECONDS = 600
ZOHO_FIELD_MODULES = ("Accounts", "Contacts", "Vendors", "Products", "Invoices", "Purchase_Orders")


def minimum_first_sync(org: Org) -> dict[str, Any]:
    """The fewest calls that can do a first sync's work, per side and kind.

    Xero: one read per reference collection and per change stream (the tenant starts empty: one
    page each), and batch writes of 50 per entity. Zoho: one field-metadata read per module used,
    pages of 200 of each module read (accounts, their contact people, products, invoices; the
    empty vendors and purchase orders cost one read each, as do the two deleted-records reads), and
    write-back batches of 100 (Xero ids onto accounts, products and invoices).
    """
    n, a, p = org.invoices, org.accounts, org.products
    xero_writes = {"Contacts": ceil_div(a, 50), "Items": ceil_div(p, 50), "Invoices": ceil_div(n, 50)}
    xero_reads = len(XERO_REFERENCE) + len(XERO_STREAMS)
    zoho_pages = {"Accounts": ceil_div(a, 200), "Contacts": ceil_div(a, 200), "Products": ceil_div(p, 200),
                  "Invoices": ceil_div(n, 200), "Vendors": 1, "Purchase_Orders": 1, "deleted": 2}
    zoho_reads = len(ZOHO_FIELD_MODULES) + sum(zoho_pages.values())
    zoho_writes = {"Invoices": ceil_div(n, 100), "Accounts": ceil_div(a, 100), "Products": ceil_div(p, 100)}
    return {
        "xero": {"reads": xero_reads, "writes": sum(xero_writes.values()), "writes_by_entity": xero_writes,
                 "total": xero_reads + sum(xero_writes.values())},
        "zoho": {"reads": zoho_reads, "reads_by_module": zoho_pages, "writes": sum(zoho_writes.values()),
                 "writes_by_module": zoho_writes, "total": zoho_reads + sum(zoho_writes.values())},
    }


def minimum_change(changed: int) -> dict[str, Any]:
    """The fewest calls for a run that finds ``changed`` edited invoices (0 = the no-change run):
    one conditional read per stream and side, the changed records' pages, their batch writes.

    Reference data and field metadata are needed only when something is mapped; they are listed
    apart (``metadata``) so the no-change target (<= 1 read per stream) is checked on streams.
    """
    xero_streams = len(XERO_STREAMS)
    zoho_streams = 5 + 2 + 1  # 5 module reads, 2 deleted-records reads, 1 read of changed contact people
    extra_pages = max(0, ceil_div(changed, 200) - 1)
    return {
        "xero": {"stream_reads": xero_streams, "writes": ceil_div(changed, 50),
                 "metadata": len(XERO_REFERENCE) if changed else 0},
        "zoho": {"stream_reads": zoho_streams + extra_pages, "writes": 0,
                 "metadata": len(ZOHO_FIELD_MODULES)},
    }


def split_reads(run: SyncRun) -> dict[str, dict[str, int]]:
    """Reads of each side split into metadata/reference reads and stream reads."""
    xero_ref = sum(v for k, v in run.xero.by_route.items()
                   if k.startswith("GET ") and k.split("/")[-1] in XERO_REFERENCE)
    zoho_meta = sum(v for k, v in run.zoho.by_route.items() if "/settings/" in k)
    return {"xero": {"metadata": xero_ref, "stream_reads": run.xero.reads - xero_ref},
            "zoho": {"metadata": zoho_meta, "stream_reads": run.zoho.reads - zoho_meta}}


def ratio(actual: int, minimum: int) -> float | None:
    return round(actual / minimum, 3) if minimum else None


def first_sync_row(org: Org, run: SyncRun) -> dict[str, Any]:
    """Scenario a's row for one N."""
    low = minimum_first_sync(org)
    batches = sum(low["xero"]["writes_by_entity"].values())
    invoices = run.summary.get("invoices") or {}
    return {
        "n": org.invoices, "accounts": org.accounts, "products": org.products, "state": run.summary.get("state"),
        "invoices_created": invoices.get("created"), "rejects": run.summary.get("rejects"),
        "xero": run.xero.as_dict(), "zoho": run.zoho.as_dict(), "minimum": low,
        "ratio": {"xero": ratio(run.xero.total, low["xero"]["total"]),
                  "xero_writes": ratio(run.xero.writes, low["xero"]["writes"]),
                  "zoho": ratio(run.zoho.total, low["zoho"]["total"]),
                  "zoho_reads": ratio(run.zoho.reads, low["zoho"]["reads"]),
                  "zoho_writes": ratio(run.zoho.writes, low["zoho"]["writes"]),
                  "both": ratio(run.xero.total + run.zoho.total, low["xero"]["total"] + low["zoho"]["total"])},
        "wall_s": run.wall_s, "cpu_s": round(run.cpu_s, 2), "peak_rss_mib": run.peak_rss_mib,
        "rss_profile_mib": run.as_dict()["rss_profile_mib"], "support_cpu_s": run.support_cpu_s,
        "task_runs": sum(run.task_runs.values()), "task_runs_by_task": run.task_runs,
        "xero_batches_minimum": batches,
        "task_runs_per_batch": round(sum(run.task_runs.values()) / batches, 2) if batches else None,
        "error": run.stderr_tail or None,
    }


def change_invoices(st: Stack, org: Org, fraction: float) -> dict[str, Any]:
    """Edit ``fraction`` of the org's invoices in Zoho as a user would (their Subject, which the
    demo mapping sends as the Xero Reference), evenly spread, in calls of 100 records."""
    user = ZohoUser(st.zoho_url, org.zoho_org)
    ids: list[str] = []
    for page in user.pages("Invoices", ["Subject"]):
        ids += [str(r["id"]) for r in page]
    step = max(1, round(1 / fraction))
    chosen = ids[::step]
    calls = user.update("Invoices", [{"id": i, "Subject": f"Edited for the benchmark {k}"}
                                     for k, i in enumerate(chosen)])
    return {"changed": len(chosen), "edit_calls": calls}


def change_row(label: str, run: SyncRun, changed: int) -> dict[str, Any]:
    """Scenario b's row for one run."""
    low = minimum_change(changed)
    reads = split_reads(run)
    invoices = run.summary.get("invoices") or {}
    return {
        "run": label, "changed": changed, "state": run.summary.get("state"),
        "invoices": {k: invoices.get(k) for k in ("looked_at", "updated", "unchanged", "created", "rejected")},
        "xero": run.xero.as_dict(), "zoho": run.zoho.as_dict(), "reads": reads, "minimum": low,
        "writes": run.xero.writes + run.zoho.writes, "wall_s": run.wall_s, "cpu_s": round(run.cpu_s, 2),
        "peak_rss_mib": run.peak_rss_mib, "task_runs": sum(run.task_runs.values()),
        "error": run.stderr_tail or None,
    }


def first_sync_series(st: Stack, sizes: list[int], change_sizes: set[int], log: Callable[[str], None]
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scenarios a and b: for each N a fresh org, its first sync, then (for N in ``change_sizes``) a
    no-change run, a 1 %-changed run and another no-change run."""
    st.relax_limits()
    first_rows: list[dict[str, Any]] = []
    change_rows: list[dict[str, Any]] = []
    for n in sizes:
        org = st.create_org(f"first{n}", n)
        run = st.sync(org, "first")
        row = first_sync_row(org, run)
        first_rows.append(row)
        log(f"  a. N={n}: Xero {run.xero.total} calls ({row['ratio']['xero']}x min), Zoho {run.zoho.total} "
            f"({row['ratio']['zoho']}x), wall {run.wall_s:.0f} s, CPU {run.cpu_s:.0f} s, RSS {run.peak_rss_mib:.0f} MiB, "
            f"{row['task_runs']} task runs, {row['state']}")
        if n not in change_sizes:
            continue
        # Scheduled runs are hours apart: each later run starts with both sandboxes' clocks moved on
        # by twice the product's 5-minute read overlap.
        st.advance_clocks(GAP_SECONDS)
        run = st.sync(org, "nochange1")
        change_rows.append({"n": n, **change_row("no change, right after the first sync", run, 0)})
        st.advance_clocks(GAP_SECONDS)
        edit = change_invoices(st, org, 0.01)
        run = st.sync(org, "changed1pc")
        change_rows.append({"n": n, **change_row("1 % of invoices changed in Zoho", run, edit["changed"])})
        st.advance_clocks(GAP_SECONDS)
        run = st.sync(org, "nochange2")
        change_rows.append({"n": n, **change_row("no change, after the 1 % run", run, 0)})
        st.advance_clocks(GAP_SECONDS)
        run = st.sync(org, "nochange3")
        change_rows.append({"n": n, **change_row("no change, once more", run, 0)})
        for r in change_rows[-4:]:
            log(f"  b. N={n} {r['run']}: writes {r['writes']}, Xero {r['xero']['total']} calls, "
                f"Zoho {r['zoho']['total']} calls, invoices {r['invoices']}")
    return first_rows, change_rows


# --- c. utilisation under the per-minute shape --------------------------------------------------------
def _utilisation(starts: list[float], per_window: int, window: float) -> dict[str, float]:
    """``benchmarks.xero_rate_limit.utilisation``, empty when the calls span no full window."""
    if len(starts) < 2 or max(starts) - min(starts) < window:
        return {}
    return utilisation(starts, per_window, window)


def xero_utilisation(st: Stack, org: Org, run: SyncRun, per_window: int, window: float) -> dict[str, Any]:
    """Utilisation of the tenant's window over the run's Xero calls (all, and the write phase only)."""
    entries = [e for e in st.journal("xero", run.journal_from["xero"])
               if e.get("tenant") == org.xero_tenant and e["path"].startswith("/api.xro/2.0/")]
    starts = [e["started"] for e in entries]
    writes = [e["started"] for e in entries if e["method"] in ("PUT", "POST")]
    limited = sum(1 for e in entries if e["status"] == 429)
    whole = _utilisation(starts, per_window, window)
    write_phase = _utilisation(writes, per_window, window)
    span = (max(starts) - min(starts)) if starts else 0.0
    return {
        "calls": len(entries), "rate_limited": limited,
        "share_429": round(limited / len(entries), 4) if entries else None,
        "xero_span_s": round(span, 1), "full_windows": int(whole.get("windows", 0)),
        "utilisation_mean": round(whole.get("mean", 0.0), 4), "utilisation_min": round(whole.get("min", 0.0), 4),
        "busiest_rolling_window": round(whole.get("busiest", 0.0), 4),
        "write_phase_full_windows": int(write_phase.get("windows", 0)),
        "write_phase_utilisation_mean": round(write_phase.get("mean", 0.0), 4),
        "most_in_flight": in_flight([(e["started"], e["finished"]) for e in entries]) if entries else 0,
    }


def rate_limited_load(st: Stack, n: int, per_window: int, window: float, concurrent: int,
                      log: Callable[[str], None]) -> dict[str, Any]:
    """Scenario c: a first sync of ``n`` invoices with Xero at ``per_window`` calls per ``window`` s."""
    st.relax_limits()
    org = st.create_org(f"load{n}w{int(window)}", n)
    st.xero_limits(per_window, window, concurrent)
    try:
        run = st.sync(org, f"load-w{window:g}")
    finally:
        st.relax_limits()
    u = xero_utilisation(st, org, run, per_window, window)
    row = {"n": n, "per_window": per_window, "window_s": window, "concurrent": concurrent,
           "state": run.summary.get("state"), "wall_s": run.wall_s, "cpu_s": round(run.cpu_s, 2),
           "xero_calls": run.xero.total, "xero_writes": run.xero.writes, **u,
           "error": run.stderr_tail or None}
    log(f"  c. N={n}, {per_window} calls / {window:g} s: utilisation {u['utilisation_mean']:.1%} over "
        f"{u['full_windows']} windows (write phase {u['write_phase_utilisation_mean']:.1%}), "
        f"429s {u['rate_limited']}/{u['calls']}, {row['state']}")
    return row


# --- d. scale-out --------------------------------------------------------------------------------------
def scale_out(st: Stack, counts: list[int], n: int, per_window: int, window: float,
              log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Scenario d: ``k`` orgs synced at the same time on this box, one ``zxsync sync`` process each
    (what a process work pool's worker does with flow runs), every tenant limited to ``per_window``
    calls per ``window`` s. Per k: did all complete, per-tenant utilisation and 429s, wall time,
    CPU of the sync processes and of the box's services."""
    rows = []
    for k in counts:
        st.relax_limits()
        orgs = [st.create_org(f"fleet{k}x{i}", n) for i in range(k)]
        st.xero_limits(per_window, window, 5)
        results: dict[str, SyncRun] = {}
        support_before = st.support_cpu()

        def one(org: Org, label: str = f"fleet{k}", into: dict[str, SyncRun] = results) -> None:
            into[org.slug] = st.sync(org, label)

        began = time.monotonic()
        threads = [threading.Thread(target=one, args=(o,)) for o in orgs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        support = {name: round(v - support_before.get(name, 0.0), 1) for name, v in st.support_cpu().items()}
        st.relax_limits()
        per_org = []
        for org in orgs:
            run = results[org.slug]
            u = xero_utilisation(st, org, run, per_window, window)
            per_org.append({"org": org.slug, "state": run.summary.get("state"), "wall_s": run.wall_s,
                            "cpu_s": round(run.cpu_s, 2), "peak_rss_mib": run.peak_rss_mib,
                            "xero_calls": run.xero.total, **u, "error": run.stderr_tail or None})
        completed = sum(1 for r in per_org if r["state"] == "COMPLETED")
        sync_cpu = sum(r["cpu_s"] for r in per_org)
        row = {"orgs": k, "n_per_org": n, "per_window": per_window, "window_s": window, "completed": completed,
               "wall_s": round(wall, 1), "sync_cpu_s": round(sync_cpu, 1), "support_cpu_s": support,
               "xero_calls": sum(r["xero_calls"] for r in per_org),
               "rate_limited": sum(r["rate_limited"] for r in per_org),
               "utilisation_mean": round(sum(r["utilisation_mean"] for r in per_org) / k, 4),
               "write_phase_utilisation_mean": round(sum(r["write_phase_utilisation_mean"] for r in per_org) / k, 4),
               "peak_rss_mib_max": max(r["peak_rss_mib"] for r in per_org), "per_org": per_org}
        rows.append(row)
        log(f"  d. {k} org(s) at once: {completed}/{k} completed in {wall:.0f} s, per-tenant utilisation "
            f"{row['utilisation_mean']:.1%} (write phase {row['write_phase_utilisation_mean']:.1%}), "
            f"429s {row['rate_limited']}, sync CPU {sync_cpu:.0f} s, services CPU {support}")
    return rows
