"""Request bodies checked against the spec's schemas, answering 422 like Frame.io does."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from aiohttp import web

from app.sandbox.request_schemas import REQUEST_SCHEMAS
from app.sandbox.responses import ApiError


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes "this, or null". A ``oneOf`` whose branches are
    each nullable (a comment's ``timestamp``: a timecode or a frame) would refuse null for
    matching twice: its branches overlap only there, so it becomes an ``anyOf``."""
    if isinstance(node, dict):
        out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
        branches = node.get("oneOf")
        if (
            isinstance(branches, list)
            and sum(isinstance(b, dict) and bool(b.get("nullable")) for b in branches) > 1
        ):
            out["anyOf"] = out.pop("oneOf")
        if node.get("nullable"):
            return {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


# The spec names a custom format for timecodes and gives no pattern: the sandbox checks the
# shape it documents, HH:MM:SS:FF, so a malformed timestamp is a 422 as a client would expect.
FORMATS = jsonschema.FormatChecker(formats=())
TIMECODE = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d:\d{2}$")


@FORMATS.checks("HH:MM:SS:FF")
def _is_timecode(value: object) -> bool:
    return not isinstance(value, str) or TIMECODE.match(value) is not None


_VALIDATORS = {
    op: jsonschema.Draft7Validator(_to_json_schema(schema), format_checker=FORMATS)
    for op, schema in REQUEST_SCHEMAS.items()
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
