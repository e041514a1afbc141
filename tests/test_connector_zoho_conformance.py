"""Conformance: the connector's requests and the sandbox's answers against Zoho's own OpenAPI files.

Zoho's v8 spec (``ZX_SPECS_DIR``/zoho/*.json) is loaded with openapi-core. Its ``$ref``s are
absolute raw-GitHub URLs: they are rewritten to the local files (bundled under ``x-bundled``), and
refs to files not shipped here (profiles, related_lists, custom_views) become empty schemas.
Statuses the spec documents are checked against it; the ones it leaves out (201, 204, 207, 304,
400, 401, 429 on the record routes) against the small schemas below, written from
zoho-api-notes.md. Two generator defects are corrected before validating, and printed:

* ``API_Exception`` (and other error objects) and the ``*_Wrapper`` objects require nothing, so a
  valid record list matches several alternatives and ``oneOf [Response_Wrapper, File_Body_Wrapper,
  API_Exception]`` can never pass. Zoho's errors always carry ``status`` and ``code`` (notes §3.3)
  and a wrapper always carries its first key (``data``, ``file``, ``modules``...): those become
  required.
* The fields API request body reuses the *response* schema of a field (70 required properties such
  as ``id`` and ``created_time``): for the request those are not required.
* OAS 3.0 cannot mark a ``$ref`` nullable, and ``Info``'s page-token properties lack ``nullable``,
  yet Zoho sends ``null`` there (``"previous_page_token": null`` in Zoho's own getRecords example,
  notes §3.1; ``"associated_module": null`` and the like for fields without one), and an empty
  object for a sub-object that does not apply (``"auto_number": {}`` in Zoho's field-metadata
  example, notes §6): such properties accept ``null`` (and a ``$ref`` also ``{}``); nothing else
  is loosened.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from openapi_core.templating.paths.finders import APICallPathFinder
from test_connector_zoho_support import (  # noqa: F401  (the fixture is requested by its name)
    Sandbox,
    Traffic,
    client,
    connect,
    zoho_sandbox_fixture,
)

from connectors.credentials import MemoryCredentialStore
from connectors.errors import ApiError
from connectors.zoho import XERO_SYNC_FIELDS, FieldSpec
from connectors.zoho_coql import cond, select

RAW_PREFIX = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/"
#: The specs checked. The record spec comes last: its ``/crm/v8/{module_api_name}/{id}`` would
#: otherwise claim ``/crm/v8/coql`` or ``/crm/v8/settings/fields``. The other metadata specs
#: (modules, org, currencies, users) are not used: their generator turned example values into
#: rules (users ``email`` must match ``[a-z0-9]{9}[@][a-z0-9]{5}[.]com``, ``date_format`` must be
#: ``MMM d, yyyy``, an exchange rate needs two integer digits), so no real org could conform.
SPEC_FILES = ("coql.json", "fields.json", "record.json")
#: First path segments that are not modules (never matched against the record spec).
NOT_MODULES = {"settings", "org", "users", "coql", "actions", "bulk", "upload"}

# --- schemas for statuses the spec does not document (from zoho-api-notes.md) --------------------------
_RESULT_ITEM = {
    "type": "object", "required": ["code", "status", "message", "details"],
    "properties": {"code": {"type": "string"}, "status": {"enum": ["success", "error"]},
                   "message": {"type": "string"}, "details": {"type": "object"},
                   "action": {"enum": ["insert", "update"]}, "duplicate_field": {"type": ["string", "null"]}},
}
_SUCCESS_ITEM = {**_RESULT_ITEM, "properties": {**_RESULT_ITEM["properties"], "status": {"const": "success"},
                                                "details": {"type": "object", "required": ["id"]}}}
_ERROR = {"type": "object", "required": ["code", "status", "message"],
          "properties": {"code": {"type": "string"}, "status": {"const": "error"}, "message": {"type": "string"},
                         "details": {"type": "object"}}}
NOTE_SCHEMAS: dict[int, dict[str, Any]] = {
    # §3.3: inserts answer 201 with data[] of per-record results.
    201: {"type": "object", "required": ["data"],
          "properties": {"data": {"type": "array", "minItems": 1, "items": _SUCCESS_ITEM}}},
    # §3.3: partial success, walk data[].
    207: {"type": "object", "required": ["data"],
          "properties": {"data": {"type": "array", "minItems": 1, "items": _RESULT_ITEM}}},
    # §3.3: all failed = same data[] shape; other 400s are one error object (§3.1 REQUIRED_PARAM_MISSING ...).
    400: {"oneOf": [
        {"type": "object", "required": ["data"],
         "properties": {"data": {"type": "array", "minItems": 1,
                                 "items": {**_RESULT_ITEM, "properties": {**_RESULT_ITEM["properties"],
                                                                          "status": {"const": "error"}}}}}},
        {**_ERROR, "not": {"required": ["data"]}},
    ]},
    401: {**_ERROR, "properties": {**_ERROR["properties"],
                                   "code": {"enum": ["INVALID_TOKEN", "AUTHENTICATION_FAILURE", "OAUTH_SCOPE_MISMATCH"]}}},
    429: {**_ERROR, "properties": {**_ERROR["properties"], "code": {"enum": ["TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED"]}}},
}
EMPTY_STATUSES = {204, 304}


# --- loading the spec offline ----------------------------------------------------------------------------
def bundle(spec_dir: Path, name: str, server: str) -> tuple[dict[str, Any], set[str]]:
    """``name`` with every external ``$ref`` pointing into ``x-bundled`` (or stubbed when the
    referenced file is absent); returns the document and the stubbed file names."""
    root = name.removesuffix(".json")
    docs: dict[str, Any] = {}
    missing: set[str] = set()

    def load(fname: str) -> None:
        stem = fname.removesuffix(".json")
        if stem in docs or fname in missing:
            return
        path = spec_dir / fname
        if not path.exists():
            missing.add(fname)
            return
        docs[stem] = None  # mark before recursing (cycles)
        docs[stem] = rewrite(json.loads(path.read_text()), stem)

    def target(stem: str, fragment: str) -> str:
        return f"#{fragment}" if stem == root else f"#/x-bundled/{stem}{fragment}"

    def rewrite(node: Any, stem: str) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(RAW_PREFIX):
                fname, _, fragment = ref[len(RAW_PREFIX):].partition("#")
                load(fname)
                return {} if fname in missing else {"$ref": target(fname.removesuffix(".json"), fragment)}
            if isinstance(ref, str) and ref.startswith("#"):
                return {"$ref": target(stem, ref[1:])}
            return {k: rewrite(v, stem) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v, stem) for v in node]
        return node

    load(name)
    main = docs.pop(root)
    main["x-bundled"] = docs
    main["servers"] = [{"url": server}]
    return main, missing


def _schemas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = [doc.get("components", {}).get("schemas", {})]
    out += [d.get("components", {}).get("schemas", {}) for d in doc.get("x-bundled", {}).values() if d]
    return out


def tighten(doc: dict[str, Any]) -> list[str]:
    """Correct the two generator defects described in the module docstring; returns what changed."""
    notes: list[str] = []
    for schemas in _schemas(doc):
        for name, schema in schemas.items():
            props = schema.get("properties") if isinstance(schema, dict) else None
            status = (props or {}).get("status") or {}
            if status.get("enum") == ["error"] and "code" in props and not schema.get("required"):
                schema["required"] = ["status", "code"]
                notes.append(f"{name}: error requires status+code")
            elif name.lower().endswith("wrapper") and props and not schema.get("required"):
                first = next(iter(props))
                schema["required"] = [first]
                notes.append(f"{name}: wrapper requires its first key")
        for name, schema in schemas.items():
            props = schema.get("properties") if isinstance(schema, dict) else None
            for prop, sub in (props or {}).items():
                if isinstance(sub, dict) and set(sub) == {"$ref"}:
                    props[prop] = {"anyOf": [sub, {"enum": [None]}, {"type": "object", "maxProperties": 0}]}
                    notes.append(f"{name}.{prop}: $ref property may be null or {{}}")
            if name == "Info" and props:
                for prop, sub in props.items():
                    if isinstance(sub, dict) and "type" in sub and sub["type"] != "object":
                        sub["nullable"] = True
                notes.append("Info: page-token properties nullable")
    bodies = doc.get("components", {}).get("requestBodies", {})
    wrapper = doc.get("components", {}).get("schemas", {}).get("wrapper")
    if "body" in bodies and wrapper is not None and "fields" in doc["components"]["schemas"]:
        loose = copy.deepcopy(doc["components"]["schemas"]["fields"])
        loose.pop("required", None)
        doc["components"]["schemas"]["x_field_input"] = loose
        doc["components"]["schemas"]["x_wrapper_input"] = {
            "type": "object", "required": ["fields"],
            "properties": {"fields": {"type": "array", "items": {"$ref": "#/components/schemas/x_field_input"}}}}
        bodies["body"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/x_wrapper_input"}
        notes.append("fields request body: output-only properties not required")
    return notes


class Conformance:
    """The loaded specs and the checks of one captured exchange."""

    def __init__(self, spec_dir: Path, server: str) -> None:
        self.apis: list[tuple[str, OpenAPI, APICallPathFinder]] = []
        self.notes: dict[str, list[str]] = {}
        self.stubbed: set[str] = set()
        for name in SPEC_FILES:
            if not (spec_dir / name).exists():
                pytest.fail(f"{spec_dir / name} is missing")
            doc, missing = bundle(spec_dir, name, server)
            self.stubbed |= missing
            self.notes[name] = tighten(doc)
            api = OpenAPI.from_dict(doc)
            self.apis.append((name, api, APICallPathFinder(api.spec)))

    def find(self, method: str, url: str) -> tuple[str, OpenAPI, Any] | None:
        segment = url.split("/crm/v8/", 1)[-1].split("?")[0].split("/")[0]
        for name, api, finder in self.apis:
            if name == "record.json" and segment in NOT_MODULES:
                continue
            try:
                return name, api, finder.find(method.lower(), url)
            except (PathNotFound, ServerNotFound, OperationNotFound):
                continue
        return None

    def check(self, response: requests.Response) -> tuple[str, str] | None:
        """Validate one exchange; returns (spec operation, status) or None if no spec covers it."""
        prepared = response.request
        found = self.find(prepared.method, prepared.url.split("?")[0])
        if found is None:
            return None
        name, api, match = found
        operation = f"{name} {prepared.method} {str(match.path).removeprefix('paths#')}"
        op_id = str(match.operation["operationId"]) if "operationId" in match.operation else operation
        request = RequestsOpenAPIRequest(prepared)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # oauth2 security is not checkable offline; the header is below
            req_result = api.unmarshal_request(request)
        assert not req_result.errors, f"{operation} request does not conform: {req_result.errors!r}"
        assert prepared.headers.get("Authorization", "").startswith("Zoho-oauthtoken ")
        status = response.status_code
        documented = {str(k) for k in (match.operation / "responses").keys()}  # noqa: SIM118 (a SchemaPath)
        if str(status) in documented:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = api.unmarshal_response(request, RequestsOpenAPIResponse(response))
            assert not result.errors, (f"{operation} {status} answer does not conform to {name}: "
                                       f"{result.errors!r} {_cause(result.errors)} body={response.text[:500]}")
            return f"{op_id} [{name}]", f"{status} (spec)"
        if status in EMPTY_STATUSES:
            assert not response.content.strip(), f"{operation} {status} carries a body"
            return f"{op_id} [{name}]", f"{status} (notes)"
        schema = NOTE_SCHEMAS.get(status)
        assert schema is not None, f"{operation} answered {status}: neither the spec nor the notes cover it"
        jsonschema.validate(response.json(), schema)
        return f"{op_id} [{name}]", f"{status} (notes)"


def _cause(errors: list[Any]) -> str:
    """The deepest schema errors behind openapi-core's InvalidData (oneOf failures nest them)."""
    parts: list[str] = []

    def leaves(err: Any) -> None:
        if getattr(err, "context", None):
            for sub in err.context:
                leaves(sub)
        else:
            parts.append(f"{'/'.join(map(str, err.absolute_path))}: {err.message[:200]}")

    for e in errors:
        cause = e.__cause__ or e
        for sub in getattr(cause, "schema_errors", []) or []:
            leaves(sub)
    return "; ".join(dict.fromkeys(parts))[:3000]


