"""Zoho CRM modules and fields as the sandbox emulates them: standard fields per module, the inventory
line-item subforms, and the Fields-API metadata shape.

Field API names and types follow zoho-api-notes.md §5 (SDK7 ``record/field.py``) and the v8 specs
(``fields.json``); each org adds its own custom fields (``custom_field: true``) on top of these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

#: Inventory module -> its line-item subform (v5+ names; notes §5.1).
INVENTORY: dict[str, str] = {
    "Invoices": "Invoiced_Items",
    "Purchase_Orders": "Purchase_Items",
    "Sales_Orders": "Ordered_Items",
    "Quotes": "Quoted_Items",
}
SUBFORM_PARENT: dict[str, str] = {sub: parent for parent, sub in INVENTORY.items()}

#: Data types -> (json_type, ui_type, default length) as the Fields API reports them.
TYPE_META: dict[str, tuple[str, int, int]] = {
    "text": ("string", 1, 255),
    "textarea": ("string", 3, 32000),
    "email": ("string", 25, 100),
    "phone": ("string", 33, 30),
    "website": ("string", 21, 255),
    "picklist": ("string", 2, 120),
    "multiselectpicklist": ("jsonarray", 100, 2000),
    "integer": ("integer", 32, 9),
    "bigint": ("string", 79, 18),
    "double": ("double", 34, 16),
    "currency": ("double", 36, 16),
    "percent": ("double", 38, 5),
    "boolean": ("boolean", 301, 5),
    "date": ("string", 24, 20),
    "datetime": ("string", 333, 120),
    "lookup": ("jsonobject", 4, 120),
    "ownerlookup": ("jsonobject", 8, 120),
    "autonumber": ("string", 1, 255),
    "subform": ("jsonarray", 555, 100),
    "formula": ("string", 1, 255),
    "jsonarray": ("jsonarray", 1, 2000),
}
#: Types a custom field may be created with through ``POST /settings/fields``.
CREATABLE_TYPES = frozenset({
    "text", "textarea", "email", "phone", "website", "picklist", "multiselectpicklist", "integer", "bigint",
    "double", "currency", "percent", "boolean", "date", "datetime", "lookup",
})
#: Types usable in upsert's ``duplicate_check_fields`` (text-like, numbers, unique customs).
DUPLICATE_CHECK_TYPES = frozenset({"text", "email", "phone", "website", "integer", "bigint", "double",
                                   "currency", "autonumber", "picklist"})


@dataclass(frozen=True)
class FieldDef:
    """One field of a module (standard or custom)."""

    api_name: str
    data_type: str
    label: str = ""
    length: int | None = None
    mandatory: bool = False
    read_only: bool = False
    custom: bool = False
    unique: bool = False
    case_sensitive: bool = False
    picklist: tuple[str, ...] = ()
    lookup: str | None = None
    subform: str | None = None
    auto_prefix: str | None = None
    auto_start: int | None = None
    decimal_place: int | None = None
    id: str = ""
    created_time: int | None = None

    @property
    def display_label(self) -> str:
        return self.label or self.api_name.replace("_", " ")

    @property
    def max_length(self) -> int:
        return self.length if self.length is not None else TYPE_META[self.data_type][2]

    def to_doc(self) -> dict[str, Any]:
        """A JSON-safe description (custom fields are stored per org in this form)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FieldDef:
        data = dict(doc)
        data["picklist"] = tuple(data.get("picklist") or ())
        return cls(**data)


