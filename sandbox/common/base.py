"""The frame every sandbox shares: an ASGI layer that records calls, injects faults and commits
state once per request, plus the common admin routes under ``/_sandbox/``.

A concrete sandbox subclasses :class:`Sandbox`, adds its emulated API routes and its own admin
routes (credentials, orgs, limits) to ``self.app``, and seeds its demo data.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Query
from fastapi.responses import JSONResponse, Response
from starlette.routing import Match

from sandbox.common.calls import CallRecorder
from sandbox.common.clock import VirtualClock
from sandbox.common.faults import GARBLED_AFTER_COMMIT, Fault, FaultPlan
from sandbox.common.store import DocStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ADMIN_PREFIX = "/_sandbox"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class DroppedConnection(ConnectionAbortedError):
    """Raised after a partial answer so the server closes the socket: the client sees a broken read."""


class Sandbox(ABC):
    """Base class: state, clock, faults, call recording and the common admin routes."""

    #: "xero" or "zoho"; names the state file.
    name: str = "sandbox"
    #: Route templates that are POSTs but only read (Zoho COQL, search): not counted as writes.
    read_only_posts: frozenset[str] = frozenset()
    #: Token endpoints: counted as calls, neither reads nor writes.
    token_routes: frozenset[str] = frozenset()

    def __init__(self, state_dir: Path | None = None, seed: str = "demo") -> None:
        self.clock = VirtualClock()
        self.calls = CallRecorder()
        self.faults = FaultPlan()
        self.store = DocStore(state_dir / f"{self.name}.sqlite" if state_dir is not None else None)
        self.app = FastAPI(title=f"{self.name} sandbox", docs_url=f"{ADMIN_PREFIX}/docs",
                           openapi_url=f"{ADMIN_PREFIX}/openapi.json", redoc_url=None)
        self._add_common_admin_routes()
        self.add_routes(self.app)
        if self.store.is_empty:
            self.seed(seed)
            self.store.flush()
        else:
            self.clock.advance(float(self.store.meta("clock_offset", 0.0)))
        self.asgi = _SandboxLayer(self)

    # --- what a concrete sandbox provides --------------------------------------------------------
    @abstractmethod
    def add_routes(self, app: FastAPI) -> None:
        """Register the emulated API routes and the sandbox-specific admin routes."""

    @abstractmethod
    def seed(self, seed: str) -> None:
        """Populate an empty store: ``demo``, ``empty`` (and whatever else the sandbox supports)."""

    @abstractmethod
    def fault_response(self, fault: Fault) -> Response:
        """The answer for an injected 429/500/503, in the API's own format."""

    def tenant_of(self, headers: dict[str, str]) -> str | None:
        """The tenant/org a call is for, when the headers tell (handlers may set it later)."""
        return None

    def reset_limits(self) -> None:
        """Restore the real default limits."""

    # --- common behaviour ------------------------------------------------------------------------
    def reset(self, seed: str = "demo") -> None:
        """Data, tokens, counters, faults, limits and the clock back to a fresh start."""
        with self.store.lock:
            self.store.clear()
            self.calls.reset()
            self.faults.clear()
            self.clock.reset()
            self.reset_limits()
            self.seed(seed)
            self.store.flush()

    def advance_clock(self, seconds: float) -> float:
        offset = self.clock.advance(seconds)
        self.store.set_meta("clock_offset", offset)
        self.store.flush()
        return offset

    def route_template(self, scope: Scope) -> str:
        """The route template matching a request (``/api.xro/2.0/Invoices/{InvoiceID}``), else the path."""
        for route in self.app.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", scope["path"])
        return scope["path"]

    def _add_common_admin_routes(self) -> None:
        app = self.app

        @app.get(f"{ADMIN_PREFIX}/health")
        def health() -> dict[str, Any]:
            return {"status": "ok", "sandbox": self.name, "now": self.clock.now().isoformat()}

        @app.get(f"{ADMIN_PREFIX}/stats")
        def stats() -> dict[str, Any]:
            return self.calls.stats()

        @app.get(f"{ADMIN_PREFIX}/journal")
        def journal(since: int = Query(0, ge=0)) -> list[dict[str, Any]]:
            return self.calls.journal(since)

        @app.post(f"{ADMIN_PREFIX}/reset")
        def reset(seed: str = Query("demo")) -> dict[str, Any]:
            self.reset(seed)
            return {"status": "reset", "seed": seed}

        @app.get(f"{ADMIN_PREFIX}/faults")
        def get_faults() -> dict[str, Any]:
            return {"rules": [r.model_dump() for r in self.faults.rules()], "injected": self.faults.injected}

        @app.put(f"{ADMIN_PREFIX}/faults")
        def put_faults(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
            rules = [Fault.model_validate(r) for r in body.get("rules", [])]
            self.faults.set(rules, seed=body.get("seed"))
            return {"rules": [r.model_dump() for r in rules]}

        @app.delete(f"{ADMIN_PREFIX}/faults")
        def delete_faults() -> dict[str, Any]:
            self.faults.clear()
            return {"rules": []}

        @app.get(f"{ADMIN_PREFIX}/clock")
        def get_clock() -> dict[str, Any]:
            return {"now": self.clock.now().isoformat(), "offset_seconds": self.clock.offset}

        @app.put(f"{ADMIN_PREFIX}/clock")
        def put_clock(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
            try:
                offset = self.advance_clock(float(body.get("advance_seconds", 0)))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return {"now": self.clock.now().isoformat(), "offset_seconds": offset}


class _SandboxLayer:
    """ASGI wrapper around the sandbox app: faults, one commit per request, call recording."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            if scope["type"] == "http":
                scope.setdefault("state", {})
            await self.sandbox.app(scope, receive, send)
            return
        sandbox = self.sandbox
        scope.setdefault("state", {})
        started = time.time()
        method = scope["method"].upper()
        route = sandbox.route_template(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status_box: dict[str, int] = {"status": 0}
        fault = sandbox.faults.pick(method, scope["path"])
        kind = fault.kind if fault else None

        async def commit_then_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                # The sandbox's commit point: state is written before the answer leaves.
                await asyncio.to_thread(sandbox.store.flush)
            await send(message)

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]

        try:
            if kind in ("429", "500", "503"):
                assert fault is not None
                response = sandbox.fault_response(fault)
                await response(scope, receive, commit_then_send)
            elif kind == "drop_before_commit":
                status_box["status"] = 0
                await _drop(send)
            elif kind == "html_502":
                await GATEWAY_PAGE(scope, receive, commit_then_send)
            elif kind in GARBLED_AFTER_COMMIT or kind == "slow_after_commit":
                # Process and commit the request, holding its answer back.
                held: list[Message] = []

                async def hold(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        status_box["status"] = message["status"]
                    held.append(message)

                await sandbox.app(scope, receive, hold)
                await asyncio.to_thread(sandbox.store.flush)
                if kind == "slow_after_commit":
                    assert fault is not None
                    await asyncio.sleep(fault.delay_seconds)
                    for message in held:
                        await send(message)
                else:
                    await _garbled(send, kind, held)
            elif kind == "drop_after_commit":
                await sandbox.app(scope, receive, swallow)
                await asyncio.to_thread(sandbox.store.flush)
                # The journal keeps the status the client never saw (handy when reading a chaos run).
                state_box = scope["state"]
                state_box["committed_status"] = status_box["status"]
                status_box["status"] = 0
                await _drop(send)
            else:
                if kind == "slow":
                    assert fault is not None
                    await asyncio.sleep(fault.delay_seconds)
                await sandbox.app(scope, receive, commit_then_send)
        finally:
            state = scope.get("state") or {}
            tenant = state.get("sandbox_tenant") or sandbox.tenant_of(headers)
            is_token = route in sandbox.token_routes
            ro_post = method == "POST" and route in sandbox.read_only_posts
            status = status_box["status"]
            # A write that never reached the commit point is not a write.
            committed = kind not in ("drop_before_commit", "html_502", "429", "500", "503") and status != 429
            if kind == "drop_after_commit":
                committed = state.get("committed_status", 0) != 429
            # An idempotent replay (``state['sandbox_replay']``) answers from cache: no new write.
            replay = bool(state.get("sandbox_replay"))
            is_write = method in WRITE_METHODS and not is_token and not ro_post and committed and not replay
            sandbox.calls.record(
                method=method, route=route, path=scope["path"], status=status, tenant=tenant,
                is_write=is_write, is_read=(method == "GET" or ro_post) and not is_token,
                time=sandbox.clock.now().isoformat(), idempotency_key=headers.get("idempotency-key"),
                keys=state.get("journal_keys"), started=started, finished=time.time(), fault=kind,
            )


#: What a load balancer answers when the service behind it is down (the request never reached it).
GATEWAY_PAGE = Response(
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n</body>\r\n</html>\r\n", status_code=502, media_type="text/html")


async def _garbled(send: Send, kind: str, held: list[Message]) -> None:
    """Send the processed answer in a form the client cannot read (``truncated``, ``wrong_type``,
    ``empty_200``); the status line stays the real one (200 for ``empty_200``)."""
    start = next(m for m in held if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    status = start["status"]
    if kind == "truncated":
        body, content_type = body[: max(1, len(body) // 2)], b"application/json; charset=utf-8"
    elif kind == "wrong_type":
        content_type = b"text/html; charset=utf-8"
    else:
        body, content_type, status = b"", b"application/json; charset=utf-8", 200
    headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Start an answer and break it off: the client sees a connection broken mid-response."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise DroppedConnection("sandbox fault: connection dropped")
