"""The reliability suite's table: faults injected, runs needed to converge, duplicates, records lost.

    python -m benchmarks.chaos            # the long version (ZX_CHAOS=full), then the table
    python -m benchmarks.chaos --reduced  # the CI-sized version

Runs ``pytest -m chaos`` (the tests in tests/test_chaos*.py, test_reliability*.py,
test_hostile*.py, test_token_races*.py, test_ledger_outage*.py) with ``ZX_CHAOS_REPORT`` pointing
at a temporary file: every scenario appends one JSON row to it (:func:`record_row`), and the
table is printed from those rows. ``make chaos`` runs the same tests; each test also prints its
own rows to the terminal as it finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COLUMNS = (("scenario", "scenario"), ("size", "size"), ("faults", "faults injected"), ("runs", "runs to converge"),
           ("duplicates", "duplicates"), ("lost", "records lost"), ("differing", "fields differing"),
           ("outcome", "outcome"))


def faults_text(injected: Mapping[str, int] | None) -> str:
    """``429:3 500:2 drop_after_commit:1`` (kinds in a stable order), or ``-``."""
    if not injected:
        return "-"
    return " ".join(f"{k}:{v}" for k, v in sorted(injected.items()) if v) or "-"


def format_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A plain-text table of scenario rows (markdown-compatible)."""
    rows = list(rows)
    cells = [[str(r.get(key, "")) if key != "faults" else faults_text(r.get("faults")) for key, _ in COLUMNS]
             for r in rows]
    heads = [title for _, title in COLUMNS]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"

    return "\n".join([line(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def record_row(row: Mapping[str, Any]) -> None:
    """Append one scenario's row to ``ZX_CHAOS_REPORT`` (when set)."""
    target = os.environ.get("ZX_CHAOS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(dict(row), default=str) + "\n")


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reduced", action="store_true", help="the CI-sized version instead of the long one")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k token)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zx-chaos-") as tmp:
        report = Path(tmp) / "rows.jsonl"
        env = {**os.environ, "ZX_CHAOS_REPORT": str(report), "ZX_CHAOS": "reduced" if args.reduced else "full"}
        code = subprocess.call([sys.executable, "-m", "pytest", "tests", "-m", "chaos", "-p", "no:cacheprovider",
                                "-q", *args.pytest_args], cwd=REPO, env=env)
        rows = read_rows(report)
    print()
    print(format_table(rows) if rows else "no scenario reported a row")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