def _f(api: str, dtype: str, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(api_name=api, data_type=dtype, label=label, **kw)


def _ro(api: str, dtype: str, label: str = "", **kw: Any) -> FieldDef:
    return FieldDef(api_name=api, data_type=dtype, label=label, read_only=True, **kw)


def _audit() -> list[FieldDef]:
    return [
        _f("Owner", "ownerlookup", "Owner"),
        _ro("Created_By", "ownerlookup", "Created By"),
        _ro("Modified_By", "ownerlookup", "Modified By"),
        _ro("Created_Time", "datetime", "Created Time"),
        _ro("Modified_Time", "datetime", "Modified Time"),
        _ro("Locked__s", "boolean", "Locked"),
        _ro("Record_Status__s", "picklist", "Record Status", picklist=("Available", "Draft")),
    ]


def _address(prefix: str, code: str = "Code") -> list[FieldDef]:
    return [_f(f"{prefix}_Street", "text", length=250), _f(f"{prefix}_City", "text", length=100),
            _f(f"{prefix}_State", "text", length=100), _f(f"{prefix}_{code}", "text", length=30),
            _f(f"{prefix}_Country", "text", length=100)]


CURRENCY_FIELDS = [_f("Currency", "picklist", "Currency"), _f("Exchange_Rate", "double", "Exchange Rate",
                                                                 decimal_place=9)]


def _line_item_fields(parent: str) -> tuple[FieldDef, ...]:
    return (
        _f("Product_Name", "lookup", "Product Name", mandatory=True, lookup="Products"),
        _ro("Product_Code", "text", "Product Code", length=40),
        _f("Quantity", "double", "Quantity", mandatory=True, decimal_place=2),
        _f("List_Price", "currency", "List Price", decimal_place=4),
        _f("Discount", "currency", "Discount", decimal_place=2),
        _f("Description", "textarea", "Description", length=2000),
        _f("Line_Tax", "jsonarray", "Tax"),
        _ro("Total", "currency", "Amount", decimal_place=2),
        _ro("Total_After_Discount", "currency", "Total After Discount", decimal_place=2),
        _ro("Net_Total", "currency", "Total", decimal_place=2),
        _f("Sequence_Number", "integer", "Sequence Number"),
        _ro("Parent_Id", "lookup", "Parent Id", lookup=parent),
        _ro("Created_Time", "datetime", "Created Time"),
        _ro("Modified_Time", "datetime", "Modified Time"),
    )


def _inventory_common(subform: str) -> list[FieldDef]:
    return [
        _f("Subject", "text", "Subject", mandatory=True, length=255),
        _f(subform, "subform", "Product Details", subform=subform),
        _ro("Sub_Total", "currency", "Sub Total", decimal_place=2),
        _f("Discount", "currency", "Discount", decimal_place=2),
        _ro("Tax", "currency", "Tax", decimal_place=2),
        _f("Adjustment", "currency", "Adjustment", decimal_place=2),
        _ro("Grand_Total", "currency", "Grand Total", decimal_place=2),
        _f("Excise_Duty", "currency", "Excise Duty", decimal_place=2),
        *CURRENCY_FIELDS,
        _f("Terms_and_Conditions", "textarea", "Terms and Conditions", length=32000),
        _f("Description", "textarea", "Description", length=32000),
    ]


INVOICE_STATUS = ("Created", "Approved", "Delivered", "Cancelled")
PO_STATUS = ("Created", "Approved", "Delivered", "Cancelled")
SO_STATUS = ("Created", "Approved", "Delivered", "Cancelled")
QUOTE_STAGE = ("Draft", "Negotiation", "Delivered", "On Hold", "Confirmed", "Closed Won", "Closed Lost")
CARRIER = ("FedEx", "UPS", "USPS", "DHL", "BlueDart")


@dataclass(frozen=True)
class ModuleDef:
    """A module the sandbox serves (``generated_type`` ``default`` or ``subform``)."""

    api_name: str
    module_name: str
    singular: str
    plural: str
    display_field: str
    duplicate_field: str | None
    scope_name: str
    fields: tuple[FieldDef, ...]
    generated_type: str = "default"
    parent: str | None = None

    @property
    def subform(self) -> str | None:
        return INVENTORY.get(self.api_name)


def _module(api: str, module_name: str, singular: str, plural: str, display: str, dup: str | None,
            scope: str, fields: list[FieldDef]) -> ModuleDef:
    return ModuleDef(api, module_name, singular, plural, display, dup, scope, tuple(fields))


_MODULES: list[ModuleDef] = [
    _module("Accounts", "Accounts", "Account", "Accounts", "Account_Name", "Account_Name", "accounts", [
        _f("Account_Name", "text", "Account Name", mandatory=True, length=200),
        _f("Account_Number", "text", "Account Number", length=40),
        _f("Account_Type", "picklist", "Account Type",
           picklist=("Analyst", "Competitor", "Customer", "Distributor", "Integrator", "Investor", "Other",
                     "Partner", "Press", "Prospect", "Reseller", "Vendor")),
        _f("Industry", "picklist", "Industry",
           picklist=("Construction", "Education", "Government", "Hospitality", "Manufacturing", "Retail",
                     "Services", "Technology", "Transport")),
        _f("Phone", "phone", "Phone"), _f("Fax", "phone", "Fax"), _f("Website", "website", "Website"),
        _f("Parent_Account", "lookup", "Parent Account", lookup="Accounts"),
        *_address("Billing"), *_address("Shipping"),
        *CURRENCY_FIELDS,
        _f("Description", "textarea", "Description", length=32000),
        *_audit(),
    ]),
    _module("Contacts", "Contacts", "Contact", "Contacts", "Full_Name", "Email", "contacts", [
        _f("First_Name", "text", "First Name", length=40),
        _f("Last_Name", "text", "Last Name", mandatory=True, length=80),
        _ro("Full_Name", "text", "Contact Name", length=120),
        _f("Salutation", "picklist", "Salutation", picklist=("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.")),
        _f("Email", "email", "Email"), _f("Secondary_Email", "email", "Secondary Email"),
        _f("Phone", "phone", "Phone"), _f("Mobile", "phone", "Mobile"),
        _f("Title", "text", "Title", length=100), _f("Department", "text", "Department", length=100),
        _f("Account_Name", "lookup", "Account Name", lookup="Accounts"),
        _f("Vendor_Name", "lookup", "Vendor Name", lookup="Vendors"),
        *_address("Mailing", "Zip"), *_address("Other", "Zip"),
        *CURRENCY_FIELDS,
        _f("Description", "textarea", "Description", length=32000),
        *_audit(),
    ]),
    _module("Vendors", "Vendors", "Vendor", "Vendors", "Vendor_Name", "Vendor_Name", "vendors", [
        _f("Vendor_Name", "text", "Vendor Name", mandatory=True, length=120),
        _f("Email", "email", "Email"), _f("Phone", "phone", "Phone"), _f("Website", "website", "Website"),
        _f("GL_Account", "picklist", "GL Account",
           picklist=("Sales-Software", "Sales-Hardware", "Rental-Income", "Interest-Income", "Freight-Expense",
                     "Cost-of-Goods-Sold")),
        _f("Category", "text", "Category", length=100),
        _f("Street", "text", "Street", length=250), _f("City", "text", "City", length=100),
        _f("State", "text", "State", length=100), _f("Zip_Code", "text", "Zip Code", length=30),
        _f("Country", "text", "Country", length=100),
        *CURRENCY_FIELDS,
        _f("Description", "textarea", "Description", length=32000),
        *_audit(),
    ]),
    _module("Products", "Products", "Product", "Products", "Product_Name", "Product_Name", "products", [
        _f("Product_Name", "text", "Product Name", mandatory=True, length=120),
        _f("Product_Code", "text", "Product Code", length=40),
        _f("Product_Active", "boolean", "Product Active"),
        _f("Product_Category", "picklist", "Product Category", picklist=("Hardware", "Software", "Services")),
        _f("Manufacturer", "picklist", "Manufacturer", picklist=("AltvetPet Inc.", "LexPro Corp.", "MetBeat Corp.")),
        _f("Vendor_Name", "lookup", "Vendor Name", lookup="Vendors"),
        _f("Unit_Price", "currency", "Unit Price", decimal_place=4),
        _f("Commission_Rate", "currency", "Commission Rate", decimal_place=2),
        _f("Tax", "multiselectpicklist", "Tax"),
        _f("Taxable", "boolean", "Taxable"),
        _f("Usage_Unit", "picklist", "Usage Unit",
           picklist=("Box", "Carton", "Dozen", "Each", "Hours", "Impressions", "Lb", "M", "Pack", "Pages",
                     "Pieces", "Quantity", "Reams", "Sheet", "Spiral Binder", "Sq Ft")),
        _f("Qty_in_Stock", "double", "Qty in Stock", decimal_place=2),
        _f("Qty_Ordered", "double", "Qty Ordered", decimal_place=2),
        _f("Reorder_Level", "double", "Reorder Level", decimal_place=2),
        *CURRENCY_FIELDS,
        _f("Description", "textarea", "Description", length=32000),
        *_audit(),
    ]),
    _module("Invoices", "Invoices", "Invoice", "Invoices", "Subject", "Subject", "invoices", [
        _ro("Invoice_Number", "autonumber", "Invoice Number", auto_prefix="INV-", auto_start=1001),
        _f("Invoice_Date", "date", "Invoice Date"), _f("Due_Date", "date", "Due Date"),
        _f("Status", "picklist", "Status", picklist=INVOICE_STATUS),
        _f("Account_Name", "lookup", "Account Name", mandatory=True, lookup="Accounts"),
        _f("Contact_Name", "lookup", "Contact Name", lookup="Contacts"),
        _f("Sales_Order", "lookup", "Sales Order", lookup="Sales_Orders"),
        _f("Purchase_Order", "text", "Purchase Order", length=100),
        _f("Sales_Commission", "currency", "Sales Commission", decimal_place=2),
        *_inventory_common("Invoiced_Items"),
        *_address("Billing"), *_address("Shipping"),
        *_audit(),
    ]),
    _module("Purchase_Orders", "PurchaseOrders", "Purchase Order", "Purchase Orders", "Subject", "Subject",
            "purchaseorders", [
                _ro("PO_Number", "autonumber", "PO Number", auto_prefix="PO-", auto_start=1001),
                _f("PO_Date", "date", "PO Date"), _f("Due_Date", "date", "Due Date"),
                _f("Status", "picklist", "Status", picklist=PO_STATUS),
                _f("Vendor_Name", "lookup", "Vendor Name", mandatory=True, lookup="Vendors"),
                _f("Contact_Name", "lookup", "Contact Name", lookup="Contacts"),
                _f("Requisition_No", "text", "Requisition No", length=100),
                _f("Tracking_Number", "text", "Tracking Number", length=100),
                _f("Carrier", "picklist", "Carrier", picklist=CARRIER),
                _f("Sales_Commission", "currency", "Sales Commission", decimal_place=2),
                *_inventory_common("Purchase_Items"),
                *_address("Billing"), *_address("Shipping"),
                *_audit(),
            ]),
    _module("Sales_Orders", "SalesOrders", "Sales Order", "Sales Orders", "Subject", "Subject", "salesorders", [
        _ro("SO_Number", "autonumber", "SO Number", auto_prefix="SO-", auto_start=1001),
        _f("Customer_No", "text", "Customer No", length=100),
        _f("Status", "picklist", "Status", picklist=SO_STATUS),
        _f("Account_Name", "lookup", "Account Name", mandatory=True, lookup="Accounts"),
        _f("Contact_Name", "lookup", "Contact Name", lookup="Contacts"),
        _f("Quote_Name", "lookup", "Quote Name", lookup="Quotes"),
        _f("Purchase_Order", "text", "Purchase Order", length=100),
        _f("Due_Date", "date", "Due Date"),
        _f("Pending", "text", "Pending", length=100),
        _f("Carrier", "picklist", "Carrier", picklist=CARRIER),
        _f("Sales_Commission", "currency", "Sales Commission", decimal_place=2),
        *_inventory_common("Ordered_Items"),
        *_address("Billing"), *_address("Shipping"),
        *_audit(),
    ]),
    _module("Quotes", "Quotes", "Quote", "Quotes", "Subject", "Subject", "quotes", [
        _ro("Quote_Number", "autonumber", "Quote Number", auto_prefix="QT-", auto_start=1001),
        _f("Quote_Stage", "picklist", "Quote Stage", picklist=QUOTE_STAGE),
        _f("Valid_Till", "date", "Valid Till"),
        _f("Team", "text", "Team", length=100),
        _f("Carrier", "picklist", "Carrier", picklist=CARRIER),
        _f("Account_Name", "lookup", "Account Name", mandatory=True, lookup="Accounts"),
        _f("Contact_Name", "lookup", "Contact Name", lookup="Contacts"),
        *_inventory_common("Quoted_Items"),
        *_address("Billing"), *_address("Shipping"),
        *_audit(),
    ]),
]
for _parent, _sub in INVENTORY.items():
    _MODULES.append(ModuleDef(_sub, _sub, _sub.replace("_", " "), _sub.replace("_", " "), "id", None,
                              _parent.replace("_", "").lower(), _line_item_fields(_parent),
                              generated_type="subform", parent=_parent))

MODULES: dict[str, ModuleDef] = {m.api_name: m for m in _MODULES}
#: Case-insensitive module lookup (Zoho accepts ``invoices`` for ``Invoices``).
MODULES_CI: dict[str, str] = {name.lower(): name for name in MODULES}
MODULE_INDEX: dict[str, int] = {name: i for i, name in enumerate(MODULES, start=1)}
RECORD_MODULES = tuple(m.api_name for m in _MODULES if m.generated_type == "default")

#: Defaults (Quote_Stage "Draft": Kaizen #41) applied on insert when the field is absent.
DEFAULTS: dict[str, dict[str, Any]] = {
    "Quotes": {"Quote_Stage": "Draft"},
    "Products": {"Product_Active": True},
}

#: The Xero_* fields the sync writes (architecture.md): seeded until onboarding creates them. Types and
#: lengths are what ``zxsync setup zoho-fields`` sends, so a seeded org and an onboarded one look alike.
def _x(api: str, dtype: str = "text", length: int | None = None, unique: bool = False) -> FieldDef:
    if dtype == "text" and length is None:
        length = 255
    return FieldDef(api_name=api, data_type=dtype, label=api.replace("_", " "), length=length, custom=True,
                    unique=unique, decimal_place=2 if dtype == "currency" else None)


_XERO_DOCUMENT_FIELDS = [
    _x("Xero_Invoice_ID", length=100, unique=True), _x("Xero_Invoice_Number", length=100),
    _x("Xero_Status", length=50), _x("Xero_Amount_Paid", "currency"), _x("Xero_Amount_Due", "currency"),
    _x("Xero_Fully_Paid_On", "date"), _x("Xero_Online_URL", "website"), _x("Xero_Payments", "textarea"),
    _x("Xero_Sync_Status", length=255), _x("Xero_Last_Synced", "datetime"),
]
XERO_FIELDS: dict[str, list[FieldDef]] = {
    "Accounts": [_x("Xero_Contact_ID", length=100, unique=True)],
    "Contacts": [_x("Xero_Contact_ID", length=100, unique=True)],
    "Vendors": [_x("Xero_Contact_ID", length=100, unique=True)],
    "Products": [_x("Xero_Item_ID", length=100, unique=True)],
    "Invoices": list(_XERO_DOCUMENT_FIELDS),
    "Sales_Orders": list(_XERO_DOCUMENT_FIELDS),
    "Quotes": list(_XERO_DOCUMENT_FIELDS),
    "Purchase_Orders": [
        _x("Xero_PO_ID", length=100, unique=True), _x("Xero_Bill_ID", length=100, unique=True),
        _x("Xero_Number", length=100), _x("Xero_Status", length=50), _x("Xero_Sync_Status", length=255),
    ],
}


def with_id(f: FieldDef, field_id: str) -> FieldDef:
    return replace(f, id=field_id)


def standard_field_id(org_id: str, module: str, index: int) -> str:
    """Deterministic ids for standard fields: 19 digits like Zoho's."""
    return f"{org_id}9{MODULE_INDEX[module]:02d}{index:07d}"


def module_id(org_id: str, module: str) -> str:
    return f"{org_id}8{MODULE_INDEX[module]:09d}"


# --- Fields-API rendering --------------------------------------------------------------------------
_PROFILES = [
    {"permission_type": "read_write", "name": "Administrator", "id": ""},
    {"permission_type": "read_write", "name": "Standard", "id": ""},
]


def render_field(f: FieldDef, org_id: str, module: str, iso: Any, picklist_override: tuple[str, ...] | None = None,
                 sequence: int = 1) -> dict[str, Any]:
    """The Fields-API object for one field: the keys of Zoho's v8 example plus those fields.json requires."""
    json_type, ui_type, _ = TYPE_META[f.data_type]
    values = picklist_override if picklist_override is not None else f.picklist
    picklist = []
    if f.data_type in ("picklist", "multiselectpicklist"):
        picklist = [{"display_value": v, "actual_value": v, "reference_value": v, "sequence_number": i + 1,
                     "id": f"{f.id}{i + 1:03d}"[-19:], "type": "used", "colour_code": None, "maps": []}
                    for i, v in enumerate(values)]
        if f.data_type == "picklist":
            picklist.insert(0, {"display_value": "-None-", "actual_value": "-None-", "reference_value": "-None-",
                                "sequence_number": 0, "id": f"{f.id}000"[-19:], "type": "used",
                                "colour_code": None, "maps": []})
    lookup: dict[str, Any] = {}
    if f.lookup:
        lookup = {"display_label": f.lookup.replace("_", " "), "api_name": f.api_name,
                  "module": {"api_name": f.lookup, "id": module_id(org_id, f.lookup)}, "id": f.id,
                  "query_details": {}, "revalidate_filter_during_edit": False, "show_fields": []}
    subform: dict[str, Any] | None = None
    associated = None
    if f.subform:
        subform = {"module": f.subform, "id": module_id(org_id, f.subform)}
        associated = {"api_name": f.subform, "id": module_id(org_id, f.subform)}
    auto_number: dict[str, Any] = {}
    if f.data_type == "autonumber":
        auto_number = {"prefix": f.auto_prefix, "suffix": None, "start_number": f.auto_start,
                       "starting_number_length": len(str(f.auto_start or 1))}
    currency: dict[str, Any] = {}
    if f.data_type == "currency":
        currency = {"rounding_option": "normal", "precision": f.decimal_place if f.decimal_place is not None else 2}
    created = iso(f.created_time) if f.created_time else None
    editable = not f.read_only
    return {
        "associated_module": associated,
        "webhook": True,
        "operation_type": {"web_update": editable, "api_create": editable, "web_create": editable,
                           "api_update": editable},
        "colour_code_enabled_by_system": False,
        "field_label": f.display_label,
        "tooltip": None,
        "type": "used",
        "field_read_only": f.read_only,
        "customizable_properties": [] if f.read_only else ["mandatory", "unique", "tooltip"],
        "display_label": f.display_label,
        "read_only": f.read_only,
        "association_details": None,
        "businesscard_supported": False,
        "multi_module_lookup": {},
        "id": f.id,
        "created_time": created,
        "modified_time": created,
        "filterable": f.data_type not in ("subform", "jsonarray"),
        "visible": True,
        "profiles": [dict(p, id=f"{org_id}7{i:09d}") for i, p in enumerate(_PROFILES, start=1)],
        "view_type": {"view": True, "edit": editable, "quick_create": f.mandatory, "create": editable},
        "separator": False,
        "searchable": f.data_type in ("text", "email", "phone", "picklist", "autonumber"),
        "history_tracking_enabled": False,
        "external": None,
        "api_name": f.api_name,
        "parent_field": None,
        "unique": {"casesensitive": "true" if f.case_sensitive else "false"} if f.unique else {},
        "enable_colour_code": False,
        "child_fields": None,
        "pick_list_values": picklist,
        "system_mandatory": f.mandatory,
        "private": None,
        "virtual_field": False,
        "json_type": json_type,
        "crypt": None,
        "range": None,
        "created_source": "crm" if f.custom else "default",
        "display_type": -1,
        "ui_type": ui_type,
        "public": False,
        "email_parser": {"fields_update_supported": False, "record_operations_supported": False},
        "currency": currency,
        "custom_field": f.custom,
        "lookup": lookup,
        "hipaa_compliance": None,
        "convert_mapping": {"Contacts": None, "Deals": None, "Accounts": None},
        "address": None,
        "rollup_summary": {},
        "length": f.max_length,
        "column_name": (f"{module[:4].upper()}CF{sequence}" if f.custom else f.api_name.upper()),
        "display_field": f.api_name == MODULES[module].display_field,
        "pick_list_values_sorted_lexically": False,
        "sortable": f.data_type not in ("subform", "jsonarray", "textarea"),
        "layout_associations": [{"api_name": "Standard__s", "name": "Standard", "id": f"{org_id}6{MODULE_INDEX[module]:09d}"}],
        "global_picklist": None,
        "display_format": None,
        "history_tracking": None,
        "data_type": f.data_type,
        "formula": {},
        "additional_column": None,
        "hipaa_compliance_enabled": False,
        "decimal_place": f.decimal_place,
        "mass_update": editable,
        "multiselectlookup": {},
        "auto_number": auto_number,
        # Keys fields.json (v8 snapshot) also lists; older responses carry them.
        "blueprint_supported": False,
        "available_in_user_layout": True,
        "quick_sequence_number": str(sequence),
        "sequence_number": sequence,
        "refer_from_field": None,
        "show_type": 7,
        "category": 0,
        "sharing_properties": None,
        "file_upolad_optionlist": [],
        "sub_module": None,
        "subform": subform,
        "multiuserlookup": None,
        "autonumber": None,
        "allowed_modules": [],
        "common.picklist": None,
        "textarea": {"type": "rich_text" if f.data_type == "textarea" and f.max_length > 2000 else "small"}
        if f.data_type == "textarea" else None,
        "static_field": False,
        "_update_existing_records": False,
        "number_separator": f.data_type in ("integer", "double", "currency", "bigint"),
    }


__all__ = [
    "CREATABLE_TYPES",
    "DEFAULTS",
    "DUPLICATE_CHECK_TYPES",
    "INVENTORY",
    "MODULES",
    "MODULES_CI",
    "RECORD_MODULES",
    "SUBFORM_PARENT",
    "TYPE_META",
    "XERO_FIELDS",
    "FieldDef",
    "ModuleDef",
    "module_id",
    "render_field",
    "standard_field_id",
    "with_id",
]
