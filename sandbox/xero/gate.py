"""The layer in front of the emulated Xero API: authentication, tenant check, rate limits and
Idempotency-Key replay, in that order (a replay still counts against the limits: notes §4.2).

A pure ASGI middleware so a call counts as in flight from its arrival (headers read) until its
answer is complete, and so an idempotent answer is cached byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.xero.formats import problem

if TYPE_CHECKING:
    from sandbox.xero.app import XeroSandbox

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/api.xro/2.0"
IDEMPOTENCY_SECONDS = 360.0
IDEMPOTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class _Cached:
    first_used: float
    fingerprint: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyCache:
    """Answers by (client_id, key), kept 6 minutes of the virtual clock from first use."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Cached] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def clear(self) -> None:
        self._entries.clear()
        self._locks.clear()

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def get(self, key: tuple[str, str], now: float) -> _Cached | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry.first_used > IDEMPOTENCY_SECONDS:
            del self._entries[key]
            self._locks.pop(key, None)
            return None
        return entry

    def put(self, key: tuple[str, str], entry: _Cached) -> None:
        self._entries[key] = entry
        if len(self._entries) > 20000:  # bounded: drop the expired ones
            horizon = entry.first_used - IDEMPOTENCY_SECONDS
            for k in [k for k, e in self._entries.items() if e.first_used < horizon]:
                self._entries.pop(k, None)


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode() if body is not None else b""
    hdrs = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


class XeroGate:
    """ASGI middleware around the FastAPI app of :class:`XeroSandbox`."""

    def __init__(self, app: Callable[..., Awaitable[None]], sandbox: XeroSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_api = path == API_PREFIX or path.startswith(API_PREFIX + "/")
        is_connections = path.lower().rstrip("/") == "/connections" or path.lower().startswith("/connections/")
        if not (is_api or is_connections):
            await self.app(scope, receive, send)
            return
        sb = self.sandbox
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        caller, reason = sb.identity.caller(token) if token else (None, "AuthenticationUnsuccessful")
        if caller is None:
            await _send_json(send, 401, problem(401, "Unauthorized", reason or "AuthenticationUnsuccessful"),
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        state = scope.setdefault("state", {})
        state["xero_caller"] = caller
        tenant: str | None = None
        if is_api:
            tenant = headers.get("xero-tenant-id", "").strip().lower()
            if not tenant and caller.custom and len(caller.tenants) == 1:
                tenant = caller.tenants[0]  # custom connections may omit it (notes §2.2)
            if tenant not in caller.tenants or tenant not in sb.identity.tenants():
                await _send_json(send, 403, problem(403, "Forbidden", "AuthenticationUnsuccessful"))
                return
            state["sandbox_tenant"] = tenant
        verdict = sb.limiter.admit(caller.client_id, tenant, sb.clock.time())
        if not verdict.allowed:
            extra = dict(verdict.headers)
            extra["X-Rate-Limit-Problem"] = verdict.problem or "minute"
            if verdict.retry_after is not None:
                extra["Retry-After"] = str(verdict.retry_after)
            await _send_json(send, 429, None, extra)
            return
        limit_headers = [(k.lower().encode(), v.encode()) for k, v in verdict.headers.items()]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + limit_headers
            await send(message)

        try:
            key = headers.get("idempotency-key")
            if key is not None and len(key) > 128:  # "128 character max." (SPEC idempotencyKey)
                await _send_json(send_with_limits, 400, problem(
                    400, "Bad Request", "The Idempotency-Key must be 128 characters or fewer."))
                return
            if is_api and key and scope["method"].upper() in IDEMPOTENT_METHODS:
                await self._idempotent(scope, receive, send_with_limits, (caller.client_id, key), tenant or "")
            else:
                await self.app(scope, receive, send_with_limits)
        finally:
            if tenant:
                sb.limiter.release(tenant)

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, key: tuple[str, str],
                          tenant: str) -> None:
        """Replay the cached answer for the same request; refuse the key for a different one."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        fingerprint = hashlib.sha256(b"\n".join([
            scope["method"].upper().encode(), scope["path"].encode(), scope.get("query_string", b""),
            tenant.encode(), body])).hexdigest()
        cache = self.sandbox.idempotency
        async with cache.lock(key):
            entry = cache.get(key, self.sandbox.clock.time())
            if entry is not None:
                if entry.fingerprint != fingerprint:
                    await _send_json(send, 400, problem(
                        400, "Bad Request",
                        f"The Idempotency-Key '{key[1]}' has already been used with a different request."))
                    return
                scope.setdefault("state", {})["sandbox_replay"] = True
                await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
                await send({"type": "http.response.body", "body": entry.body})
                return
            sent = False

            async def replay_receive() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            captured: dict[str, Any] = {"status": 0, "headers": [], "body": []}

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    captured["status"] = message["status"]
                    captured["headers"] = [h for h in message.get("headers", [])
                                           if not h[0].lower().startswith(b"x-") or b"limit" not in h[0].lower()]
                elif message["type"] == "http.response.body":
                    captured["body"].append(message.get("body", b""))
                await send(message)

            started = self.sandbox.clock.time()
            await self.app(scope, replay_receive, capture)
            if captured["status"] and captured["status"] < 500:
                cache.put(key, _Cached(started, fingerprint, captured["status"], captured["headers"],
                                       b"".join(captured["body"])))