def _scenario(sandbox: Sandbox, traffic: Traffic) -> None:
    """Drive every operation and status the connector can meet."""
    store = MemoryCredentialStore()
    connect(sandbox, store)
    zc = client(store, traffic=traffic, sleeps=[])
    zc.modules()
    zc.org()
    zc.currencies()
    zc.current_user()
    zc.org_taxes()
    fields = zc.fields("Invoices")
    created = zc.ensure_fields("Contacts", [*XERO_SYNC_FIELDS["Contacts"], FieldSpec(api_name="Conformance_Note")])
    assert "Conformance_Note" in created.created  # POST /settings/fields (201)
    with pytest.raises(ApiError):  # 400 from the fields API: unknown module
        zc.fields("No_Such_Module")
    assert fields
    invoices = list(zc.iter_records("Invoices", ["Subject", "Modified_Time", "Invoiced_Items"]))
    zc.get_record("Invoices", invoices[0]["id"])
    newest = max(r["Modified_Time"] for r in invoices)
    list(zc.iter_pages("Invoices", ["Subject"], modified_since=datetime.fromisoformat(newest) + timedelta(seconds=1)))
    list(zc.iter_deleted("Invoices"))
    inserted = zc.insert("Contacts", [{"Last_Name": "Conformance"}, {"Last_Name": "Two"}])  # 201
    zc.insert("Contacts", [{"Last_Name": "Ok"}, {"First_Name": "missing last name"}])  # 207
    zc.insert("Contacts", [{"First_Name": "missing"}])  # 400 with data[]
    zc.update("Contacts", [{"id": r.id, "First_Name": "Upd"} for r in inserted])  # 200
    zc.upsert("Contacts", [{"Last_Name": "Ups", "Xero_Contact_ID": "conf-1"}],
              duplicate_check_fields=["Xero_Contact_ID"])
    zc.call("DELETE", "/Contacts", params={"ids": inserted[1].id}, idempotent=True)
    assert any(page.records for page in zc.iter_deleted("Contacts"))  # 200
    zc.coql(select("Contacts", ["Last_Name"], cond("Last_Name", "=", "O'Brien")))  # 204 (no rows) or 200
    zc.coql(select("Contacts", ["Last_Name", "Email"], cond("Last_Name", "=", "Conformance")))  # 200
    with pytest.raises(ApiError):
        zc.coql("select Last_Name frm Contacts where")  # 400 SYNTAX_ERROR
    with pytest.raises(ApiError):  # 400 REQUIRED_PARAM_MISSING (fields) straight from the API
        zc.call("GET", "/Contacts", idempotent=True)
    sandbox.advance_clock(3700)  # 401 INVALID_TOKEN, then refreshed and retried
    zc.get_record("Invoices", invoices[0]["id"])
    sandbox.faults({"method": "GET", "path": "/crm/v8/Contacts", "kind": "429", "count": 1})
    list(zc.iter_pages("Contacts", ["Last_Name"]))
    empty = sandbox.new_org("Nobody Ltd", seed="empty")
    connect(sandbox, store, org="empty", creds=empty)
    list(client(store, "empty", traffic=traffic).iter_pages("Invoices", ["Subject"]))  # 204


