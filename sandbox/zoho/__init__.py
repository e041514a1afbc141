"""The Zoho CRM v8 sandbox (Zoho Accounts + CRM API on one port): see README.md beside this file."""
