"""Zoho Accounts (+ their primary Contact) and Vendors -> Xero Contacts.

``ContactNumber`` is always the Zoho record id: it is the natural key that heals a crash between
Xero's commit and our bookkeeping, and the second step of first-sync matching (after the link,
before email and normalised name). Name clashes with other active Xero contacts get the org's
deterministic suffix, or are reported; never a silent duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mappings import limits
from mappings.config import FieldMapping, LookupTransform, OrgConfig
from mappings.fields import apply, nest, present, resolve
from mappings.frames import as_text, col, header_frame
from mappings.reference import ReferenceData
from mappings.rejects import Reject
from mappings.results import Document, MappingResult, content_hash, normalize_links
from mappings.rules import match_contacts, resolve_name_clashes
from mappings.validate import Ctx, check_emails, check_lengths, emit

ADDRESS = ("AddressLine1", "City", "Region", "PostalCode", "Country")


def _currency_mapping(org: OrgConfig, source: str) -> FieldMapping:
    transforms: list[Any] = ["trim"]
    if org.currency.map:
        transforms.append(LookupTransform(lookup=dict(org.currency.map)))
    return FieldMapping(target="DefaultCurrency", source=source, transforms=transforms)


def account_builtins(org: OrgConfig) -> list[FieldMapping]:
    """Built-in Account (+ primary Contact as ``contact.*``) -> Contact mappings."""
    m = [
        FieldMapping(target="Name", source="Account_Name", transforms=["trim"]),
        FieldMapping(target="FirstName", source="contact.First_Name", transforms=["trim"]),
        FieldMapping(target="LastName", source="contact.Last_Name", transforms=["trim"]),
        FieldMapping(target="EmailAddress", source=["contact.Email", "Email"], transforms=["trim"]),
        FieldMapping(target="Website", source="Website", transforms=["trim"]),
        FieldMapping(target="Phones.DEFAULT.PhoneNumber", source="Phone", transforms=["trim"]),
        FieldMapping(target="Phones.MOBILE.PhoneNumber", source="contact.Mobile", transforms=["trim"]),
        FieldMapping(target="Phones.FAX.PhoneNumber", source="Fax", transforms=["trim"]),
        _currency_mapping(org, "Currency"),
    ]
    for prefix, kind in (("Billing", "POBOX"), ("Shipping", "STREET")):
        for zoho, xero in zip(("Street", "City", "State", "Code", "Country"), ADDRESS):
            m.append(
                FieldMapping(
                    target=f"Addresses.{kind}.{xero}", source=f"{prefix}_{zoho}", transforms=["trim"]
                )
            )
    return m


def vendor_builtins(org: OrgConfig) -> list[FieldMapping]:
    """Built-in Vendor -> Contact (supplier) mappings."""
    m = [
        FieldMapping(target="Name", source="Vendor_Name", transforms=["trim"]),
        FieldMapping(target="EmailAddress", source="Email", transforms=["trim"]),
        FieldMapping(target="Website", source="Website", transforms=["trim"]),
        FieldMapping(target="Phones.DEFAULT.PhoneNumber", source="Phone", transforms=["trim"]),
        _currency_mapping(org, "Currency"),
    ]
    for zoho, xero in zip(("Street", "City", "State", "Zip_Code", "Country"), ADDRESS):
        m.append(FieldMapping(target=f"Addresses.POBOX.{xero}", source=zoho, transforms=["trim"]))
    return m


def _primary_contacts(H: pd.DataFrame, contacts: Any, org: OrgConfig) -> pd.DataFrame:
    """Join each Account's primary Contact as ``contact.<field>`` columns."""
    if contacts is None or len(contacts) == 0:
        return H
    C = contacts if isinstance(contacts, pd.DataFrame) else header_frame(list(contacts))
    C = C.copy()
    if org.contacts.primary_contact == "earliest":
        C["_acc"] = as_text(col(C, "Account_Name.id"))
        C["_t"] = pd.to_datetime(as_text(col(C, "Created_Time")), utc=True, errors="coerce", format="ISO8601")
        C = C.dropna(subset=["_acc"]).sort_values(["_acc", "_t", "id"], kind="stable", na_position="last")
        first = C.drop_duplicates("_acc").set_index("_acc")
        key = H["id"]
    else:
        first = C.drop_duplicates("id").set_index("id")
        key = as_text(col(H, f"{org.contacts.primary_contact}.id"))
    fields = [c for c in first.columns if not c.startswith("_") and c != "id"]
    joined = {f"contact.{c}": key.map(first[c]) for c in fields}
    joined["contact.id"] = (
        key.where(key.isin(first.index))
        if org.contacts.primary_contact != "earliest"
        else (key.map(pd.Series(first["id"].to_numpy(), index=first.index)))
    )
    return pd.concat([H, pd.DataFrame(joined, index=H.index)], axis=1)


