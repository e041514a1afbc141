"""Typed errors the ledger raises; callers (CLI, flows) turn them into plain-language messages."""

from __future__ import annotations

from datetime import datetime


class LedgerError(Exception):
    """Base class of every ledger error."""


class LeaseBusy(LedgerError):
    """A lease is held by someone else (and did not come free within the wait, if any)."""

    def __init__(self, name: str, holder: str | None, since: datetime | None, expires_at: datetime | None):
        self.name = name
        self.holder = holder
        self.since = since
        self.expires_at = expires_at
        super().__init__(self._describe())

    def _describe(self) -> str:
        who = self.holder or "another process"
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        until = (
            f" (lease expires {self.expires_at.isoformat(timespec='seconds')} unless renewed)"
            if self.expires_at
            else ""
        )
        return f"lock {self.name!r} is held by {who}{since}{until}"


class OrgBusy(LeaseBusy):
    """The organisation's lock is held: another sync run, restore or token refresh is writing this org."""

    def __init__(self, org: str, holder: str | None, since: datetime | None, expires_at: datetime | None):
        self.org = org
        super().__init__(org_lock_name(org), holder, since, expires_at)

    def _describe(self) -> str:
        who = self.holder or "another process"
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return (
            f"organisation {self.org!r} is busy: {who} has held its lock{since}. "
            "Wait for it to finish, or if that process died, its lease expires by itself"
            + (f" at {self.expires_at.isoformat(timespec='seconds')}." if self.expires_at else ".")
        )


class LeaseLost(LedgerError):
    """Our lease expired or was taken over (we stalled longer than its TTL): stop writing."""


class LinkConflict(LedgerError):
    """A link would point two Zoho records at the same Xero record (unique (org, entity, xero_id))."""

    def __init__(self, org: str, entity: str, conflicts: list[tuple[str, str, str]]):
        #: (xero_id, zoho_id already linked, zoho_id we tried to link)
        self.conflicts = conflicts
        sample = "; ".join(f"Xero {x} is linked to Zoho {old}, not {new}" for x, old, new in conflicts[:5])
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        super().__init__(f"{org}/{entity}: {sample}{more}")


class StaleConnection(LedgerError):
    """A compare-and-set save found a newer version of the connection than the caller read."""


class LedgerKeyError(LedgerError):
    """The secret key cannot decrypt a stored connection (key replaced or data tampered)."""


def org_lock_name(org: str) -> str:
    """The lease name of an organisation's lock."""
    return f"org:{org}"
