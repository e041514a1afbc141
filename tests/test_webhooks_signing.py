"""Signatures: Xero's webhook signature and the per-org trigger link signature (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zxsync.webhooks.signing import sign_trigger, trigger_message, verify_trigger, verify_xero, xero_signature

NOW = 1_800_000_000


def test_xero_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}'
    expected = base64.b64encode(hmac.new(b"webhook-key", body, hashlib.sha256).digest()).decode()
    assert xero_signature(body, "webhook-key") == expected
    assert verify_xero(body, expected, "webhook-key")
    assert verify_xero(body, f" {expected}\n", "webhook-key")  # header whitespace
    for wrong in (None, "", expected[:-2], xero_signature(body + b" ", "webhook-key"), xero_signature(body, "k2")):
        assert not verify_xero(body, wrong, "webhook-key")


def test_deluge_hmacsha256_output_verifies_in_both_encodings() -> None:
    # Zoho's Deluge reference example of zoho.encryption.hmacsha256 (base64 default, and "hex").
    key, data = "sk_5Ow7B_4eC39H", "{Order ID: 0932, Currency: USD, Amount: 2500}"
    digest = hmac.new(key.encode(), data.encode(), hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == "E3IZY+esQ59aLmPCYYVjk2R/P1G0k77r9ZGa9Lw94Zw="
    assert digest.hex() == "13721963e7ac439f5a2e63c261856393647f3f51b493beebf5919af4bc3de19c"
    # What a Zoho function signs for one record, in each encoding it can produce.
    message = trigger_message("demo", "Invoices", "810000001000042", NOW + 300)
    assert message == b"demo:Invoices:810000001000042:1800000300"
    raw = hmac.new(key.encode(), message, hashlib.sha256).digest()
    for sig in (base64.b64encode(raw).decode(), raw.hex(), raw.hex().upper(),
                base64.urlsafe_b64encode(raw).rstrip(b"=").decode()):
        assert verify_trigger(key, "demo", "Invoices", "810000001000042", NOW + 300, sig, NOW)


@given(org=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), record=st.from_regex(r"[0-9]{1,19}", fullmatch=True),
       ttl=st.integers(0, 10**6))
def test_a_trigger_signature_binds_org_module_record_and_expiry(org: str, record: str, ttl: int) -> None:
    key = "trigger-key-of-the-org"
    sig = sign_trigger(key, org, "Invoices", record, NOW + ttl)
    assert verify_trigger(key, org, "Invoices", record, NOW + ttl, sig, NOW)
    assert not verify_trigger(key, org + "x", "Invoices", record, NOW + ttl, sig, NOW)
    assert not verify_trigger(key, org, "Accounts", record, NOW + ttl, sig, NOW)
    assert not verify_trigger(key, org, "Invoices", record + "1", NOW + ttl, sig, NOW)
    assert not verify_trigger(key, org, "Invoices", record, NOW + ttl + 1, sig, NOW)
    assert not verify_trigger(key + "!", org, "Invoices", record, NOW + ttl, sig, NOW)
    assert not verify_trigger(key, org, "Invoices", record, NOW + ttl, sig, NOW + ttl + 1)  # expired


@pytest.mark.parametrize("sig", [None, "", "%%%", "abc", "0" * 63, "A" * 500])
def test_garbage_trigger_signatures_are_refused(sig: str | None) -> None:
    assert not verify_trigger("k", "demo", "Invoices", "1", NOW + 60, sig, NOW)
