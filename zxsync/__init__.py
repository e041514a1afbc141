"""zoho-xero-sync: keeps Zoho CRM and Xero in sync for any number of organisations."""

__version__ = "0.1.0"
