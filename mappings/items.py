"""Zoho Products -> Xero Items.

``Code`` = ``Product_Code`` (required, unique, at most 30 characters) is the natural key; the
sales and purchase details carry the unit price at 4 dp, the GL account from the account
mapping and the TaxType from the product's Zoho tax through the tax map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mappings import limits, money
from mappings.config import FieldMapping, OrgConfig
from mappings.fields import apply, nest, present, resolve
from mappings.frames import as_text, col, header_frame, key_part
from mappings.reference import ReferenceData
from mappings.rejects import Reject
from mappings.results import Document, MappingResult, content_hash, normalize_links
from mappings.validate import Ctx, check_accounts, check_lengths, check_tax_types, emit

BUILTINS = [
    FieldMapping(target="Name", source="Product_Name", transforms=["trim"]),
    FieldMapping(target="Description", source="Description", transforms=["trim"]),
]


def _product_tax(H: pd.DataFrame) -> pd.Series:
    """The product's Zoho tax names (multi-select) as one key; 'A + B' when several."""
    taxes = col(H, "Tax")

    def key(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            names = sorted({(t.get("name") if isinstance(t, dict) else str(t)) for t in v if t})
            return " + ".join(n for n in names if n) or np.nan
        if isinstance(v, str) and v.strip():
            return v.strip()
        return np.nan

    return taxes.map(key).astype("str")


def map_products(
    records: Sequence[Mapping[str, Any]], *, org: OrgConfig, ref: ReferenceData, links: Any = None
) -> MappingResult:
    """Zoho Products -> Xero Items (create / update / unchanged) + rejects."""
    result = MappingResult(entity="Items", module="Products")
    if not records:
        return result
    links_d = normalize_links(links)
    H = header_frame(records)
    zid = H["id"]
    H["_doc"] = zid
    code = as_text(col(H, "Product_Code"))
    numbers = dict(zip(zid.tolist(), code.astype(object).where(code.notna(), None).tolist()))
    ctx = Ctx(org=org, ref=ref, module="Products", doc_type="ITEM", numbers=numbers)
    rejects: list[Reject] = []

    maps = resolve(BUILTINS, org.fields.products, "products")
    mapped, misses = apply(H, maps)
    for miss in misses:
        rejects += emit(
            ctx,
            "field.lookup_missing",
            lambda m=miss: H.assign(_v=m.values),
            miss.mask,
            lambda r, m=miss: {"value": r["_v"], "key": m.key, "field": m.target},
            line_col=None,
        )

    # Code: present and unique (in this page, and against Xero items owned by another product).
    rejects += emit(
        ctx, "item.code_missing", H, code.isna(), lambda r: {}, field="Product_Code", line_col=None
    )
    order = pd.DataFrame({"zid": zid, "code": code}).sort_values("zid", kind="stable")
    owner = order.dropna(subset=["code"]).drop_duplicates("code").set_index("code")["zid"]
    dup = code.notna() & (code.map(owner) != zid)
    rejects += emit(
        ctx,
        "item.code_duplicate",
        lambda: H.assign(_c=code, _o=code.map(owner)),
        dup,
        lambda r: {"value": r["_c"], "other": r["_o"]},
        field="Product_Code",
        line_col=None,
    )
    linked_item_ids = {link.xero_id: z for z, link in links_d.items()}
    xero_item = code.map({c: i.ItemID for c, i in ref.items_by_code.items()})
    taken = (
        xero_item.notna() & xero_item.map(linked_item_ids).notna() & (xero_item.map(linked_item_ids) != zid)
    )
    rejects += emit(
        ctx,
        "item.code_duplicate",
        lambda: H.assign(_c=code, _o=xero_item.map(linked_item_ids)),
        taken & ~dup,
        lambda r: {"value": r["_c"], "other": r["_o"]},
        field="Product_Code",
        line_col=None,
    )

    # Accounts and taxes for both sides.
    category = as_text(col(H, "Product_Category"))
    details: dict[str, pd.Series] = {}
    checks = []
    for side, doc_type in (("sales", "ACCREC"), ("purchases", "ACCPAY")):
        purchases = side == "purchases"
        by_code = org.accounts.purchases_by_product_code if purchases else org.accounts.by_product_code
        by_cat = org.accounts.purchases_by_category if purchases else org.accounts.by_category
        default = (
            org.accounts.defaults.products_purchases if purchases else org.accounts.defaults.products_sales
        )
        a1, a2 = code.map(dict(by_code)), category.map(dict(by_cat))
        account = a1.where(a1.notna(), a2)
        prefix = "accounts.purchases_by_" if purchases else "accounts.by_"
        key = pd.Series(
            np.where(
                a1.notna(),
                prefix + "product_code." + key_part(code),
                prefix + "category." + key_part(category),
            ),
            index=H.index,
            dtype="object",
        )
        dkey = f"accounts.defaults.products_{side}"
        if default is not None:
            key = key.where(account.notna(), dkey)
            account = account.where(account.notna(), default)
        target = "PurchaseDetails" if purchases else "SalesDetails"
        details[f"{target}.AccountCode"] = account
        tax_names = _product_tax(H)
        tmap = dict(org.tax.purchases_map if purchases else org.tax.map)
        tdefault = org.tax.purchases_default if purchases else org.tax.default
        tax_type = tax_names.map(tmap)
        tkey = pd.Series("tax.purchases_map" if purchases else "tax.map", index=H.index, dtype="object")
        tkey = tkey.where(tax_names.isna(), tkey + "." + key_part(tax_names))
        if tdefault is not None:
            tax_type = tax_type.where(tax_names.notna(), tdefault)
            tkey = tkey.where(tax_names.notna(), "tax.purchases_default" if purchases else "tax.default")
        unmapped_tax = tax_names.notna() & tax_type.isna()
        rejects += emit(
            ctx,
            "tax.unmapped",
            lambda t=tax_names: H.assign(_t=t),
            unmapped_tax,
            lambda r, p=purchases: {
                "value": r["_t"],
                "where": "the product",
                "key": "tax.purchases_map" if p else "tax.map",
            },
            field="Tax",
            line_col=None,
        )
        details[f"{target}.TaxType"] = (
            tax_type
            if org.tax.line_amount_types != "NoTax"
            else pd.Series(np.nan, index=H.index, dtype="object")
        )
        checks.append((doc_type, target, account, key, details[f"{target}.TaxType"], tkey))
        unmapped_acc = account.isna()
        rejects += emit(
            ctx,
            "account.unmapped",
            lambda: H.assign(_p=as_text(col(H, "Product_Name")).fillna(code)),
            unmapped_acc,
            lambda r, s=side: {
                "value": r["_p"],
                "where": f"the product ({s})",
                "module_key": f"products_{s}",
            },
            field=f"{target}.AccountCode",
            line_col=None,
        )
    price4, ok = money.to_units4(col(H, "Unit_Price"))
    details["SalesDetails.UnitPrice"] = pd.Series(
        money.from_units(np.where(ok, price4, 0).astype(object), 4), index=H.index
    ).where(ok)
    for doc_type, target, account, key, tax_type, tkey in checks:
        frame = H.assign(_acct=account, _acct_key=key, _tax=tax_type, _tax_key=tkey)
        rejects += check_accounts(
            ctx, frame, "_acct", "_acct_key", doc_type=doc_type, field=f"{target}.AccountCode"
        )
        rejects += check_tax_types(
            ctx, frame, "_tax", "_tax_key", "_acct", field=f"{target}.TaxType", doc_type=doc_type
        )

    out = pd.concat([mapped, pd.DataFrame(details, index=H.index)], axis=1)
    out = out.assign(Code=code)
    rejects += check_lengths(
        ctx,
        out.assign(_doc=zid),
        [
            ("Code", limits.ITEM_CODE_MAX, "Product_Code"),
            ("Name", limits.ITEM_NAME_MAX, "fields.products"),
            ("Description", limits.ITEM_DESCRIPTION_MAX, "fields.products"),
        ],
    )
    result.rejects.extend(rejects)
    blocked = {r.record_id for r in rejects if r.blocking}
    rows = out.astype(object).where(out.notna(), None).to_dict("records")
    for z, row, xi in zip(zid.tolist(), rows, xero_item.tolist()):
        if z in blocked:
            continue
        payload = {"Code": row["Code"], **nest({k: v for k, v in row.items() if k != "Code"})}
        digest = content_hash(payload)
        link = links_d.get(z)
        xid = link.xero_id if link else (xi if present(xi) else None)
        doc = dict(
            entity="Items",
            module="Products",
            zoho_id=z,
            number=row["Code"],
            content_hash=digest,
            natural_key={"Code": row["Code"]},
            matched_by="link" if link else ("code" if xid else None),
        )
        if xid is None:
            result.documents.append(Document(action="create", xero_id=None, payload=payload, **doc))
        elif link is not None and link.content_hash == digest:
            result.unchanged.append(Document(action="unchanged", xero_id=xid, payload=payload, **doc))
        else:
            result.documents.append(
                Document(action="update", xero_id=xid, payload={"ItemID": xid, **payload}, **doc)
            )
    return result
