"""Request bodies checked against the spec's schemas, answering 422 like Frame.io does."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from aiohttp import web

from app.sandbox.request_schemas import REQUEST_SCHEMAS
from app.sandbox.responses import ApiError


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes a JSON Schema ``null`` type."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


_VALIDATORS = {
    op: jsonschema.Draft7Validator(_to_json_schema(schema)) for op, schema in REQUEST_SCHEMAS.items()
}


async def read_body(request: web.Request, operation: str) -> dict[str, Any]:
    raw = await request.read()
    if not request.content_type.startswith("application/json"):
        raise ApiError(400, "Content-Type must be application/json")
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "Request body is not valid JSON") from None
    errors = sorted(_VALIDATORS[operation].iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        raise ApiError(422, err.message, title="Invalid value", pointer=pointer)
    data: dict[str, Any] = body["data"]
    return data
