"""What the sandbox copied from the spec (request schemas, rate limits) still matches it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support_sandbox import SPEC_PATH

from app.sandbox.ratelimit import DOCUMENTED_LIMITS
from app.sandbox.request_schemas import REQUEST_SCHEMAS
from app.sandbox.spec_operations import DOCUMENTED_OPERATIONS

DROPPED = ("description", "example", "examples", "title")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text()))


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: op
        for methods in spec["paths"].values()
        for op in methods.values()
        if isinstance(op, dict) and "operationId" in op
    }


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].split("/")[1:]:
                target = target[part]
            return _resolve(spec, target)
        return {k: _resolve(spec, v) for k, v in node.items() if k not in DROPPED}
    if isinstance(node, list):
        return [_resolve(spec, v) for v in node]
    return node


def test_request_schemas_match_the_spec(spec: dict[str, Any]) -> None:
    ops = _operations(spec)
    for op_id, schema in REQUEST_SCHEMAS.items():
        body = ops[op_id]["requestBody"]["content"]["application/json"]["schema"]
        assert _resolve(spec, body) == schema, op_id


def test_rate_limits_match_the_spec(spec: dict[str, Any]) -> None:
    ops = _operations(spec)
    for op_id, (calls, window_ms) in DOCUMENTED_LIMITS.items():
        m = re.search(r"Rate Limits: (\d+) calls per ([\d.]+) (second|minute)", ops[op_id]["description"])
        assert m is not None, op_id
        unit = 1000 if m.group(3) == "second" else 60_000
        assert (calls, window_ms) == (int(m.group(1)), round(float(m.group(2)) * unit)), op_id


def test_client_pacing_uses_the_documented_limits() -> None:
    """The client keeps its own copy (it must not import the emulator); both follow the spec."""
    from app.frameio.rate_limiter import DOCUMENTED

    for op_id, (calls, window_s) in DOCUMENTED.items():
        assert DOCUMENTED_LIMITS[op_id] == (calls, round(window_s * 1000)), op_id


def test_the_documented_operation_list_matches_the_spec(spec: dict[str, Any]) -> None:
    """The 501 "not emulated" answers know every operation the spec documents."""
    listed = {
        (method.upper(), path, op["operationId"])
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
        if isinstance(op, dict) and "operationId" in op
    }
    assert set(DOCUMENTED_OPERATIONS) == listed and len(DOCUMENTED_OPERATIONS) == len(listed)
