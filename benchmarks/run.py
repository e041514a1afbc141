"""Run the benchmarks of issue 11 and regenerate docs/benchmarks.md (``make bench``).

    python -m benchmarks.run                  # everything: tens of minutes (N up to 50,000)
    BENCH_QUICK=1 python -m benchmarks.run    # a few minutes; results in benchmarks/results/quick/
    python -m benchmarks.run --only a,e       # some scenarios (a+b share runs: "a" includes b)

Scenarios (benchmarks/scenarios.py, benchmarks/naive.py): a. first sync at N = 1,000, 10,000,
50,000; b. no-change and 1 %-changed runs (N = 1,000 and 10,000); c. a long load at 60 Xero calls
per shrunk window; d. several orgs at once on this box; e. the naive per-record baseline. Each
writes ``benchmarks/results/<name>.json``; the page and its chart are then rendered from all the
JSON files there (benchmarks/report.py), so a partial run refreshes only its own numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.harness import machine, stack

RESULTS = Path(__file__).resolve().parent / "results"

FULL: dict[str, Any] = {
    "sizes": [1000, 10000, 50000], "change_sizes": [1000, 10000],
    "load": {"n": 20000, "per_window": 60, "window": 30.0, "concurrent": 5},
    "fleet": {"counts": [1, 2, 4], "n": 3000, "per_window": 30, "window": 15.0},
    "naive": 1000,
}
QUICK: dict[str, Any] = {
    "sizes": [1000, 3000], "change_sizes": [1000],
    "load": {"n": 5000, "per_window": 60, "window": 20.0, "concurrent": 5},
    "fleet": {"counts": [1, 2], "n": 1000, "per_window": 20, "window": 10.0},
    "naive": 1000,
}


def log(text: str) -> None:
    print(text, flush=True)


def save(folder: Path, name: str, data: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="a,c,d,e", help="scenarios to run: a (with b), c, d, e")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    folder = RESULTS / "quick" if args.quick else RESULTS
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    began = datetime.now(UTC)
    meta = {"machine": machine(), "started": began.strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
            "config": config}
    log(f"zxsync benchmarks ({'quick' if args.quick else 'full'}): {', '.join(sorted(wanted))} on "
        f"{meta['machine']['nproc']} CPUs, {meta['machine']['memory_gib']} GiB, Python {meta['machine']['python']}")
    failures = 0
    with stack(keep=args.keep, log=log) as st:
        from benchmarks import naive, scenarios

        steps = {
            "a": lambda: scenarios.first_sync_series(st, config["sizes"], set(config["change_sizes"]), log),
            "c": lambda: [scenarios.rate_limited_load(st, log=log, **config["load"])],
            "d": lambda: scenarios.scale_out(st, log=log, **config["fleet"]),
            "e": lambda: _naive(st, config["naive"], naive),
        }
        for key in ("a", "c", "d", "e"):
            if key not in wanted:
                continue
            t0 = time.monotonic()
            log(f"scenario {key}:")
            try:
                result = steps[key]()
            except Exception:  # noqa: BLE001 - one scenario's failure must not lose the others
                failures += 1
                log(traceback.format_exc())
                continue
            if key == "a":
                save(folder, "first_sync", result[0])
                if result[1]:
                    save(folder, "changes", result[1])
            else:
                save(folder, {"c": "rate_limit", "d": "scale_out", "e": "naive"}[key], result)
            log(f"  ({time.monotonic() - t0:.0f} s)")
    meta["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    save(folder, "machine", meta)
    if args.quick:
        text = report.write(folder, None, None)
        log("\n" + text)
    else:
        report.write(folder, report.DOCS, report.CHART)
        log(f"wrote {report.DOCS.relative_to(report.REPO)} and {report.CHART.relative_to(report.REPO)}")
    return 1 if failures else 0


def _naive(st: Any, n: int, naive: Any) -> dict[str, Any]:
    st.relax_limits()
    org = st.create_org(f"naive{n}", n)
    result = naive.naive_sync(st, org)
    log(f"  e. naive N={n}: {result['total_calls']:,} calls (Xero {result['xero']['total']:,}, Zoho "
        f"{result['zoho']['total']:,}) in {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    sys.exit(main())
