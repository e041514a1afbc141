"""A faithful local Xero: identity (OAuth 2.0), connections and the Accounting API on one port.

See README.md beside this file for what is emulated, what is simplified, and the source of each rule.
"""
