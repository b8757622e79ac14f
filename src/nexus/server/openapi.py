"""The OpenAPI document the server advertises at ``/openapi.json``.

FastAPI alone can describe none of the API: every endpoint reads its own raw request.
So the document is built here from the same sources the server dispatches with — the RPC
table (``nexus.rpc.METHODS``, one ``POST /api/nfs/<method>`` operation per method, its
``params`` object the schemas of the edge's own parameter checkers, ``rpc/params.py``) and
the error table
(``nexus.errors``) — and cannot drift from what the server does.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import nexus.errors
from nexus.rpc import METHODS
from nexus.rpc.params import ParamChecker, checker_for
from nexus.service.signing import ROUTE as SIGNED_ROUTE

__all__ = ["install_openapi", "openapi_document"]

_BYTES: dict[str, Any] = {
    "type": "object", "required": ["__bytes__"], "additionalProperties": False,
    "properties": {"__bytes__": {"type": "string", "contentEncoding": "base64"}},
    "description": "Bytes on the wire: base64 in a one-key object.",
}
_FILE_INFO: dict[str, Any] = {
    "type": "object",
    "required": ["path", "name", "type", "size", "etag", "version", "created_at",
                 "modified_at"],
    "properties": {
        "path": {"type": "string"}, "name": {"type": "string"},
        "type": {"type": "string", "enum": ["file", "directory"]},
        "size": {"type": "integer", "minimum": 0},
        "etag": {"type": ["string", "null"]}, "version": {"type": "integer"},
        "created_at": {"type": "string"}, "modified_at": {"type": "string"},
    },
}
_SCHEMAS: dict[str, Any] = {
    "Bytes": _BYTES,
    "FileInfo": _FILE_INFO,
    "Page": {"type": "object", "required": ["entries", "next_cursor"], "properties": {
        "entries": {"type": "array", "items": {"$ref": "#/components/schemas/FileInfo"}},
        "next_cursor": {"type": ["string", "null"]}}},
}
_REF = {name: {"$ref": f"#/components/schemas/{name}"} for name in _SCHEMAS}

#: Parameter / result annotations of the service methods → JSON Schema.
_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "bool": {"type": "boolean"}, "None": {"type": "null"}, "Any": {},
    "bytes": _REF["Bytes"], "Data": _REF["Bytes"],
    "FileInfo": _REF["FileInfo"], "Page": _REF["Page"],
    "dict[str, Any]": {"type": "object"}, "Sequence[Any]": {"type": "array"},
    "list[bool]": {"type": "array", "items": {"type": "boolean"}},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "list[list[str]]": {"type": "array", "items": {"type": "array",
                                                   "items": {"type": "string"}}},
    "list[dict[str, Any]]": {"type": "array", "items": {"type": "object"}},
}


def _schema_of(annotation: Any) -> dict[str, Any]:
    if annotation is inspect.Parameter.empty or not isinstance(annotation, str):
        return {}
    options = [part.strip() for part in annotation.split("|")]
    schemas = [_TYPES.get(option, {}) for option in options]
    if any(s == {} for s in schemas):
        return {}
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


def _param_schema(checker: ParamChecker, parameter: inspect.Parameter) -> dict[str, Any]:
    """The schema the edge validates ``parameter`` against (``rpc/params.py``), with its
    string bound: the document states exactly what a request must satisfy."""
    schema = _schema_of(parameter.annotation)
    if schema == _REF["Bytes"]:
        return schema  # bytes travel as {"__bytes__": base64}, decoded before the check
    schema = checker.json_schema(parameter.name) or schema
    longest = checker.max_string(parameter.name)

    def bounded(option: dict[str, Any]) -> dict[str, Any]:
        return {**option, "maxLength": longest} if option.get("type") == "string" else option

    if "anyOf" in schema:
        return {**schema, "anyOf": [bounded(option) for option in schema["anyOf"]]}
    return bounded(schema)


def _error_codes() -> list[str]:
    return sorted({cls.code for cls in vars(nexus.errors).values()
                   if isinstance(cls, type) and issubclass(cls, nexus.errors.NexusError)})


def _envelopes() -> dict[str, Any]:
    return {
        "RpcError": {
            "type": "object", "required": ["jsonrpc", "error", "id"],
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {},
                "error": {"type": "object", "required": ["code", "message", "data"],
                          "properties": {
                              "code": {"type": "integer"}, "message": {"type": "string"},
                              "data": {"type": "object",
                                       "required": ["code", "message", "details"],
                                       "properties": {
                                           "code": {"type": "string",
                                                    "enum": _error_codes()},
                                           "message": {"type": "string"},
                                           "details": {"type": "object"},
                                           "request_id": {"type": ["string", "null"]}}}}},
            },
        },
    }


def _error_response() -> dict[str, Any]:
    return {"description": "A Nexus error (`X-Nexus-Error` names its code)",
            "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/RpcError"}}}}


def _result_response(result: dict[str, Any]) -> dict[str, Any]:
    return {"description": "The method's result", "content": {"application/json": {"schema": {
        "type": "object", "required": ["jsonrpc", "result", "id"],
        "properties": {"jsonrpc": {"const": "2.0"}, "result": result, "id": {}}}}}}


def _envelope_body(params: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["params"],
        "properties": {"jsonrpc": {"const": "2.0"},
                       "id": {"type": ["string", "integer", "null"]},
                       "method": {"type": "string"},
                       "params": params}}}}}


def _rpc_operation(name: str) -> dict[str, Any]:
    """``POST /api/nfs/<name>`` with the params object of the service method."""
    from nexus.service import NexusService

    area, attr = METHODS[name].target.split(".")
    method = getattr(typing.get_type_hints(NexusService)[area], attr)
    signature = inspect.signature(method)
    checker = checker_for(name, method)
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for parameter in list(signature.parameters.values())[2:]:  # self, principal
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            extra = True
            continue
        properties[parameter.name] = _param_schema(checker, parameter)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    params = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        params["required"] = required
    doc = inspect.getdoc(method) or ""
    return {"post": {
        "operationId": f"rpc_{name}", "tags": [area],
        "summary": doc.split("\n", 1)[0] or name, "requestBody": _envelope_body(params),
        "responses": {"200": _result_response(_schema_of(signature.return_annotation)),
                      "default": _error_response()},
    }}


def _content_parameters(*, download: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": "path", "in": "query", "required": True, "schema": {"type": "string"}}]
    if download:
        params += [{"name": name, "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 0}}
                   for name in ("offset", "length")]
        params.append({"name": "Range", "in": "header", "required": False,
                       "schema": {"type": "string"}})
    else:
        params += [{"name": "If-Match", "in": "header", "required": False,
                    "schema": {"type": "string"}},
                   {"name": "If-None-Match", "in": "header", "required": False,
                    "schema": {"type": "string"}}]
    return params


def _signed_operations(error: dict[str, Any]) -> dict[str, Any]:
    """``/api/signed/<path>``: a mounted app, so described here (docs/sdk.md)."""
    query = [{"name": name, "in": "query", "required": name in ("method", "expires", "key",
                                                                 "sig"),
              "schema": {"type": "string"}}
             for name in ("method", "expires", "key", "max_size", "content_type", "sig")]
    params = [{"name": "path", "in": "path", "required": True,
               "schema": {"type": "string"}}, *query]
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "get": {"summary": "Download through a signed URL (no key; supports Range)",
                "security": [], "parameters": [*params, {
                    "name": "Range", "in": "header", "required": False,
                    "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The file's bytes",
                                      "content": {"application/octet-stream": binary}},
                              "206": {"description": "A byte range of the file",
                                      "content": {"application/octet-stream": binary}},
                              "304": {"description": "Not modified (If-None-Match)"},
                              "default": error}},
        "put": {"summary": "Upload through a signed URL (no key; max_size, content_type)",
                "security": [], "parameters": params,
                "requestBody": {"required": True, "content": {"*/*": binary}},
                "responses": {"200": _result_response(_REF["FileInfo"]),
                              "default": error}},
    }


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The whole document: FastAPI's skeleton with every operation described."""
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    paths: dict[str, Any] = doc.setdefault("paths", {})
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update({**_SCHEMAS, **_envelopes()})
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                "description": "An API key"}}
    doc["security"] = [{"bearer": []}]
    error = _error_response()

    generic = paths.setdefault("/api/nfs/{method}", {}).setdefault("post", {})
    generic.update({
        "parameters": [{"name": "method", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": _envelope_body({"type": "object"}),
        "responses": {"200": _result_response({}), "default": error},
    })
    for name, spec in METHODS.items():
        if not spec.streaming:
            paths[f"/api/nfs/{name}"] = _rpc_operation(name)

    content = paths.get("/api/fs/content", {})
    if "get" in content:
        content["get"].update({
            "parameters": _content_parameters(download=True),
            "responses": {
                "200": {"description": "The file's bytes",
                        "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}},
                "206": {"description": "A byte range of the file",
                        "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}},
                "default": error}})
    for verb in ("put", "post"):
        if verb in content:
            content[verb].update({
                "parameters": _content_parameters(download=False),
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": _result_response(_REF["FileInfo"]), "default": error}})
    paths[f"{SIGNED_ROUTE}/{{path}}"] = _signed_operations(error)
    if "get" in paths.get("/health", {}):
        health = {"type": "object", "required": ["status", "version", "mode"],
                  "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                                 "mode": {"type": "string"}, "reason": {"type": "string"}}}
        body = {"content": {"application/json": {"schema": health}}}
        paths["/health"]["get"].update({"security": [], "responses": {
            "200": {"description": "Up", **body},
            "503": {"description": "The database is unreachable", **body}}})
    if "get" in paths.get("/metrics", {}):
        paths["/metrics"]["get"]["responses"] = {
            "200": {"description": "Prometheus text exposition",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "default": error}
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`openapi_document` (built once, on first request) at ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
