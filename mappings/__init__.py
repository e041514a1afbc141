"""Org configuration, the pure mapping engine (pandas), business rules and pre-flight validation.

No I/O here except reading ``orgs/<slug>.yaml`` in :func:`load_org` / :func:`load_registry`: no
network, no database, no Prefect. Everything a mapping needs from outside (reference data, ledger
links, what failed earlier in the run) is an argument, and the output is deterministic.
"""

from mappings.config import ConfigError, OrgConfig, load_org, load_org_file, load_registry, parse_org
from mappings.contacts import map_accounts, map_vendors
from mappings.documents import (
    map_deletions,
    map_documents,
    map_invoices,
    map_purchase_orders,
    map_quotes,
    map_sales_orders,
    match_line_ids,
)
from mappings.items import map_products
from mappings.reference import ReferenceData, iana_timezone, parse_xero_date, parse_xero_datetime
from mappings.rejects import RULES, Reject
from mappings.results import (
    Document,
    Link,
    MappingResult,
    Skip,
    ZohoWrite,
    ZohoWriteResult,
    content_hash,
    merge_results,
    normalize_links,
)
from mappings.validate import check_config
from mappings.writeback import (
    payments_summary,
    writeback_documents,
    writeback_rejects,
    xero_contact_people_to_zoho,
    xero_contacts_to_zoho,
    xero_invoices_to_zoho,
)

__all__ = [
    "RULES",
    "ConfigError",
    "Document",
    "Link",
    "MappingResult",
    "OrgConfig",
    "ReferenceData",
    "Reject",
    "Skip",
    "ZohoWrite",
    "ZohoWriteResult",
    "check_config",
    "content_hash",
    "iana_timezone",
    "load_org",
    "load_org_file",
    "load_registry",
    "map_accounts",
    "map_deletions",
    "map_documents",
    "map_invoices",
    "map_products",
    "map_purchase_orders",
    "map_quotes",
    "map_sales_orders",
    "map_vendors",
    "match_line_ids",
    "merge_results",
    "normalize_links",
    "parse_org",
    "parse_xero_date",
    "parse_xero_datetime",
    "payments_summary",
    "writeback_documents",
    "writeback_rejects",
    "xero_contact_people_to_zoho",
    "xero_contacts_to_zoho",
    "xero_invoices_to_zoho",
]
