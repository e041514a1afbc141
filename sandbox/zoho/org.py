"""One Zoho CRM organisation inside the sandbox: its settings (time zone, currencies, taxes, user,
picklists), its field registry (standard + custom fields), id and auto-number counters, and the
in-memory indexes over its records (by id, Created_Time, Modified_Time and any field asked for).

Records live in the frame's :class:`~sandbox.common.store.DocStore` (scope = org id, kind = module
API name) as compact internal dicts: lookups and users are stored as ids, date-times as epoch
seconds, line items without their derived amounts. :mod:`sandbox.zoho.records` turns them into the
API's JSON.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.common.store import DocStore
from sandbox.zoho.schema import (
    INVENTORY,
    MODULES,
    SUBFORM_PARENT,
    FieldDef,
    standard_field_id,
    with_id,
)

ORG_KIND = "_org"
FIELDS_KIND = "_fields"
DELETED_PREFIX = "_deleted:"


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def norm_key(value: Any, case_sensitive: bool = False) -> Any:
    """How a value is compared for uniqueness and duplicate checks."""
    if isinstance(value, str):
        value = value.strip()
        return value if case_sensitive else value.casefold()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return tuple(value)
    return value


class ModuleIndex:
    """Sorted views and field indexes over one module's records, kept up to date on every write."""

    def __init__(self, table: dict[str, dict[str, Any]]) -> None:
        self.table = table
        self.version = 0
        self.by_id: list[str] = sorted(table)
        self.by_ctime: list[tuple[int, str]] = sorted((r.get("Created_Time", 0), i) for i, r in table.items())
        self.by_mtime: list[tuple[int, str]] = sorted((r.get("Modified_Time", 0), i) for i, r in table.items())
        #: field -> (case_sensitive, normalised value -> ids)
        self.fields: dict[str, tuple[bool, dict[Any, set[str]]]] = {}

    # --- field indexes ---------------------------------------------------------------------------
    def field_index(self, field: str, case_sensitive: bool = False) -> dict[Any, set[str]]:
        """Normalised value -> ids for one field (built on first use, then maintained)."""
        entry = self.fields.get(field)
        if entry is None or entry[0] != case_sensitive:
            index: dict[Any, set[str]] = {}
            for rid, rec in self.table.items():
                value = rec.get(field)
                if value is not None and value != "":
                    index.setdefault(norm_key(value, case_sensitive), set()).add(rid)
            entry = (case_sensitive, index)
            self.fields[field] = entry
        return entry[1]

    def _unindex_fields(self, rid: str, rec: dict[str, Any]) -> None:
        for field, (cs, index) in self.fields.items():
            value = rec.get(field)
            if value is not None and value != "":
                ids = index.get(norm_key(value, cs))
                if ids is not None:
                    ids.discard(rid)
                    if not ids:
                        del index[norm_key(value, cs)]

    def _index_fields(self, rid: str, rec: dict[str, Any]) -> None:
        for field, (cs, index) in self.fields.items():
            value = rec.get(field)
            if value is not None and value != "":
                index.setdefault(norm_key(value, cs), set()).add(rid)

    # --- maintenance -----------------------------------------------------------------------------
    def before_change(self, rec: dict[str, Any]) -> tuple[int, str]:
        """Call before mutating a stored record; returns the token for :meth:`after_change`."""
        rid = rec["id"]
        self._unindex_fields(rid, rec)
        return rec.get("Modified_Time", 0), rid

    def after_change(self, token: tuple[int, str], rec: dict[str, Any]) -> None:
        old_mtime, rid = token
        _remove(self.by_mtime, (old_mtime, rid))
        bisect.insort(self.by_mtime, (rec.get("Modified_Time", 0), rid))
        self._index_fields(rid, rec)
        self.version += 1

    def added(self, rec: dict[str, Any]) -> None:
        rid = rec["id"]
        if not self.by_id or rid > self.by_id[-1]:
            self.by_id.append(rid)
        else:
            bisect.insort(self.by_id, rid)
        bisect.insort(self.by_ctime, (rec.get("Created_Time", 0), rid))
        bisect.insort(self.by_mtime, (rec.get("Modified_Time", 0), rid))
        self._index_fields(rid, rec)
        self.version += 1

    def removed(self, rec: dict[str, Any]) -> None:
        rid = rec["id"]
        _remove(self.by_id, rid)
        _remove(self.by_ctime, (rec.get("Created_Time", 0), rid))
        _remove(self.by_mtime, (rec.get("Modified_Time", 0), rid))
        self._unindex_fields(rid, rec)
        self.version += 1


def _remove(items: list[Any], key: Any) -> None:
    pos = bisect.bisect_left(items, key)
    if pos < len(items) and items[pos] == key:
        del items[pos]


