"""Signatures: Xero's webhook signature and the per-org signed trigger token (pure functions).

Xero signs the raw body: ``x-xero-signature`` = base64(HMAC-SHA256(body, webhook key)). A trigger
link for one record carries ``exp`` and ``sig`` = HMAC-SHA256(org key, "org:module:record id:exp");
the key never appears in the link, and a link only ever syncs its own record, until it
expires. Deluge (a Zoho button's function) computes the same with ``zoho.encryption.hmacsha256``,
so the signature is accepted as base64 (standard or URL-safe, padded or not) or hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def xero_signature(body: bytes, key: str) -> str:
    """The ``x-xero-signature`` Xero sends for ``body``."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify_xero(body: bytes, signature: str | None, key: str) -> bool:
    """True when ``signature`` is Xero's signature of the raw ``body`` (constant-time compare)."""
    if not signature:
        return False
    return hmac.compare_digest(xero_signature(body, key).encode(), signature.strip().encode())


def trigger_message(org: str, module: str, record_id: str, expires: int) -> bytes:
    """What a trigger link signs: the org, the record and the expiry (epoch seconds)."""
    return f"{org}:{module}:{record_id}:{expires}".encode()


def sign_trigger(key: str, org: str, module: str, record_id: str, expires: int) -> str:
    """The ``sig`` of a trigger link (URL-safe base64, no padding)."""
    digest = hmac.new(key.encode(), trigger_message(org, module, record_id, expires), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _digest_bytes(signature: str) -> bytes | None:
    text = signature.strip()
    if _HEX.match(text):
        return bytes.fromhex(text)
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_trigger(key: str, org: str, module: str, record_id: str, expires: int, signature: str | None,
                   now: float) -> bool:
    """True when ``signature`` signs exactly this org, record and expiry, and it has not expired."""
    if not signature or expires < now:
        return False
    given = _digest_bytes(signature)
    if given is None:
        return False
    wanted = hmac.new(key.encode(), trigger_message(org, module, record_id, expires), hashlib.sha256).digest()
    return hmac.compare_digest(wanted, given)
