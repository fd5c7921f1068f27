"""The OpenAPI 3.1 document, generated from the same `ENDPOINTS` list that builds the routes."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bot.api.framework import BASE, ENDPOINTS, Endpoint

ERROR = {
    "type": "object",
    "required": ["request_id", "error"],
    "properties": {
        "request_id": {"type": "string"},
        "error": {"type": "object", "required": ["code", "message"],
                  "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
    },
}
EMPTY = {"type": "object", "maxProperties": 0}


def _schema(model: type[BaseModel], defs: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        defs.setdefault(name, sub)
    name = model.__name__
    if name in defs and defs[name] != schema and defs[name].get("title") == schema.get("title"):
        raise RuntimeError(f"two different models are both named {name!r} in the OpenAPI document")
    defs.setdefault(name, schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _params(ep: Endpoint, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": n, "in": "path", "required": True,
         "schema": {"type": "string", "enum": list(ep.path_enums[n])} if n in ep.path_enums
         else {"type": "integer", "minimum": 1}}
        for n in re.findall(r"{(\w+)}", ep.path)
    ]
    if ep.query is not None:
        schema = ep.query.model_json_schema(mode="validation")
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            if "anyOf" in prop:  # optional scalars: publish the non-null form, since a query has no null
                prop = {**next(p for p in prop.pop("anyOf") if p.get("type") != "null"), **prop}
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def build() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        if ep.produces != "application/json":
            data = {}
        elif ep.response is None:
            data: dict[str, Any] = EMPTY
        elif ep.paged:
            data = {"type": "object", "required": ["items", "total", "has_next_page"], "properties": {
                "items": {"type": "array", "items": _schema(ep.response, defs, "serialization")},
                "total": {"type": "integer"}, "has_next_page": {"type": "boolean"}}}
        else:
            data = _schema(ep.response, defs, "serialization")
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "parameters": _params(ep, defs),
            "security": [{"bearer": []}],
            "responses": {
                str(ep.status): {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["request_id", "data"],
                    "properties": {"request_id": {"type": "string"}, "data": data}}}}},
                **{str(s): {"description": "error", "content": {"application/json": {"schema": ERROR}}}
                   for s in ep.errors},
            },
        }
        if ep.produces != "application/json":
            op["responses"][str(ep.status)] = {"description": "OK", "content": {ep.produces: {"schema": {
                "type": "string"}}}}
        if ep.raw_body is not None:
            op["requestBody"] = {"required": True, "content": {ep.raw_body: {"schema": {"type": "string"}}}}
        if ep.body is not None:
            # An empty body counts as {}: it is only "required" when the model has required fields.
            required = any(f.is_required() for f in ep.body.model_fields.values())
            op["requestBody"] = {"required": required, "content": {
                "application/json": {"schema": _schema(ep.body, defs, "validation")}}}
        paths.setdefault(BASE + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vigil Open API", "version": "1",
                 "description": "Envelope: {request_id, data} or {request_id, error{code, message}}."},
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def serve(request: web.Request) -> web.Response:
    doc = request.app.get(_DOC)
    if doc is None:
        doc = document()
    return web.json_response(doc)


_DOC = web.AppKey("openapi_doc", dict)
_built: dict[int, dict[str, Any]] = {}


def document() -> dict[str, Any]:
    """The document for the endpoints declared so far, built once per set (~150 ms of pydantic schema work
    that every create_app, and so every test starting a Vigil, would otherwise repeat). Read-only."""
    count = len(ENDPOINTS)
    if count not in _built:
        _built[count] = build()
    return _built[count]


def setup(app: web.Application) -> None:
    app[_DOC] = document()
    app.router.add_get(BASE + "/openapi.json", serve)