class Org:
    """State and helpers of one organisation (thread-safety: callers hold the sandbox lock)."""

    def __init__(self, store: DocStore, org_id: str) -> None:
        self.store = store
        self.id = org_id
        self.doc: dict[str, Any] = store.get(org_id, ORG_KIND, "org") or {}
        self._indexes: dict[str, ModuleIndex] = {}
        self._fields: dict[str, tuple[tuple[FieldDef, ...], dict[str, FieldDef]]] = {}

    # --- settings --------------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return zone(self.doc.get("time_zone", "UTC"))

    @property
    def user(self) -> dict[str, Any]:
        return self.doc["user"]

    def user_ref(self, user_id: str | None = None, with_email: bool = True) -> dict[str, Any] | None:
        user = self.user
        if user_id is not None and user_id != user["id"]:
            return None
        out = {"name": user["full_name"], "id": user["id"]}
        if with_email:
            out["email"] = user["email"]
        return out

    def iso(self, ts: float | None) -> str | None:
        """Zoho's date-time text: ISO 8601 with the org's offset, to the second."""
        if ts is None:
            return None
        return datetime.fromtimestamp(int(ts), self.tz).isoformat(timespec="seconds")

    def save(self) -> None:
        self.store.put(self.id, ORG_KIND, "org", self.doc)

    def next_id(self) -> str:
        """A new 19-digit record id (org id + counter): ids grow, so id order is creation order."""
        seq = self.doc.get("seq", 0) + 1
        self.doc["seq"] = seq
        return f"{self.id}{seq:010d}"

    def next_auto_number(self, module: str, f: FieldDef) -> str:
        counters = self.doc.setdefault("auto", {})
        n = counters.get(module, f.auto_start or 1)
        counters[module] = n + 1
        return f"{f.auto_prefix or ''}{n}"

    @property
    def taxes(self) -> list[dict[str, Any]]:
        return self.doc.get("taxes", [])

    def tax(self, id_or_name: str) -> dict[str, Any] | None:
        for tax in self.taxes:
            if tax["id"] == id_or_name or tax["name"] == id_or_name:
                return tax
        return None

    @property
    def currencies(self) -> list[dict[str, Any]]:
        return self.doc.get("currencies", [])

    def currency(self, code: str) -> dict[str, Any] | None:
        for cur in self.currencies:
            if cur["iso_code"] == code:
                return cur
        return None

    # --- fields ----------------------------------------------------------------------------------
    def fields(self, module: str) -> tuple[FieldDef, ...]:
        return self._field_registry(module)[0]

    def field(self, module: str, api_name: str) -> FieldDef | None:
        return self._field_registry(module)[1].get(api_name)

    def _field_registry(self, module: str) -> tuple[tuple[FieldDef, ...], dict[str, FieldDef]]:
        cached = self._fields.get(module)
        if cached is None:
            mdef = MODULES[module]
            fields = [with_id(f, standard_field_id(self.id, module, i)) for i, f in enumerate(mdef.fields, 1)]
            custom = self.store.get(self.id, FIELDS_KIND, module)
            if custom:
                fields.extend(FieldDef.from_doc(d) for d in custom["fields"])
            cached = (tuple(fields), {f.api_name: f for f in fields})
            self._fields[module] = cached
        return cached

    def custom_fields(self, module: str) -> list[FieldDef]:
        doc = self.store.get(self.id, FIELDS_KIND, module)
        return [FieldDef.from_doc(d) for d in doc["fields"]] if doc else []

    def add_custom_field(self, module: str, f: FieldDef) -> None:
        doc = self.store.get(self.id, FIELDS_KIND, module) or {"fields": []}
        doc["fields"].append(f.to_doc())
        self.store.put(self.id, FIELDS_KIND, module, doc)
        self._fields.pop(module, None)

    def picklist(self, module: str, f: FieldDef) -> tuple[str, ...]:
        """A picklist's values: the org's own list when customised (e.g. Invoice Status "On Hold")."""
        if f.api_name == "Currency":
            return tuple(c["iso_code"] for c in self.currencies)
        if f.api_name == "Tax" and module == "Products":
            return tuple(t["name"] for t in self.taxes)
        custom = self.doc.get("picklists", {}).get(f"{module}.{f.api_name}")
        return tuple(custom) if custom is not None else f.picklist

    # --- records ---------------------------------------------------------------------------------
    def table(self, module: str) -> dict[str, dict[str, Any]]:
        return self.store.table(self.id, module)

    def index(self, module: str) -> ModuleIndex:
        idx = self._indexes.get(module)
        if idx is None:
            idx = ModuleIndex(self.table(module))
            self._indexes[module] = idx
        return idx

    def get(self, module: str, rid: str) -> dict[str, Any] | None:
        return self.store.get(self.id, module, rid)

    def put_new(self, module: str, rec: dict[str, Any]) -> None:
        self.store.put(self.id, module, rec["id"], rec)
        self.index(module).added(rec)

    def touch(self, module: str, rid: str) -> None:
        self.store.touch(self.id, module, rid)

    def remove(self, module: str, rec: dict[str, Any]) -> None:
        self.index(module).removed(rec)
        self.store.delete(self.id, module, rec["id"])

    def deleted_table(self, module: str) -> dict[str, dict[str, Any]]:
        return self.store.table(self.id, DELETED_PREFIX + module)

    def add_deleted(self, module: str, entry: dict[str, Any]) -> None:
        self.store.put(self.id, DELETED_PREFIX + module, entry["id"], entry)

    # --- display names ---------------------------------------------------------------------------
    def display_name(self, module: str, rec: dict[str, Any] | None) -> str | None:
        if rec is None:
            return None
        if module == "Contacts":
            return full_name(rec)
        if module in SUBFORM_PARENT:
            return rec.get("id")
        return rec.get(MODULES[module].display_field)


def full_name(rec: dict[str, Any]) -> str:
    return " ".join(p for p in (rec.get("First_Name"), rec.get("Last_Name")) if p)


__all__ = [
    "DELETED_PREFIX",
    "FIELDS_KIND",
    "INVENTORY",
    "ORG_KIND",
    "ModuleIndex",
    "Org",
    "full_name",
    "norm_key",
    "zone",
]