def test_connector_and_sandbox_conform_to_zohos_openapi(zoho_sandbox: Sandbox, specs_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    conformance = Conformance(specs_dir / "zoho", zoho_sandbox.url)
    traffic = Traffic()
    _scenario(zoho_sandbox, traffic)
    covered: dict[str, set[str]] = defaultdict(set)
    uncovered: list[str] = []
    for response in traffic.api_calls("/crm/"):
        result = conformance.check(response)
        if result is None:
            uncovered.append(f"{response.request.method} {response.request.url.split('?')[0]} {response.status_code}")
        else:
            covered[result[0]].add(result[1])
    with capsys.disabled():
        print("\nZoho conformance: operations covered")
        for op, statuses in sorted(covered.items()):
            print(f"  {op}: {', '.join(sorted(statuses))}")
        print(f"  not in the loaded specs: {sorted(set(uncovered))}")
        for spec, notes in conformance.notes.items():
            kinds: dict[str, int] = defaultdict(int)
            for note in notes:
                kinds[note.split(": ", 1)[1] if ": " in note else note] += 1
            print(f"  {spec} corrections: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
        print(f"  stubbed refs (files not shipped): {sorted(conformance.stubbed)}")
    statuses = {s.split()[0] for ss in covered.values() for s in ss}
    assert {"200", "201", "204", "207", "304", "400", "401", "429"} <= statuses
    names = " ".join(covered)
    for needed in ("Get Records [record.json]", "Create Records [record.json]", "Update Records [record.json]",
                   "Upsert Records [record.json]", "Get Deleted Records [record.json]", "Get Record [record.json]",
                   "Get Records [coql.json]", "Get Fields [fields.json]", "Create Field [fields.json]"):
        assert needed in names, f"{needed} not exercised"
