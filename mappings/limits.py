"""Xero field length limits checked before any API call.

Hard-coded on purpose: the product never reads the OpenAPI file at run time. Each constant cites
where it comes from; ``tests/test_validate_limits.py`` checks the spec-derived ones against
``$ZX_SPECS_DIR/xero_accounting.yaml`` (XeroAPI/Xero-OpenAPI 16.1.0) so a spec update that
changes a limit fails a test instead of drifting silently.
"""

from __future__ import annotations

from typing import Final

# --- from xero_accounting.yaml `components.schemas.<Schema>.properties.<Field>.maxLength` ------
INVOICE_NUMBER_MAX: Final = 255  # Invoice.InvoiceNumber
CONTACT_NAME_MAX: Final = 255  # Contact.Name
CONTACT_NUMBER_MAX: Final = 50  # Contact.ContactNumber
CONTACT_ACCOUNT_NUMBER_MAX: Final = 50  # Contact.AccountNumber
CONTACT_FIRST_NAME_MAX: Final = 255  # Contact.FirstName
CONTACT_LAST_NAME_MAX: Final = 255  # Contact.LastName
CONTACT_EMAIL_MAX: Final = 255  # Contact.EmailAddress
CONTACT_TAX_NUMBER_MAX: Final = 50  # Contact.TaxNumber
ADDRESS_LINE_MAX: Final = 500  # Address.AddressLine1..4
ADDRESS_CITY_MAX: Final = 255  # Address.City
ADDRESS_REGION_MAX: Final = 255  # Address.Region
ADDRESS_POSTAL_CODE_MAX: Final = 50  # Address.PostalCode
ADDRESS_COUNTRY_MAX: Final = 50  # Address.Country
PHONE_NUMBER_MAX: Final = 50  # Phone.PhoneNumber
ITEM_CODE_MAX: Final = 30  # Item.Code
ITEM_NAME_MAX: Final = 50  # Item.Name
ITEM_DESCRIPTION_MAX: Final = 4000  # Item.Description
TRACKING_NAME_MAX: Final = 100  # TrackingCategory.Name / TrackingOption.Name

#: (schema, property) -> constant, for the conformance test.
SPEC_LIMITS: Final[dict[tuple[str, str], int]] = {
    ("Invoice", "InvoiceNumber"): INVOICE_NUMBER_MAX,
    ("Contact", "Name"): CONTACT_NAME_MAX,
    ("Contact", "ContactNumber"): CONTACT_NUMBER_MAX,
    ("Contact", "AccountNumber"): CONTACT_ACCOUNT_NUMBER_MAX,
    ("Contact", "FirstName"): CONTACT_FIRST_NAME_MAX,
    ("Contact", "LastName"): CONTACT_LAST_NAME_MAX,
    ("Contact", "EmailAddress"): CONTACT_EMAIL_MAX,
    ("Contact", "TaxNumber"): CONTACT_TAX_NUMBER_MAX,
    ("Address", "AddressLine1"): ADDRESS_LINE_MAX,
    ("Address", "City"): ADDRESS_CITY_MAX,
    ("Address", "Region"): ADDRESS_REGION_MAX,
    ("Address", "PostalCode"): ADDRESS_POSTAL_CODE_MAX,
    ("Address", "Country"): ADDRESS_COUNTRY_MAX,
    ("Phone", "PhoneNumber"): PHONE_NUMBER_MAX,
    ("Item", "Code"): ITEM_CODE_MAX,
    ("Item", "Name"): ITEM_NAME_MAX,
    ("Item", "Description"): ITEM_DESCRIPTION_MAX,
    ("TrackingOption", "Name"): TRACKING_NAME_MAX,
}

# --- not carried as maxLength in the 16.1.0 spec -----------------------------------------------
#: Invoice.Reference: Xero documents 255 (developer.xero.com invoices page); the spec omits it.
REFERENCE_MAX: Final = 255
#: LineItem.Description: 4000 like Item.Description (Xero invoices page); the spec omits it.
LINE_DESCRIPTION_MAX: Final = 4000
#: PurchaseOrder.PurchaseOrderNumber: Xero documents 255; the spec omits it.
PURCHASE_ORDER_NUMBER_MAX: Final = 255
#: Account.Code: "alpha numeric ... (max length = 10)" (spec description of Account.Code).
ACCOUNT_CODE_MAX: Final = 10
#: At most two tracking categories per line (spec LineItem.Tracking description; xero-api-notes §8.7).
MAX_TRACKING_PER_LINE: Final = 2

#: The field limits applied by the validators: (entity, payload path) -> max length.
FIELD_LIMITS: Final[dict[tuple[str, str], int]] = {
    ("Invoice", "InvoiceNumber"): INVOICE_NUMBER_MAX,
    ("Invoice", "Reference"): REFERENCE_MAX,
    ("PurchaseOrder", "PurchaseOrderNumber"): PURCHASE_ORDER_NUMBER_MAX,
    ("PurchaseOrder", "Reference"): REFERENCE_MAX,
    ("LineItem", "Description"): LINE_DESCRIPTION_MAX,
    ("Contact", "Name"): CONTACT_NAME_MAX,
    ("Contact", "ContactNumber"): CONTACT_NUMBER_MAX,
    ("Contact", "AccountNumber"): CONTACT_ACCOUNT_NUMBER_MAX,
    ("Contact", "FirstName"): CONTACT_FIRST_NAME_MAX,
    ("Contact", "LastName"): CONTACT_LAST_NAME_MAX,
    ("Contact", "EmailAddress"): CONTACT_EMAIL_MAX,
    ("Contact", "TaxNumber"): CONTACT_TAX_NUMBER_MAX,
    ("Item", "Code"): ITEM_CODE_MAX,
    ("Item", "Name"): ITEM_NAME_MAX,
    ("Item", "Description"): ITEM_DESCRIPTION_MAX,
}
