"""Records: value checks, Zoho's write rules (insert / update / upsert / delete, subform rows),
the inventory arithmetic of docs/demo-universe.md, rendering to the API's JSON, and listing.

Every per-record failure is a :class:`RecordError` carrying Zoho's ``code`` / ``message`` /
``details`` (``api_name`` + ``json_path``, and ``expected_data_type`` / ``maximum_length`` /
``supported_values`` / ``duplicate_record`` when they apply). A record is validated completely before
anything is changed, so a failed record leaves no trace.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sandbox.zoho.org import Org, full_name, norm_key
from sandbox.zoho.schema import DEFAULTS, INVENTORY, SUBFORM_PARENT, FieldDef, module_id

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RECYCLE_DAYS = 60
_MISSING = object()

#: expected_data_type reported for a value of the wrong JSON type.
EXPECTED_TYPE = {
    "text": "text", "textarea": "textarea", "email": "email", "phone": "phone", "website": "website",
    "picklist": "picklist", "multiselectpicklist": "jsonarray", "integer": "integer", "bigint": "bigint",
    "double": "double", "currency": "double", "percent": "double", "boolean": "boolean", "date": "date",
    "datetime": "datetime", "lookup": "jsonobject", "ownerlookup": "jsonobject", "subform": "jsonarray",
    "jsonarray": "jsonarray",
}
#: Line-item keys the API computes or copies: accepted in input and ignored, as for read-only fields.
ROW_READ_ONLY = frozenset({"Product_Code", "Total", "Total_After_Discount", "Net_Total", "Parent_Id",
                           "Created_Time", "Modified_Time", "Created_By", "Modified_By", "$in_merge"})


class RecordError(Exception):
    """One record's failure, in Zoho's per-record error shape."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def result(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def invalid(api_name: str, path: str, message: str = "invalid data", **extra: Any) -> RecordError:
    return RecordError("INVALID_DATA", message, {"api_name": api_name, "json_path": path, **extra})


def mandatory(api_name: str, path: str) -> RecordError:
    return RecordError("MANDATORY_NOT_FOUND", "required field not found", {"api_name": api_name, "json_path": path})


# --- arithmetic ------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _dec_float(value: float) -> Decimal:
    return Decimal(repr(value))


def dec(value: Any) -> Decimal:
    """The decimal value of a stored number (floats through their shortest repr, memoised: prices and
    quantities repeat across thousands of lines)."""
    return _dec_float(value) if isinstance(value, float) else Decimal(value or 0)


_QUANTA = [Decimal(1).scaleb(-places) for places in range(10)]


def q(value: Decimal, places: int = 2) -> Decimal:
    """Zoho's "normal" rounding: half away from zero, on the decimal value."""
    return value.quantize(_QUANTA[places], rounding=ROUND_HALF_UP)


def num(value: Decimal) -> float:
    return float(value)


@dataclass
class LineAmounts:
    total: Decimal
    after_discount: Decimal
    tax: Decimal
    net: Decimal
    taxes: list[tuple[dict[str, Any], Decimal]]


def line_amounts(org: Org, row: dict[str, Any]) -> LineAmounts:
    """docs/demo-universe.md: Total = round(Qty * List_Price, 2); Total_After_Discount = Total - Discount;
    Tax = round(TAD * sum(pct) / 100, 2), each Line_Tax value rounded alone; Net_Total = TAD + Tax."""
    total = q(dec(row.get("Quantity")) * dec(row.get("List_Price")))
    after = q(total - dec(row.get("Discount")))
    taxes = [t for t in (org.tax(tid) for tid in row.get("Line_Tax") or ()) if t is not None]
    values = [(t, q(after * dec(t["value"]) / 100)) for t in taxes]
    tax = q(after * sum((dec(t["value"]) for t in taxes), Decimal(0)) / 100)
    return LineAmounts(total, after, tax, after + tax, values)


def compute_totals(org: Org, module: str, rec: dict[str, Any]) -> None:
    """Header: Sub_Total = sum(Net_Total); Grand_Total = Sub_Total - Discount + Tax + Adjustment + Excise_Duty,
    the header Tax coming only from record-level taxes (``$line_tax``)."""
    rows = rec.get(INVENTORY[module]) or []
    sub = sum((line_amounts(org, r).net for r in rows), Decimal(0))
    discount = dec(rec.get("Discount"))
    header_taxes = [t for t in (org.tax(tid) for tid in rec.get("$line_tax") or ()) if t is not None]
    tax = q((sub - discount) * sum((dec(t["value"]) for t in header_taxes), Decimal(0)) / 100)
    grand = sub - discount + tax + dec(rec.get("Adjustment")) + dec(rec.get("Excise_Duty"))
    rec["Sub_Total"] = num(q(sub))
    rec["Tax"] = num(tax)
    rec["Grand_Total"] = num(q(grand))


