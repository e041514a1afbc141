"""mappings/ does no I/O: no network, database or Prefect imports; only the config loader reads a file."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from zxsync.settings import REPO_ROOT

FORBIDDEN = {
    "prefect",
    "requests",
    "httpx",
    "urllib3",
    "socket",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "sqlite3",
    "connectors",
    "ledger",
    "tasks",
    "flows",
    "sandbox",
    "deployments",
    "subprocess",
    "fastapi",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_forbidden_imports() -> None:
    for path in sorted((REPO_ROOT / "mappings").glob("*.py")):
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {bad}"


def test_only_the_config_loader_touches_files() -> None:
    for path in sorted((REPO_ROOT / "mappings").glob("*.py")):
        text = path.read_text()
        if path.name == "config.py":
            continue
        for needle in ("open(", ".read_text(", ".write_text(", "read_bytes(", "os.environ"):
            assert needle not in text, f"{path.name} uses {needle}"


def test_importing_mappings_does_not_import_prefect() -> None:
    code = "import sys, mappings; print('prefect' in sys.modules, 'sqlalchemy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
