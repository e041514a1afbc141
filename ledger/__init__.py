"""The product's sync state: connections, locks, links, watermarks, journal, intents, runs.

The only code that touches the product database (SQLite by default, PostgreSQL in production).
Open it with ``Ledger.open()``; it migrates itself to the newest schema.
"""

from ledger.connections import LedgerCredentialStore, refresh_lock_name
from ledger.errors import (
    LeaseBusy,
    LeaseLost,
    LedgerError,
    LedgerKeyError,
    LinkConflict,
    OrgBusy,
    StaleConnection,
)
from ledger.links import LINK_FIELDS
from ledger.locks import Lease, default_holder
from ledger.schemas import (
    Entity,
    IntentRow,
    IntentState,
    JournalEntry,
    JournalRow,
    LeaseInfo,
    LinkRow,
    LinkState,
    RunRow,
    RunState,
)
from ledger.store import Ledger

__all__ = [
    "LINK_FIELDS",
    "Entity",
    "IntentRow",
    "IntentState",
    "JournalEntry",
    "JournalRow",
    "Lease",
    "LeaseBusy",
    "LeaseInfo",
    "LeaseLost",
    "Ledger",
    "LedgerCredentialStore",
    "LedgerError",
    "LedgerKeyError",
    "LinkConflict",
    "LinkRow",
    "LinkState",
    "OrgBusy",
    "RunRow",
    "RunState",
    "StaleConnection",
    "default_holder",
    "refresh_lock_name",
]
