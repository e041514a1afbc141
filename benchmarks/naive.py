"""The naive baseline (benchmark-only, never product code): the usual per-record recipe.

For each Zoho record (accounts, then products, then invoices): search Xero for it (one GET with a
``where`` on its natural key), create it when missing (one PUT with one element), and write the
Xero id back onto the Zoho record (one PUT of one record). Zoho is read in pages of 200, as anyone
would. The mapping is the minimum that Xero accepts for the generated org (demo taxes, account
200), so the baseline's calls are the recipe's, not a mapping engine's.

    python -m benchmarks.naive [--invoices 1000]    # on its own stack; prints calls and time
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from benchmarks.harness import Org, Stack, XeroUser, ZohoUser, calls_between, stack, tenant_stats

TAX = {"GST 15%": "OUTPUT2", "Zero Rated": "ZERORATED"}
STATUS = {"Created": "DRAFT", "Approved": "AUTHORISED", "Delivered": "AUTHORISED"}


def _quote(text: str) -> str:
    return text.replace('"', '\\"')


def _tax_type(line: dict[str, Any]) -> str:
    taxes = line.get("Line_Tax") or []
    name = taxes[0].get("name") if taxes and isinstance(taxes[0], dict) else None
    return TAX.get(str(name), "NONE")


def naive_sync(st: Stack, org: Org) -> dict[str, Any]:
    """Push the org's accounts, products and invoices record by record; returns calls and time."""
    xero = XeroUser(st.xero_url, org.xero_tenant)
    zoho = ZohoUser(st.zoho_url, org.zoho_org)
    before_x = tenant_stats(st.xero_url, org.xero_tenant)
    before_z = tenant_stats(st.zoho_url, org.zoho_org)
    began = time.monotonic()
    cpu0 = time.process_time()
    contacts: dict[str, str] = {}
    for page in zoho.pages("Accounts", ["Account_Name", "Account_Number"]):
        for acc in page:
            found = xero.get("Contacts", where=f'ContactNumber=="{acc["id"]}"')["Contacts"]
            if found:
                contacts[acc["id"]] = found[0]["ContactID"]
            else:
                made = xero.put("Contacts", {"Contacts": [{"Name": acc["Account_Name"], "ContactNumber": acc["id"],
                                                             "AccountNumber": acc.get("Account_Number")}]})
                contacts[acc["id"]] = made["Contacts"][0]["ContactID"]
            zoho.update("Accounts", [{"id": acc["id"], "Xero_Contact_ID": contacts[acc["id"]]}])
    items: dict[str, str] = {}
    for page in zoho.pages("Products", ["Product_Name", "Product_Code", "Unit_Price"]):
        for prod in page:
            code = prod["Product_Code"]
            found = xero.get("Items", where=f'Code=="{_quote(code)}"')["Items"]
            if found:
                item_id = found[0]["ItemID"]
            else:
                made = xero.put("Items", {"Items": [{"Code": code, "Name": prod["Product_Name"][:50],
                                                     "SalesDetails": {"UnitPrice": prod.get("Unit_Price") or 0,
                                                                      "AccountCode": "200"}}]})
                item_id = made["Items"][0]["ItemID"]
            items[prod["id"]] = code
            zoho.update("Products", [{"id": prod["id"], "Xero_Item_ID": item_id}])
    fields = ["Subject", "Invoice_Number", "Invoice_Date", "Due_Date", "Status", "Account_Name", "Invoiced_Items"]
    refused = 0
    for page in zoho.pages("Invoices", fields):
        for inv in page:
            number = inv["Invoice_Number"]
            found = xero.get("Invoices", InvoiceNumbers=number)["Invoices"]
            if found:
                invoice_id = found[0]["InvoiceID"]
            else:
                lines = [{"Description": (line.get("Product_Name") or {}).get("name") or "Item",
                          "Quantity": line.get("Quantity"), "UnitAmount": line.get("List_Price"),
                          "ItemCode": items.get(str((line.get("Product_Name") or {}).get("id"))),
                          "AccountCode": "200", "TaxType": _tax_type(line)}
                         for line in inv.get("Invoiced_Items") or []]
                body = {"Type": "ACCREC", "InvoiceNumber": number, "Reference": inv.get("Subject"),
                        "Contact": {"ContactID": contacts[str(inv["Account_Name"]["id"])]},
                        "Date": inv["Invoice_Date"], "DueDate": inv["Due_Date"], "LineAmountTypes": "Exclusive",
                        "Status": STATUS.get(inv.get("Status") or "", "DRAFT"), "LineItems": lines}
                try:
                    invoice_id = xero.put("Invoices", {"Invoices": [body]})["Invoices"][0]["InvoiceID"]
                except Exception:  # noqa: BLE001 - counted; the recipe goes on with the next record
                    refused += 1
                    continue
            zoho.update("Invoices", [{"id": inv["id"], "Xero_Invoice_ID": invoice_id}])
    wall = time.monotonic() - began
    x = calls_between(before_x, tenant_stats(st.xero_url, org.xero_tenant))
    z = calls_between(before_z, tenant_stats(st.zoho_url, org.zoho_org))
    return {"n": org.invoices, "xero": x.as_dict(), "zoho": z.as_dict(), "total_calls": x.total + z.total,
            "wall_s": round(wall, 1), "cpu_s": round(time.process_time() - cpu0, 1), "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1000)
    args = parser.parse_args()
    with stack() as st:
        st.relax_limits()
        org = st.create_org(f"naive{args.invoices}", args.invoices)
        print(json.dumps(naive_sync(st, org), indent=1))


if __name__ == "__main__":
    main()
