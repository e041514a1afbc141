"""Encryption of stored connections (Fernet: AES-128-CBC + HMAC-SHA256, with a timestamp).

The whole :class:`~connectors.credentials.Connection` — client id and secret, refresh and access
tokens, tenant and endpoints — is serialised to JSON and encrypted as one token; only org and
system stay in clear, as the row's key. Decryption checks that the token belongs to the row it was
read from, so ciphertexts swapped between rows are refused rather than used.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from pydantic_core import to_jsonable_python

from connectors.credentials import Connection
from ledger.errors import LedgerKeyError


class ConnectionCipher:
    """Encrypts and decrypts connections with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            # Never echo the key itself.
            raise LedgerKeyError(
                "ZX_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from exc

    def encrypt(self, connection: Connection) -> bytes:
        """The Fernet token of ``connection`` with every secret revealed inside the ciphertext."""
        data: dict[str, Any] = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in connection.model_dump(mode="python").items()
        }
        return self._fernet.encrypt(json.dumps(to_jsonable_python(data), separators=(",", ":")).encode())

    def decrypt(self, token: bytes, *, org: str, system: str) -> Connection:
        """The connection in ``token``, checked to belong to (org, system)."""
        try:
            plain = self._fernet.decrypt(bytes(token))
        except InvalidToken:
            raise LedgerKeyError(
                f"cannot decrypt the stored {system} connection of {org!r}: the secret key "
                "(ZX_SECRET_KEY or its key file) is not the one it was saved with; restore that key "
                "or reconnect the organisation"
            ) from None
        connection = Connection.model_validate_json(plain)
        if (connection.org, connection.system) != (org, system):
            raise LedgerKeyError(f"stored connection row {org}/{system} holds another connection's data")
        return connection