def map_accounts(
    records: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    links: Any = None,
    contacts: Any = None,
) -> MappingResult:
    """Zoho Accounts (+ primary Contact from ``contacts``, the Zoho Contacts records) -> Xero Contacts."""
    H = header_frame(records)
    H = _primary_contacts(H, contacts, org) if len(H) else H
    return _map_contacts(H, "Accounts", "contacts", account_builtins(org), org, ref, links)


def map_vendors(
    records: Sequence[Mapping[str, Any]], *, org: OrgConfig, ref: ReferenceData, links: Any = None
) -> MappingResult:
    """Zoho Vendors -> Xero Contacts (suppliers), ContactNumber = the Zoho vendor id."""
    return _map_contacts(header_frame(records), "Vendors", "vendors", vendor_builtins(org), org, ref, links)


def _map_contacts(
    H: pd.DataFrame,
    module: str,
    section: str,
    builtins: list[FieldMapping],
    org: OrgConfig,
    ref: ReferenceData,
    links: Any,
) -> MappingResult:
    result = MappingResult(entity="Contacts", module=module)
    if H.empty:
        return result
    links_d = normalize_links(links)
    zid = H["id"]
    maps = resolve(builtins, getattr(org.fields, section), section)
    mapped, misses = apply(H, maps)
    name_src = "Account_Name" if module == "Accounts" else "Vendor_Name"
    numbers = dict(
        zip(zid.tolist(), as_text(col(H, name_src)).astype(object).where(lambda s: s.notna(), None).tolist())
    )
    ctx = Ctx(org=org, ref=ref, module=module, doc_type="CONTACT", numbers=numbers)
    rejects: list[Reject] = []
    for miss in misses:
        rejects += emit(
            ctx,
            "field.lookup_missing",
            lambda m=miss: H.assign(_doc=zid, _v=m.values),
            miss.mask,
            lambda r, m=miss: {"value": r["_v"], "key": m.key, "field": m.target},
            line_col=None,
        )
    name = as_text(mapped["Name"]) if "Name" in mapped else pd.Series(np.nan, index=H.index, dtype="str")
    email = as_text(mapped["EmailAddress"]) if "EmailAddress" in mapped else pd.Series(np.nan, index=H.index)
    frame = H.assign(_doc=zid)
    rejects += emit(
        ctx, "contact.name_missing", frame, name.isna(), lambda r: {}, field=name_src, line_col=None
    )

    # First-sync matching: link, ContactNumber, email, normalised name (org's order).
    linked_all = {z: link.xero_id for z, link in links_d.items()}
    matches = match_contacts(
        pd.DataFrame({"zoho_id": zid, "name": name, "email": email}),
        ref.contacts_frame,
        linked_all,
        list(org.contacts.match_order),
    )
    xero_id = pd.Series(matches["xero_id"].to_numpy(), index=H.index)
    matched_by = pd.Series(matches["matched_by"].to_numpy(), index=H.index)
    status = xero_id.map({c.ContactID: c.ContactStatus for c in ref.contacts})
    rejects += emit(
        ctx,
        "contact.archived",
        lambda: frame.assign(_n=name.fillna(zid)),
        status == "ARCHIVED",
        lambda r: {"value": r["_n"]},
        field="ContactStatus",
        line_col=None,
    )

    # Name clashes with other active Xero contacts and inside the batch.
    has_name = name.notna()
    clash_in = H.assign(zoho_id=zid, name=name, xero_id=xero_id)[has_name]
    clashes = resolve_name_clashes(
        clash_in, ref.contacts_frame, org.contacts.name_clash, org.contacts.name_clash_suffix
    )
    final_name = name.copy().astype(object)
    final_name.loc[clashes.index] = clashes["name"].astype(object)
    clash = pd.Series(False, index=H.index)
    clash.loc[clashes.index] = clashes["clash"]
    other = pd.Series(np.nan, index=H.index, dtype="object")
    other.loc[clashes.index] = clashes["other"]
    rejects += emit(
        ctx,
        "contact.name_clash",
        lambda: frame.assign(_n=name, _o=other),
        clash,
        lambda r: {"value": r["_n"], "other": r["_o"]},
        field="Name",
        line_col=None,
    )
    mapped = mapped.assign(Name=final_name, ContactNumber=zid)

    # Pre-flight: lengths, email, default currency.
    lim = [
        ("Name", limits.CONTACT_NAME_MAX, f"fields.{section}"),
        ("ContactNumber", limits.CONTACT_NUMBER_MAX, "ContactNumber"),
        ("FirstName", limits.CONTACT_FIRST_NAME_MAX, f"fields.{section}"),
        ("LastName", limits.CONTACT_LAST_NAME_MAX, f"fields.{section}"),
        ("EmailAddress", limits.CONTACT_EMAIL_MAX, f"fields.{section}"),
        ("AccountNumber", limits.CONTACT_ACCOUNT_NUMBER_MAX, f"fields.{section}"),
        ("TaxNumber", limits.CONTACT_TAX_NUMBER_MAX, f"fields.{section}"),
    ]
    for kind in ("POBOX", "STREET"):
        lim += [
            (f"Addresses.{kind}.AddressLine1", limits.ADDRESS_LINE_MAX, f"fields.{section}"),
            (f"Addresses.{kind}.City", limits.ADDRESS_CITY_MAX, f"fields.{section}"),
            (f"Addresses.{kind}.Region", limits.ADDRESS_REGION_MAX, f"fields.{section}"),
            (f"Addresses.{kind}.PostalCode", limits.ADDRESS_POSTAL_CODE_MAX, f"fields.{section}"),
            (f"Addresses.{kind}.Country", limits.ADDRESS_COUNTRY_MAX, f"fields.{section}"),
        ]
    for kind in ("DEFAULT", "MOBILE", "FAX"):
        lim.append((f"Phones.{kind}.PhoneNumber", limits.PHONE_NUMBER_MAX, f"fields.{section}"))
    checked = mapped.assign(_doc=zid)
    rejects += check_lengths(ctx, checked, lim)
    rejects += check_emails(ctx, checked, "EmailAddress")
    if "DefaultCurrency" in mapped:
        cur = as_text(mapped["DefaultCurrency"])
        rejects += emit(
            ctx,
            "currency.not_enabled",
            lambda: checked.assign(_c=cur),
            cur.notna() & ~cur.isin(list(ref.enabled_currencies)),
            lambda r: {"value": r["_c"]},
            field="Currency",
            line_col=None,
        )

    result.rejects.extend(rejects)
    blocked = {r.record_id for r in rejects if r.blocking}
    flat = mapped.astype(object).where(mapped.notna(), None).to_dict("records")
    for z, row, xid, how in zip(zid.tolist(), flat, xero_id.tolist(), matched_by.tolist()):
        if z in blocked:
            continue
        payload = {"ContactNumber": z, **nest({k: v for k, v in row.items() if k != "ContactNumber"})}
        digest = content_hash(payload)
        xid = xid if present(xid) else None
        how = how if present(how) else None
        doc = dict(
            entity="Contacts",
            module=module,
            zoho_id=z,
            number=numbers.get(z),
            content_hash=digest,
            natural_key={"ContactNumber": z},
            matched_by=how,
        )
        link = links_d.get(z)
        if xid is None:
            result.documents.append(Document(action="create", xero_id=None, payload=payload, **doc))
        elif link is not None and link.content_hash == digest:
            result.unchanged.append(Document(action="unchanged", xero_id=xid, payload=payload, **doc))
        else:
            result.documents.append(
                Document(action="update", xero_id=xid, payload={"ContactID": xid, **payload}, **doc)
            )
    return result
