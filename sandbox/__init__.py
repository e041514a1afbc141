"""Local, faithful Xero and Zoho CRM API servers: the demo's backend and the tests' ground truth.

An independent oracle: this package imports NOTHING from the product and is written from the
APIs' documentation and specs. Each sandbox serves the real URL shapes on one port, plus admin
routes under ``/_sandbox/`` (stats, journal, reset, credentials, orgs, faults, limits, clock).
"""
