"""The architecture's import rules, checked on the source (architecture.md, "Rooms")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("zxsync", "connectors", "mappings", "ledger", "tasks", "flows", "deployments")


def imports(folder: str) -> dict[str, set[str]]:
    """Top-level package names each module under ``folder`` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_connectors_import_no_prefect_nor_upper_rooms() -> None:
    for module, names in imports("connectors").items():
        assert not names & {"prefect", "mappings", "tasks", "flows", "ledger", "deployments"}, module


def test_sandbox_imports_nothing_from_the_product() -> None:
    for module, names in imports("sandbox").items():
        assert not names & set(PRODUCT), module


def test_mappings_do_no_io() -> None:
    forbidden = {"prefect", "requests", "sqlalchemy", "ledger", "connectors", "tasks", "flows", "socket",
                 "urllib", "httpx"}
    for module, names in imports("mappings").items():
        assert not names & forbidden, module


def test_only_the_ledger_touches_the_database() -> None:
    for folder in ("connectors", "mappings", "tasks", "flows", "deployments"):
        for module, names in imports(folder).items():
            assert "sqlalchemy" not in names and "alembic" not in names, module


def test_flows_only_orchestrate_tasks() -> None:
    for module, names in imports("flows").items():
        assert not names & {"connectors", "ledger", "requests", "sqlalchemy"}, module