# --- value checks ----------------------------------------------------------------------------------
def parse_datetime(text: Any) -> int | None:
    """ISO 8601 with an offset (``Z`` accepted) -> epoch seconds; None if it is not one."""
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp())


def coerce(org: Org, module: str, f: FieldDef, value: Any, path: str) -> Any:
    """Check one input value against its field and return the stored form (None clears the field)."""
    dtype = f.data_type
    if value is None or (value == "" and dtype not in ("boolean",)):
        return None
    expected = EXPECTED_TYPE.get(dtype, dtype)
    if dtype in ("text", "textarea", "email", "phone", "website", "picklist"):
        if not isinstance(value, str):
            raise invalid(f.api_name, path, expected_data_type=expected)
        if len(value) > f.max_length:
            raise invalid(f.api_name, path, maximum_length=f.max_length)
        if dtype == "email" and not EMAIL.match(value):
            raise invalid(f.api_name, path)
        if dtype == "picklist":
            if value == "-None-":
                return None
            allowed = org.picklist(module, f)
            if value not in allowed:
                raise invalid(f.api_name, path, supported_values=list(allowed))
        return value
    if dtype in ("integer", "bigint"):
        if dtype == "bigint" and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f.api_name, path, expected_data_type=expected)
        if len(str(abs(value))) > f.max_length:
            raise invalid(f.api_name, path, maximum_length=f.max_length)
        return value
    if dtype in ("double", "currency", "percent"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(f.api_name, path, expected_data_type=expected)
        try:
            amount = dec(value)
        except InvalidOperation:
            raise invalid(f.api_name, path, expected_data_type=expected) from None
        if not amount.is_finite():
            raise invalid(f.api_name, path, expected_data_type=expected)
        places = f.decimal_place if f.decimal_place is not None else 2
        return num(q(amount, places))
    if dtype == "boolean":
        if not isinstance(value, bool):
            raise invalid(f.api_name, path, expected_data_type=expected)
        return value
    if dtype == "date":
        if not isinstance(value, str) or not DATE.match(value):
            raise invalid(f.api_name, path, expected_data_type=expected)
        try:
            date.fromisoformat(value)
        except ValueError:
            raise invalid(f.api_name, path, expected_data_type=expected) from None
        return value
    if dtype == "datetime":
        stamp = parse_datetime(value)
        if stamp is None:
            raise invalid(f.api_name, path, expected_data_type=expected)
        return stamp
    if dtype == "multiselectpicklist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f.api_name, path, expected_data_type=expected)
        allowed = org.picklist(module, f)
        for v in value:
            if v not in allowed:
                raise invalid(f.api_name, path, supported_values=list(allowed))
        return list(dict.fromkeys(value))
    if dtype == "lookup":
        target = lookup_id(value)
        if target is None:
            raise invalid(f.api_name, path, expected_data_type=expected)
        assert f.lookup is not None
        if org.get(f.lookup, target) is None:
            raise invalid(f.api_name, path)
        return target
    if dtype == "ownerlookup":
        target = lookup_id(value)
        if target is None:
            raise invalid(f.api_name, path, expected_data_type=expected)
        if target != org.user["id"]:
            raise invalid(f.api_name, path)
        return target
    raise invalid(f.api_name, path)


def lookup_id(value: Any) -> str | None:
    """A lookup is written as ``{"id": "..."}`` (or a bare id)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def coerce_taxes(org: Org, value: Any, api_name: str, path: str) -> list[str]:
    """``Line_Tax`` / ``$line_tax``: ``[{"name": "GST 15%"}]`` or ``[{"id": ...}]`` -> org tax ids."""
    if not isinstance(value, list):
        raise invalid(api_name, path, expected_data_type="jsonarray")
    ids: list[str] = []
    for k, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(api_name, f"{path}[{k}]", expected_data_type="jsonobject")
        key = item.get("id") or item.get("name")
        tax = org.tax(str(key)) if key is not None else None
        if tax is None:
            raise invalid("name" if "name" in item else "id", f"{path}[{k}].{'name' if 'name' in item else 'id'}",
                          supported_values=[t["name"] for t in org.taxes])
        if tax["id"] not in ids:
            ids.append(tax["id"])
    return ids


# --- write plans -----------------------------------------------------------------------------------
@dataclass
class Plan:
    """What one valid input record changes."""

    changes: dict[str, Any]
    rows: list[dict[str, Any]] | None = None
    header_taxes: Any = _MISSING


def prepare(org: Org, module: str, item: Any, i: int, existing: dict[str, Any] | None) -> Plan:
    """Validate one input record against the module (insert when ``existing`` is None)."""
    base = f"$.data[{i}]"
    if not isinstance(item, dict):
        raise invalid("data", base, expected_data_type="jsonobject")
    sub = INVENTORY.get(module)
    plan = Plan(changes={})
    for key, value in item.items():
        if key == "id":
            continue
        path = f"{base}.{key}"
        if key.startswith("$"):
            if key == "$line_tax" and sub:
                plan.header_taxes = coerce_taxes(org, value, key, path) if value is not None else []
            continue
        f = org.field(module, key)
        if f is None:
            raise invalid(key, path, "the field api name given seems to be invalid")
        if f.read_only:
            continue  # system-computed or system-set: Zoho keeps its own value
        if f.data_type == "subform":
            plan.rows = prepare_rows(org, key, value, path, (existing or {}).get(key) or [])
            continue
        plan.changes[key] = coerce(org, module, f, value, path)
    if existing is None:
        for key, value in DEFAULTS.get(module, {}).items():
            plan.changes.setdefault(key, value)
        for f in org.fields(module):
            if not f.mandatory or f.read_only:
                continue
            if f.data_type == "subform":
                if not plan.rows:
                    raise mandatory(f.api_name, f"{base}.{f.api_name}")
            elif plan.changes.get(f.api_name) is None:
                raise mandatory(f.api_name, f"{base}.{f.api_name}")
    else:
        for key, value in plan.changes.items():
            f = org.field(module, key)
            if f is not None and f.mandatory and value is None:
                raise mandatory(key, f"{base}.{key}")
    check_unique(org, module, plan.changes, existing, base)
    return plan


def prepare_rows(org: Org, sub: str, value: Any, path: str, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Zoho's subform update rules: a row with ``id`` is updated (or removed with ``_delete``), a row
    without ``id`` is appended, rows not mentioned are kept, and ``[]`` removes them all."""
    if not isinstance(value, list):
        raise invalid(sub, path, expected_data_type="jsonarray")
    if not value:
        return []
    rows = [dict(r) for r in current]
    by_id = {r["id"]: r for r in rows}
    dropped: set[str] = set()
    appended: list[dict[str, Any]] = []
    for j, item in enumerate(value):
        row_path = f"{path}[{j}]"
        if not isinstance(item, dict):
            raise invalid(sub, row_path, expected_data_type="jsonobject")
        rid = item.get("id")
        if rid is not None:
            rid = str(rid)
            row = by_id.get(rid)
            if row is None or rid in dropped:
                raise invalid("id", f"{row_path}.id", "the id given seems to be invalid")
            if "_delete" in item:
                dropped.add(rid)
                continue
            fill_row(org, sub, row, item, row_path, new=False)
        else:
            if "_delete" in item:
                raise mandatory("id", f"{row_path}.id")
            row = {"id": org.next_id()}
            fill_row(org, sub, row, item, row_path, new=True)
            appended.append(row)
    out = [r for r in rows if r["id"] not in dropped] + appended
    for n, row in enumerate(out, start=1):
        row["Sequence_Number"] = n
    return out


def fill_row(org: Org, sub: str, row: dict[str, Any], item: dict[str, Any], path: str, *, new: bool) -> None:
    for key, value in item.items():
        if key in ("id", "_delete") or key in ROW_READ_ONLY:
            continue
        key_path = f"{path}.{key}"
        f = org.field(sub, key)
        if f is None:
            raise invalid(key, key_path, "the field api name given seems to be invalid")
        if key == "Line_Tax":
            row["Line_Tax"] = coerce_taxes(org, value if value is not None else [], key, key_path)
            continue
        if key == "Sequence_Number":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise invalid(key, key_path, expected_data_type="integer")
            continue  # rows are renumbered in order
        stored = coerce(org, sub, f, value, key_path)
        if key == "Quantity" and stored is not None and stored <= 0:
            raise invalid(key, key_path)
        if key == "Discount" and stored is not None and stored < 0:
            raise invalid(key, key_path)
        if stored is None:
            if f.mandatory:
                raise mandatory(key, key_path)
            row.pop(key, None)
        else:
            row[key] = stored
    if new:
        for key in ("Product_Name", "Quantity"):
            if row.get(key) is None:
                raise mandatory(key, f"{path}.{key}")
        if row.get("List_Price") is None:
            product = org.get("Products", row["Product_Name"]) or {}
            row["List_Price"] = product.get("Unit_Price") or 0.0


def unique_fields(org: Org, module: str) -> list[FieldDef]:
    return [f for f in org.fields(module) if f.unique]


def check_unique(org: Org, module: str, changes: dict[str, Any], existing: dict[str, Any] | None, base: str) -> None:
    """DUPLICATE_DATA when a "do not allow duplicate values" field already holds the value elsewhere."""
    own = existing["id"] if existing else None
    for f in unique_fields(org, module):
        value = changes.get(f.api_name)
        if value is None:
            continue
        holders = org.index(module).field_index(f.api_name, f.case_sensitive).get(norm_key(value, f.case_sensitive),
                                                                                  set())
        others = sorted(h for h in holders if h != own)
        if others:
            dup = org.get(module, others[0]) or {}
            user = org.user_ref(dup.get("Owner"), with_email=False) or {}
            raise RecordError("DUPLICATE_DATA", "duplicate data", {
                "api_name": f.api_name, "json_path": f"{base}.{f.api_name}",
                "duplicate_record": {"id": others[0], "Owner": {**user, "zuid": org.user["zuid"]},
                                     "module": {"api_name": module, "id": module_id(org.id, module)}},
                "id": others[0], "more_records": len(others) > 1,
            })


def apply(org: Org, module: str, rec: dict[str, Any], plan: Plan, now: int, *, insert: bool) -> None:
    """Write a validated plan into a record (new or stored) and keep the indexes right."""
    index = org.index(module)
    token = None if insert else index.before_change(rec)
    for key, value in plan.changes.items():
        if value is None:
            rec.pop(key, None)
        else:
            rec[key] = value
    sub = INVENTORY.get(module)
    if plan.rows is not None and sub:
        rec[sub] = plan.rows
    if plan.header_taxes is not _MISSING:
        if plan.header_taxes:
            rec["$line_tax"] = plan.header_taxes
        else:
            rec.pop("$line_tax", None)
    if "Currency" in plan.changes and "Exchange_Rate" not in plan.changes:
        cur = org.currency(rec.get("Currency") or "")
        if cur is not None:
            rec["Exchange_Rate"] = float(cur["exchange_rate"])
    user_id = org.user["id"]
    if insert:
        rec.setdefault("Owner", user_id)
        if org.field(module, "Currency") is not None and rec.get("Currency") is None and org.currencies:
            base = next((c for c in org.currencies if c.get("is_base")), org.currencies[0])
            rec["Currency"] = base["iso_code"]
            rec.setdefault("Exchange_Rate", 1.0)
        for f in org.fields(module):
            if f.data_type == "autonumber":
                rec[f.api_name] = org.next_auto_number(module, f)
        rec["Created_Time"] = now
        rec["Created_By"] = user_id
        if sub:
            rec.setdefault(sub, [])
    rec["Modified_Time"] = now
    rec["Modified_By"] = user_id
    if sub:
        compute_totals(org, module, rec)
    if insert:
        org.put_new(module, rec)
    else:
        assert token is not None
        index.after_change(token, rec)
        org.touch(module, rec["id"])


def write_details(org: Org, rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "Modified_Time": org.iso(rec["Modified_Time"]),
        "Modified_By": org.user_ref(rec.get("Modified_By"), with_email=False),
        "Created_Time": org.iso(rec["Created_Time"]),
        "id": rec["id"],
        "Created_By": org.user_ref(rec.get("Created_By"), with_email=False),
        "$approval_state": "approved",
    }


def success(org: Org, rec: dict[str, Any], message: str) -> dict[str, Any]:
    return {"code": "SUCCESS", "details": write_details(org, rec), "message": message, "status": "success"}


def locked_error(i: int) -> RecordError:
    return RecordError("RECORD_LOCKED", "Sorry, you cannot perform this operation as the record is locked.",
                       {"api_name": "id", "json_path": f"$.data[{i}].id", "action": "record_locking"})


def delete_record(org: Org, module: str, rec: dict[str, Any], now: int) -> None:
    """Remove a record (to the recycle bin) and its subform rows with it."""
    org.remove(module, rec)
    org.add_deleted(module, {
        "id": rec["id"], "display_name": org.display_name(module, rec), "deleted_time": now,
        "deleted_by": org.user["id"], "created_by": rec.get("Created_By"),
    })


# --- rendering -------------------------------------------------------------------------------------
def render_value(org: Org, module: str, f: FieldDef, rec: dict[str, Any]) -> Any:
    name = f.api_name
    if module == "Contacts" and name == "Full_Name":
        return full_name(rec) or None
    value = rec.get(name)
    dtype = f.data_type
    if dtype == "boolean":
        return bool(value) if value is not None or f.read_only else None
    if value is None:
        return [] if dtype == "subform" else None
    if dtype == "ownerlookup":
        return org.user_ref(value)
    if dtype == "datetime":
        return org.iso(value)
    if dtype == "lookup":
        assert f.lookup is not None
        target = org.get(f.lookup, value)
        if target is None:
            return None
        return {"name": org.display_name(f.lookup, target), "id": value}
    if dtype == "subform":
        return [render_row(org, row) for row in value]
    if dtype == "multiselectpicklist":
        return list(value)
    if dtype in ("double", "currency", "percent"):
        return float(value)
    return value


def render_row(org: Org, row: dict[str, Any], names: Sequence[str] | None = None) -> dict[str, Any]:
    amounts = line_amounts(org, row)
    product = org.get("Products", row.get("Product_Name") or "")
    code = product.get("Product_Code") if product else None
    full = {
        "id": row["id"],
        "Product_Name": {"name": product.get("Product_Name") if product else None, "id": row.get("Product_Name"),
                         "Product_Code": code},
        "Product_Code": code,
        "Quantity": float(row.get("Quantity") or 0),
        "List_Price": float(row.get("List_Price") or 0),
        "Discount": float(row.get("Discount") or 0),
        "Description": row.get("Description"),
        "Line_Tax": [{"name": t["name"], "percentage": float(t["value"]), "value": num(v), "id": t["id"],
                      "display_name": f"{t['name']} ({float(t['value'])} %)"} for t, v in amounts.taxes],
        "Total": num(amounts.total),
        "Total_After_Discount": num(amounts.after_discount),
        "Net_Total": num(amounts.net),
        "Sequence_Number": row.get("Sequence_Number"),
    }
    if names is None:
        return full
    return {k: full.get(k) for k in ("id", *names)}


def render(org: Org, module: str, rec: dict[str, Any], names: Sequence[str] | None = None) -> dict[str, Any]:
    """A record as the API returns it: ``id`` plus the requested fields (all fields when None)."""
    out: dict[str, Any] = {"id": rec["id"]}
    fields = org.fields(module) if names is None else [org.field(module, n) for n in names]
    for f in fields:
        if f is None or f.api_name == "id":
            continue
        out[f.api_name] = render_value(org, module, f, rec)
    if module in INVENTORY and names is None:
        out["$line_tax"] = header_tax_view(org, rec)
    locked = bool(rec.get("Locked__s"))
    out["$approved"] = True
    out["$editable"] = not locked
    out["$locked_for_me"] = locked
    out["$state"] = "save"
    return out


def header_tax_view(org: Org, rec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    base = dec(rec.get("Sub_Total")) - dec(rec.get("Discount"))
    for tid in rec.get("$line_tax") or ():
        tax = org.tax(tid)
        if tax is not None:
            out.append({"percentage": float(tax["value"]), "name": tax["name"], "id": tax["id"],
                        "value": num(q(base * dec(tax["value"]) / 100))})
    return out


# --- subform modules as their own modules ----------------------------------------------------------
class _MergedRows:
    """Row id -> the row merged with ``Parent_Id`` and its parent's times, built on access (a view
    over 50,000 invoices would otherwise copy a quarter of a million rows)."""

    def __init__(self, rows: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self._rows = rows

    @staticmethod
    def _merge(pair: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        row, parent = pair
        return {**row, "Parent_Id": parent["id"], "Created_Time": parent.get("Created_Time", 0),
                "Modified_Time": parent.get("Modified_Time", 0)}

    def get(self, rid: str, default: Any = None) -> dict[str, Any] | None:
        pair = self._rows.get(rid)
        return self._merge(pair) if pair is not None else default

    def values(self) -> Iterator[dict[str, Any]]:
        return (self._merge(pair) for pair in self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)


class RowView:
    """A subform module (``Invoiced_Items``...) read as a module: its rows across all parents, with
    ``Parent_Id`` and the parent's times. Rebuilt when the parent module changes."""

    def __init__(self, org: Org, sub: str) -> None:
        parent = SUBFORM_PARENT[sub]
        self.sub = sub
        self.parent = parent
        self.version = org.index(parent).version
        rows: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for prec in org.table(parent).values():
            for row in prec.get(sub) or ():
                rows[row["id"]] = (row, prec)
        self.table = _MergedRows(rows)
        self.by_id = sorted(rows)
        self.by_ctime = sorted((p.get("Created_Time", 0), i) for i, (_, p) in rows.items())
        self.by_mtime = sorted((p.get("Modified_Time", 0), i) for i, (_, p) in rows.items())


def render_subform_record(org: Org, sub: str, rec: dict[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    row_names = [n for n in (names or [f.api_name for f in org.fields(sub)])
                 if n not in ("id", "Parent_Id", "Created_Time", "Modified_Time")]
    out = render_row(org, rec, row_names)
    wanted = names is None or set(names)
    parent = SUBFORM_PARENT[sub]
    if wanted is True or "Parent_Id" in wanted:  # type: ignore[operator]
        prec = org.get(parent, rec["Parent_Id"])
        out["Parent_Id"] = {"name": org.display_name(parent, prec), "id": rec["Parent_Id"]} if prec else None
    for key in ("Created_Time", "Modified_Time"):
        if wanted is True or key in wanted:  # type: ignore[operator]
            out[key] = org.iso(rec[key])
    return out


# --- listing ---------------------------------------------------------------------------------------
SORT_FIELDS = ("id", "Created_Time", "Modified_Time")


def sort_key(rec: dict[str, Any], sort_by: str) -> Any:
    if sort_by == "id":
        return rec["id"]
    return (rec.get(sort_by, 0), rec["id"])


def iterate(view: Any, sort_by: str, ascending: bool, after: Any = None,
            modified_after: int | None = None, ids: set[str] | None = None) -> Iterator[dict[str, Any]]:
    """Records of a module (``ModuleIndex`` or ``RowView``) in sort order, after a keyset cursor,
    filtered by ``If-Modified-Since`` and ``ids``."""
    keys: list[Any] = {"id": view.by_id, "Created_Time": view.by_ctime, "Modified_Time": view.by_mtime}[sort_by]
    table = view.table
    by_mtime = sort_by == "Modified_Time"
    if ascending:
        start = 0
        if after is not None:
            start = bisect.bisect_right(keys, after)
        if by_mtime and modified_after is not None:
            start = max(start, bisect.bisect_right(keys, (modified_after, "\uffff")))
        for pos in range(start, len(keys)):
            key = keys[pos]
            rid = key if sort_by == "id" else key[1]
            rec = table.get(rid)
            if rec is None or (ids is not None and rid not in ids):
                continue
            if modified_after is not None and not by_mtime and rec.get("Modified_Time", 0) <= modified_after:
                continue
            yield rec
    else:
        end = len(keys)
        if after is not None:
            end = bisect.bisect_left(keys, after)
        for pos in range(end - 1, -1, -1):
            key = keys[pos]
            rid = key if sort_by == "id" else key[1]
            rec = table.get(rid)
            if rec is None:
                continue
            if modified_after is not None and rec.get("Modified_Time", 0) <= modified_after:
                if by_mtime:
                    return
                continue
            if ids is not None and rid not in ids:
                continue
            yield rec


__all__ = [
    "SORT_FIELDS",
    "LineAmounts",
    "Plan",
    "RecordError",
    "RowView",
    "apply",
    "compute_totals",
    "delete_record",
    "invalid",
    "iterate",
    "line_amounts",
    "locked_error",
    "mandatory",
    "parse_datetime",
    "prepare",
    "render",
    "render_subform_record",
    "sort_key",
    "success",
]
