"""The HTTP face of ``zxsync webhooks`` (FastAPI): three receivers and a health check.

- ``POST /webhooks/xero/{key}``: Xero webhooks of the app whose stored key is named ``key``
  (``x-xero-signature`` checked on the raw body; 200 with no body, or 401 — also the
  intent-to-receive answers).
- ``POST /webhooks/zoho/{org}``: Zoho notification callbacks of the org's channel (token checked).
- ``GET|POST /webhooks/trigger/{org}?module=&id=&exp=&sig=``: one record, from a Zoho button or
  workflow function, signed with the org's trigger key.
- ``GET /webhooks/health``: alive, and how many ids wait.

Handlers only verify and queue (see :mod:`zxsync.webhooks.intake`); work happens in the dispatcher.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from zxsync.webhooks.intake import Intake


def create_app(intake: Intake) -> FastAPI:
    """The webhook app over ``intake``."""
    app = FastAPI(title="zxsync webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/xero/{key_name}")
    async def xero(key_name: str, request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature is over them, not over parsed JSON
        outcome = await run_in_threadpool(intake.xero, key_name, body, request.headers.get("x-xero-signature"))
        return Response(status_code=outcome.status)  # Xero: no body, no cookies

    @app.post("/webhooks/zoho/{org}")
    async def zoho(org: str, request: Request) -> Response:
        body = await request.body()
        outcome = await run_in_threadpool(intake.zoho, org, body)
        return Response(status_code=outcome.status)

    @app.api_route("/webhooks/trigger/{org}", methods=["GET", "POST"])
    async def trigger(org: str, request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            params.update(await _body_params(request))
        outcome = await run_in_threadpool(intake.trigger, org, params)
        if request.method == "GET":  # a person clicked a link: answer with a page
            if outcome.status == 200:
                text = (f"{html.escape(str(params.get('module')))} record {html.escape(str(params.get('id')))} "
                        "will be synced with Xero within a minute.")
            else:
                text = "This sync link is not valid (or has expired). Use the button on the record again."
            return HTMLResponse(f"<!doctype html><title>Sync to Xero</title><p>{text}</p>",
                                status_code=outcome.status)
        return JSONResponse({"queued": outcome.status == 200, "detail": outcome.reason or "queued"},
                            status_code=outcome.status)

    @app.get("/webhooks/health")
    async def health() -> dict[str, Any]:
        pending = await run_in_threadpool(lambda: intake.ledger().pending_events())
        return {"status": "ok", "pending": {p.org: p.count for p in pending}, "counts": dict(intake.counts)}

    return app


async def _body_params(request: Request) -> dict[str, Any]:
    """Parameters of a POST body: JSON object or a urlencoded form (Zoho's invokeurl sends either)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
