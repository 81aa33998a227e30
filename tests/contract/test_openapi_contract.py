"""Contract tests: every sandbox response PostFlow uses, validated against the Frame.io V4 spec.

Each call goes over real HTTP to the sandbox; its response is checked against the OpenAPI
description in ``shared/frameio-v4-openapi.json`` (``SPEC_PATH``), looked up by
(path template, method, status). ``Contract.check`` asserts that

* the status is documented for the operation (and is the one the test expects),
* the JSON body validates against the documented schema (JSON Schema Draft 7, formats checked),
  or the body is empty where the spec documents no JSON content (204),
* every response header the spec marks ``required: true`` is present, is an integer and
  validates against its schema, and ``x-ratelimit-limit``/``x-ratelimit-window`` match the
  "Rate Limits: N calls per T unit(s)" note of the operation's description.

OpenAPI 3.0 → JSON Schema conversion (``to_json_schema``):

* ``nullable: true``: ``type: X`` becomes ``type: [X, "null"]`` (and ``null`` joins an ``enum``);
  a nullable node that combines schemas (``allOf``/``oneOf``/``anyOf``/``$ref``) becomes
  ``anyOf: [<node>, {type: null}]``.
* ``oneOf`` whose branches are *all* nullable (``TimeStamp``): taken literally, ``null`` matches
  every branch and so fails ``oneOf``; the nullability is hoisted to the node instead
  (``anyOf: [oneOf: [<non-null branches>], {type: null}]``). Spec ambiguity, not a sandbox bug.
* ``additionalProperties: false`` next to ``allOf`` without ``properties`` (``FileWithIncludes``,
  ``OriginalMediaLink``, ``RenditionMediaLink``): in JSON Schema that rejects *every* property;
  the intended OpenAPI meaning ("nothing beyond the properties the ``allOf`` parts declare") is
  restored by listing those property names at that level.
* ``discriminator`` with a ``mapping`` (``AssetWithIncludes``): the ``oneOf`` is kept as is (an
  ambiguous match still fails), and in addition the object must carry the discriminator
  property with a mapped value and validate against the schema that value maps to.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jsonschema
import pytest
from jsonschema import Draft7Validator, FormatChecker
from support_sandbox import SPEC_PATH

PART_SIZE = 1024
PAYLOAD = bytes(range(256)) * 10  # 2,560 bytes: three parts of at most PART_SIZE
DEADLINE_S = 10.0

# ---------------------------------------------------------------- the operations under test


@dataclass(frozen=True)
class Op:
    method: str
    template: str


OPS: dict[str, Op] = {
    "users.show": Op("get", "/v4/me"),
    "accounts.index": Op("get", "/v4/accounts"),
    "workspaces.index": Op("get", "/v4/accounts/{account_id}/workspaces"),
    "projects.index": Op("get", "/v4/accounts/{account_id}/workspaces/{workspace_id}/projects"),
    "projects.create": Op("post", "/v4/accounts/{account_id}/workspaces/{workspace_id}/projects"),
    "projects.show": Op("get", "/v4/accounts/{account_id}/projects/{project_id}"),
    "folders.show": Op("get", "/v4/accounts/{account_id}/folders/{folder_id}"),
    "folders.index": Op("get", "/v4/accounts/{account_id}/folders/{folder_id}/children"),
    "folders.list": Op("get", "/v4/accounts/{account_id}/folders/{folder_id}/folders"),
    "folders.create": Op("post", "/v4/accounts/{account_id}/folders/{folder_id}/folders"),
    "files.list": Op("get", "/v4/accounts/{account_id}/folders/{folder_id}/files"),
    "files.create_local_upload": Op(
        "post", "/v4/accounts/{account_id}/folders/{folder_id}/files/local_upload"
    ),
    "files.create_remote_upload": Op(
        "post", "/v4/accounts/{account_id}/folders/{folder_id}/files/remote_upload"
    ),
    "files.show": Op("get", "/v4/accounts/{account_id}/files/{file_id}"),
    "files.show_file_upload_status": Op("get", "/v4/accounts/{account_id}/files/{file_id}/status"),
    "files.delete": Op("delete", "/v4/accounts/{account_id}/files/{file_id}"),
    "files.move": Op("patch", "/v4/accounts/{account_id}/files/{file_id}/move"),
    "files.update": Op("patch", "/v4/accounts/{account_id}/files/{file_id}"),
    "version_stacks.create": Op("post", "/v4/accounts/{account_id}/folders/{folder_id}/version_stacks"),
    "version_stacks.list": Op("get", "/v4/accounts/{account_id}/folders/{folder_id}/version_stacks"),
    "version_stacks.show": Op("get", "/v4/accounts/{account_id}/version_stacks/{version_stack_id}"),
    "version_stacks.index": Op("get", "/v4/accounts/{account_id}/version_stacks/{version_stack_id}/children"),
    "version_stacks.move": Op("patch", "/v4/accounts/{account_id}/version_stacks/{version_stack_id}/move"),
    "comments.create": Op("post", "/v4/accounts/{account_id}/files/{file_id}/comments"),
    "comments.index": Op("get", "/v4/accounts/{account_id}/files/{file_id}/comments"),
    "comments.show": Op("get", "/v4/accounts/{account_id}/comments/{comment_id}"),
    "comments.update": Op("patch", "/v4/accounts/{account_id}/comments/{comment_id}"),
    "comments.delete": Op("delete", "/v4/accounts/{account_id}/comments/{comment_id}"),
}

# ---------------------------------------------------------------- OpenAPI 3.0 → JSON Schema

_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_SINGLE = ("items", "not", "additionalProperties")
_OPENAPI_ONLY = ("nullable", "discriminator", "example", "xml", "externalDocs")
_COMBINERS = ("allOf", "anyOf", "oneOf", "$ref")


def _resolve(node: Any, schemas: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _declared_properties(node: Any, schemas: dict[str, Any], seen: frozenset[int]) -> set[str]:
    """Property names a schema declares itself or through its ``allOf`` parts."""
    node = _resolve(node, schemas)
    if not isinstance(node, dict) or id(node) in seen:
        return set()
    names = set(node.get("properties", {}))
    for part in node.get("allOf", []):
        names |= _declared_properties(part, schemas, seen | {id(node)})
    return names


def to_json_schema(node: Any, schemas: dict[str, Any]) -> Any:
    """Convert one OpenAPI 3.0 schema object (``schemas``: the raw components, for lookups)."""
    if not isinstance(node, dict):
        return node  # a boolean schema
    one_of = node.get("oneOf")
    if one_of and all(isinstance(b, dict) and b.get("nullable") is True for b in one_of):
        node = {**node, "nullable": True, "oneOf": [{**b, "nullable": False} for b in one_of]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _OPENAPI_ONLY:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: to_json_schema(s, schemas) for name, s in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [to_json_schema(s, schemas) for s in value]
        elif key in _SCHEMA_SINGLE:
            out[key] = to_json_schema(value, schemas)
        else:
            out[key] = copy.deepcopy(value)
    if node.get("additionalProperties") is False and "allOf" in node:
        declared = _declared_properties(node, schemas, frozenset())
        out["properties"] = {name: {} for name in sorted(declared)} | out.get("properties", {})
    mapping = (node.get("discriminator") or {}).get("mapping")
    if mapping:
        prop = node["discriminator"]["propertyName"]
        out["required"] = sorted({*out.get("required", []), prop})
        props = out.setdefault("properties", {})
        props[prop] = {**props.get(prop, {}), "enum": sorted(mapping)}
        out["allOf"] = [
            *out.get("allOf", []),
            *(
                {
                    "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                    "then": {"$ref": ref},
                }
                for value, ref in sorted(mapping.items())
            ),
        ]
    if node.get("nullable") is True:
        if any(k in out for k in _COMBINERS):
            return {"anyOf": [out, {"type": "null"}]}
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
    return out


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def format_checker() -> FormatChecker:
    """jsonschema's checkers (uuid, …) plus a strict RFC 3339 ``date-time``.

    jsonschema only checks ``date-time`` when the optional ``rfc3339-validator`` is installed;
    this one is always on, so the suite behaves the same everywhere.
    """
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.fullmatch(value):
            return False
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # ranges: month 13 etc.
        return True

    return checker


def _describe(error: jsonschema.ValidationError, depth: int = 0) -> list[str]:
    where = error.json_path
    message = error.message if len(error.message) <= 240 else error.message[:237] + "..."
    schema_path = "/".join(str(p) for p in error.schema_path)
    lines = [f"{'  ' * depth}- at {where}: {message}  [schema: {schema_path}]"]
    if error.context and depth < 2:  # why each oneOf/anyOf branch failed
        for sub in sorted(error.context, key=lambda e: (list(e.schema_path), e.json_path))[:12]:
            lines += _describe(sub, depth + 1)
    return lines


_RATE_NOTE = re.compile(r"Rate Limits?:\s*(\d+) calls per ([\d.]+) (second|minute|hour)\(s\)")
_UNIT_MS = {"second": 1_000, "minute": 60_000, "hour": 3_600_000}


class Contract:
    """The spec, converted once, and the per-response checks."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        raw = spec["components"]["schemas"]
        self.raw_schemas = raw
        self.schemas = {name: to_json_schema(s, raw) for name, s in raw.items()}
        self.formats = format_checker()
        self._validators: dict[str, Draft7Validator] = {}

    def operation(self, template: str, method: str) -> dict[str, Any]:
        paths = self.spec["paths"]
        assert template in paths, f"{template} is not a path of the spec"
        assert method in paths[template], f"{method.upper()} {template} is not in the spec"
        return dict(paths[template][method])

    def validator(self, schema: dict[str, Any]) -> Draft7Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            root = {
                "allOf": [to_json_schema(schema, self.raw_schemas)],
                "components": {"schemas": self.schemas},
            }
            self._validators[key] = Draft7Validator(root, format_checker=self.formats)
        return self._validators[key]

    def schema_errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        errors = sorted(
            self.validator(schema).iter_errors(instance),
            key=lambda e: (e.json_path, list(e.schema_path)),
        )
        return [line for e in errors for line in _describe(e)]

    @staticmethod
    def documented_rate_limit(op: dict[str, Any]) -> tuple[int, int] | None:
        match = _RATE_NOTE.search(op.get("description", ""))
        if match is None:
            return None
        calls, amount, unit = match.groups()
        return int(calls), round(float(amount) * _UNIT_MS[unit])

    def check(
        self,
        response: httpx.Response,
        template: str,
        method: str,
        expect: int | tuple[int, ...] | None = None,
    ) -> Any:
        """Assert ``response`` is what the spec documents; return its parsed body (or None)."""
        __tracebackhide__ = True
        op = self.operation(template, method)
        status = response.status_code
        title = f"{method.upper()} {template} answered {status}"
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        assert re.fullmatch(pattern, response.request.url.path), (
            f"{title}: request path {response.request.url.path} does not fit the template"
        )
        wanted = (expect,) if isinstance(expect, int) else expect
        assert wanted is None or status in wanted, f"{title}, expected {expect}; body: {response.text[:500]}"
        documented = op["responses"]
        assert str(status) in documented, (
            f"{title}, which the spec does not document (documented: {sorted(documented)}); "
            f"body: {response.text[:500]}"
        )
        doc = _resolve_response(documented[str(status)], self.spec)
        problems: list[str] = []
        body: Any = None
        content = doc.get("content", {})
        if "application/json" in content:
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("application/json"):
                problems.append(f"Content-Type is {ctype!r}, the spec documents application/json")
            try:
                body = response.json()
            except ValueError:
                problems.append(f"body is not JSON: {response.text[:200]!r}")
            else:
                schema = content["application/json"]["schema"]
                ref = schema.get("$ref", "(inline schema)")
                errors = self.schema_errors(schema, body)
                if errors:
                    problems.append(f"body does not validate against {ref}:")
                    problems += errors
        elif response.content:
            problems.append(f"the spec documents no JSON body, got {response.text[:200]!r}")
        problems += self.header_problems(response, op, doc)
        if problems:
            pytest.fail("\n".join([f"{title}: contract violated", *problems]))
        return body

    def header_problems(self, response: httpx.Response, op: dict[str, Any], doc: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        for name, header in sorted(doc.get("headers", {}).items()):
            if not header.get("required"):
                continue
            raw = response.headers.get(name)
            if raw is None:
                problems.append(f"required header {name} is missing")
                continue
            schema = header.get("schema", {})
            value: Any = raw
            if schema.get("type") == "integer":
                if not re.fullmatch(r"-?\d+", raw.strip()):
                    problems.append(f"header {name}: {raw!r} is not an integer")
                    continue
                value = int(raw)
            problems += [f"header {name}: {e}" for e in self.schema_errors(schema, value)]
        limit = self.documented_rate_limit(op)
        if limit is not None:
            for name, want in zip(("x-ratelimit-limit", "x-ratelimit-window"), limit, strict=True):
                got = response.headers.get(name)
                if got is not None and got.strip() != str(want):
                    problems.append(
                        f"header {name} is {got}, the operation documents {want} "
                        f"({limit[0]} calls per {limit[1]} ms)"
                    )
        return problems


def _resolve_response(doc: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in doc:
        node: Any = spec
        for part in doc["$ref"].lstrip("#/").split("/"):
            node = node[part]
        doc = node
    return doc


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


@dataclass
class World:
    """The seeded sandbox with rate limits off, plus ways to call and check operations."""

    sandbox: Any
    api: httpx.Client
    contract: Contract
    params: dict[str, str]

    def path(self, op_id: str, **overrides: str) -> str:
        return OPS[op_id].template.format(**{**self.params, **overrides})

    def call(
        self,
        op_id: str,
        *,
        client: httpx.Client | None = None,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **overrides: str,
    ) -> httpx.Response:
        return (client or self.api).request(
            OPS[op_id].method.upper(),
            self.path(op_id, **overrides),
            json=json_body,
            params=query,
            headers=headers,
        )

    def check(self, response: httpx.Response, op_id: str, expect: int | tuple[int, ...]) -> Any:
        __tracebackhide__ = True
        return self.contract.check(response, OPS[op_id].template, OPS[op_id].method, expect)

    def ok(self, op_id: str, expect: int = 200, **kw: Any) -> Any:
        __tracebackhide__ = True
        return self.check(self.call(op_id, **kw), op_id, expect)

    # ---- files ----
    def create_file(self, folder_id: str, name: str, size: int) -> dict[str, Any]:
        body = {"data": {"name": name, "file_size": size}}
        doc = self.ok("files.create_local_upload", 201, json_body=body, folder_id=folder_id)
        return dict(doc["data"])

    def upload(self, folder_id: str, name: str, payload: bytes = PAYLOAD) -> dict[str, Any]:
        """local_upload, PUT every part as S3 wants it, wait until the upload is complete."""
        created = self.create_file(folder_id, name, len(payload))
        self.put_parts(created, payload)
        self.wait_complete(created["id"])
        return created

    def put_parts(self, created: dict[str, Any], payload: bytes) -> None:
        offset = 0
        for part in created["upload_urls"]:
            chunk = payload[offset : offset + part["size"]]
            offset += part["size"]
            headers = {"x-amz-acl": "private", "Content-Type": created["media_type"]}
            r = self.sandbox.http.put(part["url"], content=chunk, headers=headers)
            assert r.status_code == 200, r.text
        assert offset == len(payload)

    def wait_complete(self, file_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            doc = self.ok("files.show_file_upload_status", file_id=file_id)
            status = doc["data"]
            assert not status["upload_failed"], status
            if status["upload_complete"]:
                return dict(status)
            assert time.monotonic() < deadline, f"upload of {file_id} never completed: {status}"
            time.sleep(0.01)

    def new_folder(self, name: str, parent: str | None = None) -> str:
        body = {"data": {"name": name}}
        doc = self.ok("folders.create", 201, json_body=body, folder_id=parent or self.root)
        return str(doc["data"]["id"])

    @property
    def account(self) -> str:
        return self.params["account_id"]

    @property
    def root(self) -> str:
        return self.params["folder_id"]

    @property
    def anonymous(self) -> httpx.Client:
        return self.sandbox.http  # type: ignore[no-any-return]  # sends no Authorization


@pytest.fixture
def world(sandbox: Any, api: httpx.Client, seed_ids: dict[str, str], contract: Contract) -> World:
    sandbox.control("/_sandbox/settings", {"rate_limit_scale": 0, "part_size": PART_SIZE})
    w = World(
        sandbox,
        api,
        contract,
        {
            "account_id": seed_ids["account"],
            "workspace_id": seed_ids["workspace"],
            "project_id": seed_ids["project"],
            "folder_id": seed_ids["root"],
            "file_id": "",
            # only reached by tests that fail before the id is looked at (auth, faults, 404)
            "version_stack_id": str(uuid.uuid4()),
            "comment_id": str(uuid.uuid4()),
        },
    )
    first = w.create_file(w.root, "A001_C001.mov", 10)
    second = w.create_file(w.root, "A001_C001_v2.mov", 10)
    w.params["file_id"] = first["id"]
    w.params["file2_id"] = second["id"]
    return w


def valid_body(world: World, op_id: str) -> Any:
    """A request body the operation accepts (None for bodiless operations)."""
    return {
        "projects.create": {"data": {"name": "Contract Project"}},
        "folders.create": {"data": {"name": "Contract Folder"}},
        "files.create_local_upload": {"data": {"name": "clip.mp4", "file_size": 2048}},
        "files.create_remote_upload": {
            "data": {"name": "remote.mp4", "source_url": f"{world.sandbox.url}/_sandbox/health"}
        },
        "version_stacks.create": {"data": {"file_ids": [world.params["file_id"], world.params["file2_id"]]}},
        "comments.create": {"data": {"text": "Contract comment"}},
        "comments.update": {"data": {"text": "Contract comment, edited"}},
        "version_stacks.move": {"data": {"parent_id": world.root}},
        "files.move": {"data": {"parent_id": world.root}},
        "files.update": {"data": {"name": "A001_C001_renamed.mov"}},
    }.get(op_id)


def _last_param(template: str) -> str:
    return re.findall(r"\{([a-z_]+)\}", template)[-1]


# ---------------------------------------------------------------- the table itself


def test_operation_table_matches_the_spec(contract: Contract) -> None:
    for op_id, op in OPS.items():
        spec_op = contract.operation(op.template, op.method)
        assert spec_op["operationId"] == op_id, (op_id, op)


def test_converted_components_are_valid_draft7(contract: Contract) -> None:
    Draft7Validator.check_schema({"components": {"schemas": contract.schemas}})


def test_children_oneof_is_unambiguous_for_each_asset_type(contract: Contract) -> None:
    """Each minimal asset matches exactly one AssetWithIncludes branch, the one its type maps to.

    Guards the targeted discriminator handling: if the spec's oneOf ever becomes ambiguous
    (a folder matching the file branch, say), this fails with the branch-by-branch reasons.
    """
    common = {
        "id": str(uuid.uuid4()),
        "name": "x",
        "parent_id": str(uuid.uuid4()),
        "project_id": str(uuid.uuid4()),
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "view_url": "https://example.invalid/v",
    }
    file = {**common, "type": "file", "status": "uploaded", "media_type": "video/mp4"}
    file["file_size"] = 1
    folder = {**common, "type": "folder", "cover_file_id": None}
    stack = {**common, "type": "version_stack", "head_version": file}
    ref = {"$ref": "#/components/schemas/AssetWithIncludes"}
    branches = contract.raw_schemas["AssetWithIncludes"]["oneOf"]
    for asset in (file, folder, stack):
        assert contract.schema_errors(ref, asset) == [], asset["type"]
        matching = [b["$ref"] for b in branches if not contract.schema_errors(b, asset)]
        assert len(matching) == 1, (asset["type"], matching)
    wrong = {**folder, "type": "file"}  # a folder's fields under the file discriminator
    assert contract.schema_errors(ref, wrong), "discriminator mismatch must be refused"


# ---------------------------------------------------------------- success responses


def test_users_show(world: World) -> None:
    doc = world.ok("users.show")
    assert doc["data"]["email"]


def test_accounts_index(world: World) -> None:
    doc = world.ok("accounts.index")
    assert [a["id"] for a in doc["data"]] == [world.account]


def test_workspaces_index(world: World) -> None:
    doc = world.ok("workspaces.index")
    assert doc["data"] and all("creator" not in w for w in doc["data"])


def test_workspaces_index_include_creator(world: World) -> None:
    doc = world.ok("workspaces.index", query={"include": "creator"})
    assert doc["data"] and all("creator" in w for w in doc["data"])


def test_projects_index(world: World) -> None:
    doc = world.ok("projects.index")
    assert {p["name"] for p in doc["data"]} >= {"Demo Project", "Client Review"}


def test_projects_index_include_owner(world: World) -> None:
    doc = world.ok("projects.index", query={"include": "owner"})
    assert doc["data"] and all("owner" in p for p in doc["data"])


def test_projects_create(world: World) -> None:
    doc = world.ok("projects.create", 201, json_body={"data": {"name": "Contract Project"}})
    assert doc["data"]["name"] == "Contract Project"
    shown = world.ok("projects.show", project_id=doc["data"]["id"])
    assert shown["data"]["root_folder_id"] == doc["data"]["root_folder_id"]


def test_projects_show(world: World) -> None:
    doc = world.ok("projects.show")
    assert doc["data"]["id"] == world.params["project_id"]


def test_projects_show_include_owner(world: World) -> None:
    doc = world.ok("projects.show", query={"include": "owner"})
    assert "owner" in doc["data"]


def test_folders_show(world: World) -> None:
    root = world.ok("folders.show")
    assert root["data"]["type"] == "folder" and root["data"]["parent_id"] is None
    child = world.new_folder("Contract Child")
    doc = world.ok("folders.show", folder_id=child)
    assert doc["data"]["parent_id"] == world.root


@pytest.fixture
def mixed_folder(world: World) -> dict[str, str]:
    """A folder holding a sub-folder, an uploaded file and a version stack of two files."""
    folder = world.new_folder("Contract Mixed")
    sub = world.new_folder("Sub", parent=folder)
    single = world.upload(folder, "single.mp4")
    old = world.upload(folder, "shot_v1.mp4")
    new = world.upload(folder, "shot_v2.mp4")
    body = {"data": {"file_ids": [old["id"], new["id"]]}}
    stack = world.ok("version_stacks.create", 201, json_body=body, folder_id=folder)["data"]
    return {"folder": folder, "sub": sub, "file": single["id"], "stack": stack["id"]}


def test_folders_index_with_file_folder_and_version_stack(world: World, mixed_folder: dict[str, str]) -> None:
    doc = world.ok("folders.index", folder_id=mixed_folder["folder"])
    by_type = {a["type"]: a["id"] for a in doc["data"]}
    assert by_type == {
        "folder": mixed_folder["sub"],
        "file": mixed_folder["file"],
        "version_stack": mixed_folder["stack"],
    }


def test_folders_index_include_media_links_original(world: World, mixed_folder: dict[str, str]) -> None:
    query = {"include": "media_links.original"}
    doc = world.ok("folders.index", folder_id=mixed_folder["folder"], query=query)
    assert {a["type"] for a in doc["data"]} == {"file", "folder", "version_stack"}
    files = [a for a in doc["data"] if a["type"] == "file"]
    missing = [a["name"] for a in files if "original" not in (a.get("media_links") or {})]
    assert not missing, (
        f"include=media_links.original was asked for, but file children {missing} carry no "
        "media_links.original (FileWithIncludes.media_links)"
    )


def test_folders_list(world: World) -> None:
    doc = world.ok("folders.list")
    assert {f["name"] for f in doc["data"]} == {"Dailies", "VFX"}


def test_folders_create(world: World) -> None:
    doc = world.ok("folders.create", 201, json_body={"data": {"name": "Contract Folder"}})
    assert doc["data"]["parent_id"] == world.root and doc["data"]["type"] == "folder"


def test_files_list(world: World) -> None:
    folder = world.new_folder("Contract Files")
    world.upload(folder, "clip.mp4")
    pending = world.create_file(folder, "pending.mp4", 10)
    doc = world.ok("files.list", folder_id=folder)
    assert {f["name"] for f in doc["data"]} == {"clip.mp4", "pending.mp4"}
    query = {"include": "media_links.original"}
    doc = world.ok("files.list", folder_id=folder, query=query)
    links = {f["id"]: f["media_links"]["original"] for f in doc["data"]}
    assert links[pending["id"]]["download_url"] is None


def test_files_create_local_upload(world: World) -> None:
    body = {"data": {"name": "clip.mp4", "file_size": len(PAYLOAD)}}
    doc = world.ok("files.create_local_upload", 201, json_body=body)
    f = doc["data"]
    assert f["status"] == "created" and f["media_type"] == "video/mp4"
    assert sum(u["size"] for u in f["upload_urls"]) == len(PAYLOAD)
    assert len(f["upload_urls"]) == 3


def test_files_create_remote_upload(world: World) -> None:
    source = world.upload(world.root, "source.mp4")
    shown = world.ok("files.show", file_id=source["id"], query={"include": "media_links.original"})
    url = shown["data"]["media_links"]["original"]["download_url"]
    body = {"data": {"name": "remote.mp4", "source_url": url}}
    doc = world.ok("files.create_remote_upload", 202, json_body=body)
    status = world.wait_complete(doc["data"]["id"])
    assert status["upload_complete"]
    after = world.ok("files.show", file_id=doc["data"]["id"])
    assert after["data"]["file_size"] == len(PAYLOAD)


def test_files_show_before_and_after_upload(world: World) -> None:
    created = world.create_file(world.root, "clip.mp4", len(PAYLOAD))
    before = world.ok("files.show", file_id=created["id"])
    assert before["data"]["status"] == "created"
    query = {"include": "media_links.original"}
    before_links = world.ok("files.show", file_id=created["id"], query=query)
    assert before_links["data"]["media_links"]["original"]["download_url"] is None
    world.put_parts(created, PAYLOAD)
    world.wait_complete(created["id"])
    after = world.ok("files.show", file_id=created["id"], query=query)
    assert after["data"]["status"] in ("uploaded", "transcoded")
    download = after["data"]["media_links"]["original"]["download_url"]
    assert world.sandbox.http.get(download).content == PAYLOAD


def test_files_show_file_upload_status_before_and_after_upload(world: World) -> None:
    created = world.create_file(world.root, "clip.mp4", len(PAYLOAD))
    before = world.ok("files.show_file_upload_status", file_id=created["id"])["data"]
    assert before["upload_complete"] is False and before["uploaded_at"] is None
    world.put_parts(created, PAYLOAD)
    after = world.wait_complete(created["id"])
    assert after["upload_complete"] is True and after["upload_completed_at"] is not None


def test_files_delete(world: World) -> None:
    uploaded = world.upload(world.root, "doomed.mp4")
    r = world.call("files.delete", file_id=uploaded["id"])
    assert world.check(r, "files.delete", 204) is None
    assert r.content == b""
    world.check(world.call("files.show", file_id=uploaded["id"]), "files.show", 404)


def test_version_stacks_create(world: World) -> None:
    old = world.upload(world.root, "shot_v1.mp4")
    new = world.upload(world.root, "shot_v2.mp4")
    body = {"data": {"file_ids": [old["id"], new["id"]]}}
    doc = world.ok("version_stacks.create", 201, json_body=body)
    assert doc["data"]["type"] == "version_stack" and doc["data"]["parent_id"] == world.root
    assert doc["data"]["head_version"]["id"] == new["id"] and doc["data"]["name"] == "shot_v2.mp4"
    shown = world.ok("files.show", file_id=old["id"])["data"]
    assert shown["parent_id"] == doc["data"]["id"]  # "Parent Folder or Version Stack ID"


def stack_of_three(world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    files = [world.upload(world.root, f"take_v{n}.mp4") for n in (1, 2, 3)]
    body = {"data": {"file_ids": [files[0]["id"], files[1]["id"]]}}
    stack = world.ok("version_stacks.create", 201, json_body=body)["data"]
    moved = world.ok("files.move", json_body={"data": {"parent_id": stack["id"]}}, file_id=files[2]["id"])
    assert moved["data"]["parent_id"] == stack["id"]
    return stack, files


def test_files_move_into_a_version_stack_makes_it_the_head(world: World) -> None:
    stack, files = stack_of_three(world)
    shown = world.ok("version_stacks.show", version_stack_id=stack["id"])["data"]
    assert shown["head_version"]["id"] == files[2]["id"] and shown["name"] == "take_v3.mp4"
    children = world.ok("version_stacks.index", version_stack_id=stack["id"])["data"]
    assert [c["id"] for c in children] == [f["id"] for f in files]  # oldest first
    listed = world.ok("folders.index", query={"type": "file,version_stack"})["data"]
    ids = {a["id"] for a in listed}
    assert stack["id"] in ids and not ids & {f["id"] for f in files}  # stacked: not loose in the folder


def test_version_stacks_show_and_children_with_media_links(world: World) -> None:
    stack, files = stack_of_three(world)
    query = {"include": "media_links.original"}
    shown = world.ok("version_stacks.show", version_stack_id=stack["id"], query=query)["data"]
    assert "media_links" in shown["head_version"]
    page = world.ok("version_stacks.index", version_stack_id=stack["id"], query={**query, "page_size": "2"})
    assert len(page["data"]) == 2 and page["links"]["next"]


def test_version_stacks_list(world: World) -> None:
    stack, _ = stack_of_three(world)
    doc = world.ok("version_stacks.list", query={"include_total_count": "true"})
    assert [s["id"] for s in doc["data"]] == [stack["id"]] and doc["total_count"] == 1


def test_version_stacks_move(world: World) -> None:
    stack, files = stack_of_three(world)
    target = world.new_folder("Stacks")
    doc = world.ok(
        "version_stacks.move", json_body={"data": {"parent_id": target}}, version_stack_id=stack["id"]
    )
    assert doc["data"]["parent_id"] == target
    assert [a["id"] for a in world.ok("folders.index", folder_id=target)["data"]] == [stack["id"]]


def test_a_file_in_one_stack_cannot_start_a_second(world: World) -> None:
    stack, files = stack_of_three(world)
    other = world.upload(world.root, "other.mp4")
    body = {"data": {"file_ids": [files[0]["id"], other["id"]]}}
    world.check(world.call("version_stacks.create", json_body=body), "version_stacks.create", 422)


def test_deleting_the_head_renames_the_stack_and_the_last_version_ends_it(world: World) -> None:
    stack, files = stack_of_three(world)
    world.check(world.call("files.delete", file_id=files[2]["id"]), "files.delete", 204)
    shown = world.ok("version_stacks.show", version_stack_id=stack["id"])["data"]
    assert shown["name"] == "take_v2.mp4" and shown["head_version"]["id"] == files[1]["id"]
    out = world.ok("files.move", json_body={"data": {"parent_id": world.root}}, file_id=files[1]["id"])
    assert out["data"]["parent_id"] == world.root
    world.check(world.call("files.delete", file_id=files[0]["id"]), "files.delete", 204)
    world.check(world.call("version_stacks.show", version_stack_id=stack["id"]), "version_stacks.show", 404)


def test_comments_create(world: World) -> None:
    doc = world.ok("comments.create", 201, json_body={"data": {"text": "Looks good"}})
    assert doc["data"]["text"] == "Looks good" and doc["data"]["timestamp"] is None
    assert "owner_id" not in doc["data"]  # not in the spec's Comment


def test_comments_create_with_timestamp(world: World) -> None:
    body = {"data": {"text": "At frame 12", "timestamp": 12}}
    doc = world.ok("comments.create", 201, json_body=body)
    assert doc["data"]["timestamp"] == 12


REF = "https://example.com/ref"


def test_comments_keep_every_field_they_are_given(world: World) -> None:
    body = {"data": {"text": "Fix the flare: see ref", "timestamp": "00:00:02:12", "duration": 24,
                     "anchor": {"x": 0.25, "y": 0.5}, "completed": True, "annotation": "[]",
                     "links": [{"start_index": 19, "end_index": 22, "url": REF}]}}  # fmt: skip
    doc = world.ok("comments.create", 201, json_body=body, query={"timestamp_as_timecode": "true"})["data"]
    assert (
        doc["timestamp"] == "00:00:02:12" and doc["duration"] == 24 and doc["anchor"] == {"x": 0.25, "y": 0.5}
    )
    assert doc["completed_at"] and doc["completer_id"] and doc["annotation"] == "[]"
    assert doc["links"] == [{"start_index": 19, "end_index": 22, "url": REF, "text": "ref"}]
    shown = world.ok("comments.show", comment_id=doc["id"], query={"include": "owner"})["data"]
    assert shown["timestamp"] == 2 * 24 + 12 and shown["owner"]["email"]  # frames unless asked


def test_comments_index_show_update_delete(world: World) -> None:
    made = [
        world.ok("comments.create", 201, json_body={"data": {"text": f"note {n}"}})["data"] for n in range(3)
    ]
    doc = world.ok("comments.index", query={"page_size": "2", "include_total_count": "true"})
    assert [c["id"] for c in doc["data"]] == [made[0]["id"], made[1]["id"]] and doc["total_count"] == 3
    newest = world.ok("comments.index", query={"sort": "created_at_desc"})["data"]
    assert newest[0]["id"] == made[2]["id"]
    edited = world.ok("comments.update", json_body={"data": {"text": "note 1, edited", "completed": True}},
                      comment_id=made[1]["id"])["data"]  # fmt: skip
    assert edited["text"] == "note 1, edited" and edited["completed_at"] is not None
    assert world.ok("comments.show", comment_id=made[1]["id"])["data"]["text"] == "note 1, edited"
    r = world.call("comments.delete", comment_id=made[1]["id"])
    world.check(r, "comments.delete", 204)
    assert r.content == b""
    world.check(world.call("comments.show", comment_id=made[1]["id"]), "comments.show", 404)


def test_comment_nulls_are_accepted_as_the_spec_allows(world: World) -> None:
    body = {"data": {"text": "plain", "timestamp": None, "anchor": None, "duration": None, "page": None}}
    world.ok("comments.create", 201, json_body=body)


def test_documented_operations_the_sandbox_does_not_emulate_say_so(world: World) -> None:
    """501 with a sentence, the rate-limit headers, and the token checked first."""
    path = f"/v4/accounts/{world.account}/version_stacks/{uuid.uuid4()}/copy"
    r = world.api.post(path, json={"data": {}})
    assert r.status_code == 501 and "version_stacks.copy" in r.json()["errors"][0]["detail"]
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-window"} <= set(r.headers)
    assert world.anonymous.post(path, json={"data": {}}).status_code == 401
    assert world.api.get(f"/v4/accounts/{world.account}/not_a_route").status_code == 404


# ---------------------------------------------------------------- error responses

_BAD_AUTH: dict[str, Callable[[World], dict[str, str]]] = {
    "no_token": lambda w: {},
    "unknown_token": lambda w: {"Authorization": "Bearer not-a-token-the-sandbox-issued"},
    "expired_token": lambda w: {"Authorization": f"Bearer {w.sandbox.token(lifetime=0)}"},
}


@pytest.mark.parametrize("auth", sorted(_BAD_AUTH))
@pytest.mark.parametrize("op_id", list(OPS))
def test_unauthorized(world: World, op_id: str, auth: str) -> None:
    r = world.call(
        op_id,
        client=world.anonymous,
        json_body=valid_body(world, op_id),
        headers=_BAD_AUTH[auth](world),
    )
    world.check(r, op_id, 401)


@pytest.mark.parametrize("op_id", [op for op, spec in OPS.items() if "{" in spec.template])
def test_not_found(world: World, op_id: str) -> None:
    """The innermost id of the path names nothing."""
    missing = {_last_param(OPS[op_id].template): str(uuid.uuid4())}
    world.check(world.call(op_id, json_body=valid_body(world, op_id), **missing), op_id, 404)


def test_not_found_unknown_account(world: World) -> None:
    r = world.call("files.show", account_id=str(uuid.uuid4()))
    world.check(r, "files.show", 404)


def test_version_stacks_create_unknown_file(world: World) -> None:
    """A body id that names nothing is a bad request (422), not a missing resource (404)."""
    body = {"data": {"file_ids": [world.params["file_id"], str(uuid.uuid4())]}}
    r = world.call("version_stacks.create", json_body=body)
    doc = world.check(r, "version_stacks.create", 422)
    assert doc["errors"][0]["source"]["pointer"] == "/data/file_ids/1"


_INVALID: list[tuple[str, str, Callable[[World], Any]]] = [
    ("projects.create", "extra_property", lambda w: {"data": {"name": "P", "color": "red"}}),
    ("projects.create", "missing_name", lambda w: {"data": {"restricted": False}}),
    ("projects.create", "extra_top_level", lambda w: {"data": {"name": "P"}, "meta": {}}),
    ("projects.create", "no_data", lambda w: {}),
    ("folders.create", "extra_property", lambda w: {"data": {"name": "F", "color": "red"}}),
    ("folders.create", "missing_name", lambda w: {"data": {}}),
    ("folders.create", "empty_name", lambda w: {"data": {"name": ""}}),
    (
        "files.create_local_upload",
        "extra_property",
        lambda w: {"data": {"name": "a.mp4", "file_size": 10, "sha256": "0"}},
    ),
    ("files.create_local_upload", "missing_name", lambda w: {"data": {"file_size": 10}}),
    (
        "files.create_local_upload",
        "zero_size",
        lambda w: {"data": {"name": "a.mp4", "file_size": 0}},
    ),
    ("files.create_remote_upload", "missing_source_url", lambda w: {"data": {"name": "r.mp4"}}),
    (
        "files.create_remote_upload",
        "extra_property",
        lambda w: {"data": {"name": "r.mp4", "source_url": w.sandbox.url, "size": 1}},
    ),
    (
        "files.create_remote_upload",
        "missing_name",
        lambda w: {"data": {"source_url": w.sandbox.url}},
    ),
    (
        "version_stacks.create",
        "one_file",
        lambda w: {"data": {"file_ids": [w.params["file_id"]]}},
    ),
    (
        "version_stacks.create",
        "extra_property",
        lambda w: {"data": {"file_ids": [w.params["file_id"], w.params["file2_id"]], "x": 1}},
    ),
    ("version_stacks.create", "missing_file_ids", lambda w: {"data": {}}),
    ("comments.create", "missing_text", lambda w: {"data": {}}),
    ("comments.create", "extra_property", lambda w: {"data": {"text": "t", "color": "red"}}),
    ("comments.create", "bad_timecode", lambda w: {"data": {"text": "t", "timestamp": "garbage"}}),
    ("comments.create", "negative_frame", lambda w: {"data": {"text": "t", "timestamp": -1}}),
    ("comments.create", "duration_without_timestamp", lambda w: {"data": {"text": "t", "duration": 5}}),
    ("comments.create", "page_on_a_video", lambda w: {"data": {"text": "t", "page": 2}}),
    (
        "comments.create",
        "anchor_off_the_frame",
        lambda w: {"data": {"text": "t", "anchor": {"x": 2, "y": 0}}},
    ),
    ("comments.update", "extra_property", lambda w: {"data": {"color": "red"}}),
    ("files.move", "unknown_parent", lambda w: {"data": {"parent_id": str(uuid.uuid4())}}),
    ("version_stacks.move", "unknown_parent", lambda w: {"data": {"parent_id": str(uuid.uuid4())}}),
]


@pytest.mark.parametrize(
    ("op_id", "case", "body"),
    [pytest.param(op, case, body, id=f"{op}-{case}") for op, case, body in _INVALID],
)
def test_unprocessable(world: World, op_id: str, case: str, body: Callable[[World], Any]) -> None:
    real: dict[str, str] = {}
    if "{comment_id}" in OPS[op_id].template:
        real["comment_id"] = world.ok("comments.create", 201, json_body={"data": {"text": "x"}})["data"]["id"]
    if "{version_stack_id}" in OPS[op_id].template:
        real["version_stack_id"] = stack_of_three(world)[0]["id"]
    world.check(world.call(op_id, json_body=body(world), **real), op_id, 422)


_INVALID_QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("version_stacks.list", "page_size_too_big", {"page_size": "501"}),
    ("version_stacks.show", "unknown_include", {"include": "media_links.nothing"}),
    ("version_stacks.index", "page_size_too_big", {"page_size": "101"}),
    ("comments.index", "unknown_sort", {"sort": "loudest_first"}),
    ("comments.index", "owner_sort_without_owner", {"sort": "owner_asc"}),
    ("comments.index", "unknown_include", {"include": "everything"}),
    ("comments.show", "bad_timecode_flag", {"timestamp_as_timecode": "maybe"}),
]


@pytest.mark.parametrize(
    ("op_id", "case", "query"),
    [pytest.param(op, case, query, id=f"{op}-{case}") for op, case, query in _INVALID_QUERIES],
)
def test_unprocessable_query(world: World, op_id: str, case: str, query: dict[str, str]) -> None:
    real: dict[str, str] = {}
    if "{comment_id}" in OPS[op_id].template:
        real["comment_id"] = world.ok("comments.create", 201, json_body={"data": {"text": "x"}})["data"]["id"]
    if "{version_stack_id}" in OPS[op_id].template:
        real["version_stack_id"] = stack_of_three(world)[0]["id"]
    world.check(world.call(op_id, query=query, **real), op_id, 422)


def test_unprocessable_include(world: World) -> None:
    r = world.call("workspaces.index", query={"include": "not_an_include"})
    world.check(r, "workspaces.index", (400, 422))


@pytest.mark.parametrize("op_id", list(OPS))
def test_too_many_requests_fault(world: World, op_id: str) -> None:
    world.sandbox.control("/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "429"}})
    r = world.call(op_id, json_body=valid_body(world, op_id))
    world.check(r, op_id, 429)


def test_too_many_requests_burst_then_recovers(world: World) -> None:
    """The next three calls, of any operation, answer 429; the fourth goes through.

    (These three operations are documented at 5 calls/s, the values the injected 429 reports;
    the header values for other operations are covered by ``test_too_many_requests_fault``.)
    """
    world.sandbox.control("/_sandbox/faults", {"api": {"burst": 3, "burst_kind": "429"}})
    for op_id in ("files.list", "files.create_local_upload", "files.show_file_upload_status"):
        world.check(world.call(op_id, json_body=valid_body(world, op_id)), op_id, 429)
    world.ok("files.show_file_upload_status")


def test_too_many_requests_folders_create_limit(world: World) -> None:
    """folders.create allows 3 calls per second: firing quickly must hit a real 429."""
    world.sandbox.control("/_sandbox/settings", {"rate_limit_scale": 1})
    body = {"data": {"name": "Burst"}}
    for _ in range(20):
        r = world.call("folders.create", json_body=body)
        if r.status_code == 429:
            break
        world.check(r, "folders.create", 201)
    else:
        pytest.fail("20 quick folders.create calls never answered 429")
    world.check(r, "folders.create", 429)
    assert r.headers.get("x-ratelimit-remaining") == "0"
