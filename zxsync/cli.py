"""The ``zxsync`` command. Commands are grouped by theme in ``zxsync/cli_*.py``; importing them
registers them on the one Typer app defined in :mod:`zxsync.cli_app`."""

from __future__ import annotations

import importlib

from zxsync.cli_app import app

# Each module registers its commands on ``app`` (or a command group of it) when imported.
for _module in ("zxsync.cli_core", "zxsync.cli_ops", "zxsync.cli_onboarding", "zxsync.cli_ledger",
                "zxsync.cli_events"):
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # a group not built yet must not break the others
        if exc.name != _module:
            raise

__all__ = ["app"]
