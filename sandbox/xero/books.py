"""One Xero organisation's books: documents in the DocStore, indexes beside them, and the rules.

Documents are plain dicts in a compact internal form (dates ``YYYY-MM-DD``, timestamps as epoch
ms, references by id); :mod:`sandbox.xero.render` turns them into Xero's JSON at the edge. Every
index is rebuilt from the store when the books are opened, so a restart reloads cleanly.
This module holds the organisation, reference data, contacts and items; documents (invoices,
credit notes, purchase orders), payments and allocations are in :mod:`sandbox.xero.documents`.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.common.clock import VirtualClock
from sandbox.common.store import DocStore
from sandbox.xero.formats import new_id

#: Kinds of documents per tenant scope.
KINDS = ("org", "accounts", "taxrates", "themes", "tracking", "currencies", "contacts", "items",
         "invoices", "creditnotes", "purchaseorders", "payments")

#: Fields a client may write on a Contact (SPEC components.schemas.Contact, minus read-only ones).
CONTACT_FIELDS = (
    "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName", "CompanyNumber",
    "EmailAddress", "ContactPersons", "BankAccountDetails", "TaxNumber", "TaxNumberType",
    "AccountsReceivableTaxType", "AccountsPayableTaxType", "Addresses", "Phones", "DefaultCurrency",
    "XeroNetworkKey", "SalesDefaultAccountCode", "PurchasesDefaultAccountCode", "SalesTrackingCategories",
    "PurchasesTrackingCategories", "TrackingCategoryName", "TrackingCategoryOption", "PaymentTerms",
    "SalesDefaultLineAmountType", "PurchasesDefaultLineAmountType", "BrandingTheme")

ITEM_FIELDS = ("Code", "Name", "Description", "PurchaseDescription", "IsSold", "IsPurchased",
               "InventoryAssetAccountCode", "SalesDetails", "PurchaseDetails")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Timezone enum -> IANA, for "today" in the organisation's timezone (SPEC Invoice.Date).
TIMEZONES = {"NEWZEALANDSTANDARDTIME": "Pacific/Auckland", "AUSEASTERNSTANDARDTIME": "Australia/Sydney",
             "UTC": "UTC", "GMTSTANDARDTIME": "Europe/London", "EASTERNSTANDARDTIME": "America/New_York",
             "PACIFICSTANDARDTIME": "America/Los_Angeles"}


def norm(text: Any) -> str:
    """Key for case-insensitive uniqueness (names, codes, numbers)."""
    return str(text).strip().lower() if text is not None else ""


#: The app (client id) making the current call; documents remember who created them (createdByMyApp).
CURRENT_APP: ContextVar[str | None] = ContextVar("current_app", default=None)


class Rejected(Exception):
    """An element failed validation: Xero's messages, in order."""

    def __init__(self, messages: list[str], warnings: list[str] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.warnings = warnings or []


class Books:
    """The live state of one tenant."""

    def __init__(self, tenant_id: str, store: DocStore, clock: VirtualClock) -> None:
        self.tenant_id = tenant_id
        self.store = store
        self.clock = clock
        self._last_ms = 0
        self.reindex(compact=True)

    # --- plumbing --------------------------------------------------------------------------------
    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.store.table(self.tenant_id, kind)

    def put(self, kind: str, doc_id: str, doc: dict[str, Any]) -> None:
        self.store.put(self.tenant_id, kind, doc_id, doc)

    def now_ms(self) -> int:
        """Virtual now in ms, strictly increasing per tenant (UpdatedDateUTC never ties)."""
        value = int(self.clock.time() * 1000)
        if value <= self._last_ms:
            value = self._last_ms + 1
        self._last_ms = value
        return value

    def reindex(self, compact: bool = False) -> None:
        """Rebuild every index from the store (after a load or a reset)."""
        if compact:
            # Reloaded rows come back in storage order: restore creation order (the default order).
            for kind in KINDS:
                table = self.table(kind)
                rows = list(table.items())
                if rows and "_seq" in rows[0][1]:
                    rows.sort(key=lambda kv: kv[1].get("_seq", 0))
                    table.clear()
                    table.update(rows)
        self.seq = max((d.get("_seq", 0) for kind in ("contacts", "items", "invoices", "creditnotes",
                                                      "purchaseorders", "payments")
                        for d in self.table(kind).values()), default=0)
        self.accounts_by_code = {norm(a["Code"]): a for a in self.table("accounts").values() if a.get("Code")}
        self.contact_numbers: dict[str, str] = {}
        self.contact_names: dict[str, str] = {}
        self.account_numbers: dict[str, str] = {}
        for c in self.table("contacts").values():
            self._index_contact(c)
        self.item_codes = {norm(i["Code"]): i["ItemID"] for i in self.table("items").values()}
        self.numbers: dict[str, dict[str, list[str]]] = {"invoices": {}, "creditnotes": {},
                                                         "purchaseorders": {}}
        for kind, field in (("invoices", "InvoiceNumber"), ("creditnotes", "CreditNoteNumber"),
                            ("purchaseorders", "PurchaseOrderNumber")):
            for d in self.table(kind).values():
                if d.get(field):
                    self.numbers[kind].setdefault(norm(d[field]), []).append(d["_id"])

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- organisation & reference data -----------------------------------------------------------
    @property
    def org(self) -> dict[str, Any]:
        return self.table("org")["org"]

    @property
    def settings(self) -> dict[str, Any]:
        return self.table("org")["settings"]

    def save_settings(self) -> None:
        self.store.touch(self.tenant_id, "org", "settings")

    def today(self) -> str:
        """Today in the organisation's timezone (the default document date)."""
        tz = ZoneInfo(TIMEZONES.get(self.org.get("Timezone", "UTC"), "UTC"))
        return datetime.fromtimestamp(self.clock.time(), tz=tz).date().isoformat()

    def account(self, code: str | None = None, account_id: str | None = None) -> dict[str, Any] | None:
        if account_id:
            return self.table("accounts").get(str(account_id).lower())
        if code is not None:
            return self.accounts_by_code.get(norm(code))
        return None

    def tax_rate(self, tax_type: str) -> dict[str, Any] | None:
        return self.table("taxrates").get(str(tax_type).upper())

    def currency_enabled(self, code: str) -> bool:
        return str(code).upper() in self.table("currencies")

    def tracking_category(self, name: str | None = None, cat_id: str | None = None) -> dict[str, Any] | None:
        cats = self.table("tracking")
        if cat_id:
            return cats.get(str(cat_id).lower())
        for cat in cats.values():
            if norm(cat["Name"]) == norm(name):
                return cat
        return None

    def lock_error(self, day: str) -> str | None:
        """Xero's lock-date message when ``day`` is on or before a lock date (notes §5.4)."""
        from sandbox.xero.formats import lock_date_text

        eoy = self.org.get("EndOfYearLockDate")
        period = self.org.get("PeriodLockDate")
        if eoy and day <= eoy:
            return f"The document date cannot be before the end of year lock date, currently set at {lock_date_text(eoy)}"
        if period and day <= period:
            return f"The document date cannot be before the period lock date, currently set at {lock_date_text(period)}"
        return None

    # --- contacts --------------------------------------------------------------------------------
    def _index_contact(self, c: dict[str, Any]) -> None:
        if c.get("ContactNumber"):
            self.contact_numbers.setdefault(norm(c["ContactNumber"]), c["ContactID"])
        if c.get("ContactStatus", "ACTIVE") == "ACTIVE" and c.get("Name"):
            self.contact_names[norm(c["Name"])] = c["ContactID"]
        if c.get("AccountNumber"):
            self.account_numbers[norm(c["AccountNumber"])] = c["ContactID"]

    def _unindex_contact(self, c: dict[str, Any]) -> None:
        for index, field in ((self.contact_numbers, "ContactNumber"), (self.contact_names, "Name"),
                             (self.account_numbers, "AccountNumber")):
            key = norm(c.get(field))
            if key and index.get(key) == c["ContactID"]:
                del index[key]
        if c.get("ContactNumber"):
            # Another contact may share the number: point the index at it.
            for other in self.table("contacts").values():
                if other is not c and norm(other.get("ContactNumber")) == norm(c["ContactNumber"]):
                    self.contact_numbers.setdefault(norm(c["ContactNumber"]), other["ContactID"])
                    break

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        return self.table("contacts").get(str(contact_id).lower())

    def contact_by_number(self, number: str) -> dict[str, Any] | None:
        cid = self.contact_numbers.get(norm(number))
        return self.contact(cid) if cid else None

    def contact_by_name(self, name: str) -> dict[str, Any] | None:
        cid = self.contact_names.get(norm(name))
        return self.contact(cid) if cid else None

    def find_contact(self, src: dict[str, Any]) -> dict[str, Any] | None:
        """The existing contact a write refers to: ContactID, then ContactNumber."""
        if src.get("ContactID"):
            return self.contact(src["ContactID"])
        if src.get("ContactNumber"):
            return self.contact_by_number(src["ContactNumber"])
        return None

    def write_contact(self, src: dict[str, Any], *, allow_update: bool) -> dict[str, Any]:
        """Create or update one contact; raises :class:`Rejected` with Xero's messages."""
        existing = None
        if src.get("ContactID"):
            existing = self.contact(src["ContactID"])
            if existing is None:
                raise Rejected(["The contact with the specified ContactID could not be found"])
        elif allow_update and src.get("ContactNumber"):
            existing = self.contact_by_number(src["ContactNumber"])
        merged = dict(existing) if existing else {"ContactStatus": "ACTIVE"}
        for f in CONTACT_FIELDS:
            if f in src:
                merged[f] = src[f]
        errors: list[str] = []
        name = merged.get("Name")
        if not name or not str(name).strip():
            errors.append("Contact name must be specified.")
        status = merged.get("ContactStatus") or "ACTIVE"
        if status not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            errors.append(f"The ContactStatus '{status}' is not valid.")
        if name and status == "ACTIVE":
            other = self.contact_names.get(norm(name))
            if other and (existing is None or other != existing["ContactID"]):
                errors.append(f"The contact name {name} is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")
        if merged.get("AccountNumber"):
            other = self.account_numbers.get(norm(merged["AccountNumber"]))
            if other and (existing is None or other != existing["ContactID"]):
                errors.append("The Account Number already exists. Please enter a different Account Number.")
        email = merged.get("EmailAddress")
        if email and not _EMAIL.match(str(email)):
            errors.append("Email address must be valid.")
        if merged.get("ContactNumber") and len(str(merged["ContactNumber"])) > 50:
            errors.append("The Contact Number must not be more than 50 characters long.")
        if name and len(str(name)) > 255:
            errors.append("The contact name must not be more than 255 characters long.")
        for person_list in (merged.get("ContactPersons") or [],):
            if len(person_list) > 5:
                errors.append("A contact can have at most 5 contact persons.")
        if errors:
            raise Rejected(errors)
        if existing is not None:
            changed = any(existing.get(f) != merged.get(f) for f in CONTACT_FIELDS)
            if not changed:
                return existing
            self._unindex_contact(existing)
        else:
            cid = new_id()
            merged.update({"ContactID": cid, "_id": cid, "_seq": self.next_seq(),
                           "IsCustomer": False, "IsSupplier": False})
        merged["UpdatedDateUTC"] = self.now_ms()
        self.put("contacts", merged["ContactID"], merged)
        self._index_contact(merged)
        return merged

    def mark_contact_role(self, contact: dict[str, Any], doc_type: str) -> None:
        """IsCustomer/IsSupplier are Xero's to set, from AR/AP documents. They do not move
        UpdatedDateUTC (RR: "Contact fields ... IsSupplier and isCustomer" do not)."""
        field = "IsCustomer" if doc_type.startswith("ACCREC") else "IsSupplier"
        if not contact.get(field):
            contact[field] = True
            self.store.touch(self.tenant_id, "contacts", contact["ContactID"])

    # --- items -----------------------------------------------------------------------------------
    def item(self, item_id: str) -> dict[str, Any] | None:
        return self.table("items").get(str(item_id).lower())

    def item_by_code(self, code: str) -> dict[str, Any] | None:
        iid = self.item_codes.get(norm(code))
        return self.item(iid) if iid else None

    def write_item(self, src: dict[str, Any], *, allow_update: bool, unitdp: int) -> dict[str, Any]:
        from sandbox.xero.formats import dec, q2, q4

        existing = None
        if src.get("ItemID"):
            existing = self.item(src["ItemID"])
            if existing is None:
                raise Rejected(["The item with the specified ItemID could not be found"])
        elif allow_update and src.get("Code"):
            existing = self.item_by_code(src["Code"])
        merged = dict(existing) if existing else {"IsSold": True, "IsPurchased": True}
        for f in ITEM_FIELDS:
            if f in src:
                merged[f] = src[f]
        errors: list[str] = []
        code = merged.get("Code")
        if not code or not str(code).strip():
            errors.append("Item code must be specified.")
        else:
            other = self.item_codes.get(norm(code))
            if other and (existing is None or other != existing["ItemID"]):
                errors.append(f"Price List Item with Code '{code}' already exists")
            if len(str(code)) > 30:
                errors.append("The item code must not be more than 30 characters long.")
        if merged.get("Name") and len(str(merged["Name"])) > 50:
            errors.append("The item name must not be more than 50 characters long.")
        for details in ("SalesDetails", "PurchaseDetails"):
            d = merged.get(details)
            if d is None:
                continue
            if not isinstance(d, dict):
                errors.append(f"{details} must be an object.")
                continue
            d = dict(d)
            if d.get("UnitPrice") is not None:
                try:
                    price = dec(d["UnitPrice"])
                    d["UnitPrice"] = float(q4(price) if unitdp == 4 else q2(price))
                except ValueError:
                    errors.append("Unit price must be a number.")
            if d.get("AccountCode"):
                acc = self.account(d["AccountCode"])
                if acc is None or acc.get("Status") != "ACTIVE":
                    errors.append(f"Account code '{d['AccountCode']}' is not a valid code for this document.")
            if d.get("TaxType"):
                rate = self.tax_rate(d["TaxType"])
                if rate is None or rate.get("Status") != "ACTIVE":
                    errors.append(f"The TaxType code {d['TaxType']} does not exist or cannot be used for "
                                  "this type of transaction.")
            merged[details] = d
        if merged.get("IsSold") is False:
            merged.pop("Description", None)
            merged["SalesDetails"] = {}
        if merged.get("IsPurchased") is False:
            merged.pop("PurchaseDescription", None)
            merged["PurchaseDetails"] = {}
        if errors:
            raise Rejected(errors)
        if existing is not None:
            if all(existing.get(f) == merged.get(f) for f in ITEM_FIELDS):
                return existing
            old = norm(existing.get("Code"))
            if self.item_codes.get(old) == existing["ItemID"]:
                del self.item_codes[old]
        else:
            iid = new_id()
            merged.update({"ItemID": iid, "_id": iid, "_seq": self.next_seq()})
        merged["UpdatedDateUTC"] = self.now_ms()
        self.put("items", merged["ItemID"], merged)
        self.item_codes[norm(merged["Code"])] = merged["ItemID"]
        return merged

    def delete_item(self, item: dict[str, Any]) -> None:
        self.item_codes.pop(norm(item.get("Code")), None)
        self.store.delete(self.tenant_id, "items", item["ItemID"])

    # --- numbering -------------------------------------------------------------------------------
    def next_number(self, kind: str, prefix: str, counter: str) -> str:
        """The organisation's next number from its settings (notes §5.5: "auto-generate from your
        Organisation Invoice Settings"), skipping numbers already taken. The prefix is the setting
        ``<counter without _next>_prefix`` (``invoice_prefix``, ``credit_note_prefix``,
        ``purchase_order_prefix``); ``prefix`` is the default when the org has none (state saved
        before the setting existed). Numbers are the prefix plus at least 4 digits."""
        taken = self.numbers[kind]
        prefix = str(self.settings.get(counter.removesuffix("_next") + "_prefix", prefix))
        n = int(self.settings.get(counter, 1))
        while True:
            number = f"{prefix}{n:04d}"
            n += 1
            if norm(number) not in taken:
                break
        self.settings[counter] = n
        self.save_settings()
        return number

    def index_number(self, kind: str, number: str | None, doc_id: str) -> None:
        if number:
            ids = self.numbers[kind].setdefault(norm(number), [])
            if doc_id not in ids:
                ids.append(doc_id)

    def unindex_number(self, kind: str, number: str | None, doc_id: str) -> None:
        if number:
            ids = self.numbers[kind].get(norm(number), [])
            if doc_id in ids:
                ids.remove(doc_id)
            if not ids:
                self.numbers[kind].pop(norm(number), None)

    def by_number(self, kind: str, number: str) -> list[dict[str, Any]]:
        table = self.table(kind)
        return [table[i] for i in self.numbers[kind].get(norm(number), []) if i in table]

