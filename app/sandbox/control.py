"""/_sandbox/: what tests and the demo mode use to inspect and steer the sandbox."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.sandbox.context import get_sandbox
from app.sandbox.responses import json_response
from app.sandbox.storage import delete_blobs

routes = web.RouteTableDef()


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        doc = json.loads(await request.read() or b"{}")
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return doc


@routes.get("/_sandbox/health")
async def health(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    return json_response({"ok": True, "base_url": sb.base_url, "seed_account_id": sb.default_account_id()})


@routes.get("/_sandbox/files")
async def files(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    out = [
        {
            "id": f.id,
            "name": f.name,
            "path": sb.store.folder_path(f.parent_id) + "/" + f.name,
            "folder_id": f.parent_id,
            "project_id": f.project_id,
            "status": f.status,
            "file_size": f.file_size,
            "media_type": f.media_type,
            "sha256": f.sha256,
            "parts_total": len(f.part_sizes),
            "parts_received": len(f.parts_received),
            "upload_failed": f.upload_failed,
            "source": f.source,
        }
        for f in sb.store.files.values()
    ]
    return json_response({"files": out})


@routes.get("/_sandbox/folders")
async def folders(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    out = [
        {"id": f.id, "name": f.name, "parent_id": f.parent_id, "path": sb.store.folder_path(f.id)}
        for f in sb.store.folders.values()
    ]
    return json_response({"folders": out})


@routes.post("/_sandbox/reset")
async def reset(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    for fid in list(sb.store.files):
        delete_blobs(sb, fid)
    sb.store.clear()
    sb.clock.offset = 0.0
    sb.store.seed()
    sb.store.changed()
    sb.faults.clear()
    sb.limiter.reset()
    sb.stats.clear()
    sb.discord_messages.clear()
    sb.discord_windows.clear()
    sb.ims.token_requests.clear()
    sb.ims.revoked.clear()
    return json_response({"ok": True})


@routes.get("/_sandbox/faults")
async def get_faults(request: web.Request) -> web.Response:
    return json_response(get_sandbox(request).faults.describe())


@routes.post("/_sandbox/faults")
async def set_faults(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    doc = await _json(request)
    if doc.get("clear"):
        sb.faults.clear()
        doc.pop("clear")
    try:
        sb.faults.configure(doc)
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return json_response(sb.faults.describe())


@routes.post("/_sandbox/clock")
async def set_clock(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    doc = await _json(request)
    if "offset_seconds" in doc:
        sb.clock.offset = float(doc["offset_seconds"])
    if "advance_seconds" in doc:
        sb.clock.offset += float(doc["advance_seconds"])
    sb.store.changed()
    return json_response({"offset_seconds": sb.clock.offset, "now": sb.clock.iso()})


@routes.get("/_sandbox/settings")
async def get_settings(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    return json_response(_settings(sb))


def _settings(sb: Any) -> dict[str, Any]:
    return {
        "access_token_lifetime": sb.config.access_token_lifetime,
        "refresh_token_lifetime": sb.config.refresh_token_lifetime,
        "issue_refresh_tokens": sb.issue_refresh_tokens,
        "rate_limit_scale": sb.limiter.scale,
        "retry_after_header": sb.retry_after_header,
        "part_size": sb.config.part_size,
        "part_url_lifetime": sb.config.part_url_lifetime,
        "stall_seconds": sb.config.stall_seconds,
        "transcode_delay": sb.config.transcode_delay,
        "fail_next_uploads": sb.fail_next_uploads,
    }


@routes.post("/_sandbox/settings")
async def set_settings(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    doc = await _json(request)
    for key, value in doc.items():
        if key == "issue_refresh_tokens":
            sb.issue_refresh_tokens = bool(value)
        elif key == "retry_after_header":
            sb.retry_after_header = bool(value)
        elif key == "rate_limit_scale":
            sb.limiter.scale = float(value)
            sb.limiter.reset()
        elif key == "fail_next_uploads":
            sb.fail_next_uploads = int(value)
        elif key == "part_size":
            sb.config.part_size = int(value)
        elif key in ("access_token_lifetime", "refresh_token_lifetime", "part_url_lifetime",
                     "stall_seconds", "transcode_delay"):  # fmt: skip
            setattr(sb.config, key, float(value))
        else:
            raise web.HTTPBadRequest(text=f"unknown setting {key!r}")
    return json_response(_settings(sb))


@routes.post("/_sandbox/token")
async def mint(request: web.Request) -> web.Response:
    """A token for the test user without the OAuth dance (tests, SDK checks, demo)."""
    sb = get_sandbox(request)
    doc = await _json(request)
    client_id = str(doc.get("client_id", "postflow-sandbox"))
    user = sb.default_user()
    access = sb.mint_token(
        "access", client_id, user, float(doc.get("lifetime", sb.config.access_token_lifetime))
    )
    refresh = sb.mint_token("refresh", client_id, user, sb.config.refresh_token_lifetime)
    return json_response(
        {"access_token": access.token, "refresh_token": refresh.token,
         "expires_in": int(access.expires_at - sb.clock.now())}
    )  # fmt: skip


@routes.get("/_sandbox/ims")
async def ims_log(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    live = [t for t in sb.store.tokens.values() if not t.revoked and t.expires_at > sb.clock.now()]
    return json_response(
        {
            "token_requests": dict(sb.ims.token_requests),
            "revoked": list(sb.ims.revoked),
            "revoked_tokens": [t.token for t in sb.store.tokens.values() if t.revoked],
            "live_tokens": {"access": sum(t.kind == "access" for t in live),
                            "refresh": sum(t.kind == "refresh" and not t.rotated for t in live)},
        }
    )  # fmt: skip


@routes.get("/_sandbox/stats")
async def stats(request: web.Request) -> web.Response:
    return json_response(dict(get_sandbox(request).stats))


@routes.get("/_sandbox/discord/messages")
async def discord_messages(request: web.Request) -> web.Response:
    return json_response({"messages": get_sandbox(request).discord_messages})


@routes.delete("/_sandbox/discord/messages")
async def clear_discord(request: web.Request) -> web.Response:
    get_sandbox(request).discord_messages.clear()
    return web.Response(status=204)
