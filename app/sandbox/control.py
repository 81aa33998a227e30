"""/_sandbox/: what tests and the demo mode use to inspect and steer the sandbox."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from app.sandbox import settings
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


def _seconds(doc: dict[str, Any], key: str) -> float:
    """A number of seconds from a control request, or 400 (not a traceback) naming the key."""
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise web.HTTPBadRequest(text=f"{key!r} must be a number of seconds, got {value!r}")
    return float(value)


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
            "path": sb.store.folder_path(sb.store.folder_of(f)) + "/" + f.name,
            "folder_id": sb.store.folder_of(f),
            "version_stack_id": f.parent_id if f.parent_id in sb.store.version_stacks else None,
            "project_id": f.project_id,
            "status": f.status,
            "file_size": f.file_size,
            "media_type": f.media_type,
            "sha256": f.sha256,
            "parts_total": len(f.part_sizes),
            "parts_received": len(f.parts_received),
            "upload_failed": f.upload_failed,
            "source": f.source,
            "keep_bytes": f.keep_bytes,
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
    sb.discord_deleted.clear()
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
        sb.clock.offset = _seconds(doc, "offset_seconds")
    if "advance_seconds" in doc:
        sb.clock.offset += _seconds(doc, "advance_seconds")
    sb.store.changed()
    return json_response({"offset_seconds": sb.clock.offset, "now": sb.clock.iso()})


@routes.get("/_sandbox/settings")
async def get_settings(request: web.Request) -> web.Response:
    return json_response(settings.describe(get_sandbox(request)))


@routes.post("/_sandbox/settings")
async def set_settings(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    doc = await _json(request)
    try:
        values = settings.parse(doc)
    except settings.SettingError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    settings.apply(sb, values)
    return json_response(settings.describe(sb))


@routes.post("/_sandbox/token")
async def mint(request: web.Request) -> web.Response:
    """A token for the test user without the OAuth dance (tests, SDK checks, demo)."""
    sb = get_sandbox(request)
    doc = await _json(request)
    client_id = str(doc.get("client_id", "postflow-sandbox"))
    user = sb.default_user()
    lifetime = _seconds(doc, "lifetime") if "lifetime" in doc else sb.config.access_token_lifetime
    access = sb.mint_token("access", client_id, user, lifetime)
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


@routes.get("/_sandbox/releases/feed.json")
async def release_feed(request: web.Request) -> web.Response:
    """The demo's release feed: the running version unless a test posted another (or garbage)."""
    sb = get_sandbox(request)
    if sb.release_feed is not None:
        return web.Response(text=sb.release_feed, content_type="application/json")
    from app import __version__

    return json_response({
        "version": __version__, "notes": "The version you run.",
        "download_url": f"{sb.base_url}/_sandbox/releases/PostFlow-{__version__}.dmg", "sha256": "0" * 64,
    })  # fmt: skip


@routes.post("/_sandbox/releases/feed.json")
async def set_release_feed(request: web.Request) -> web.Response:
    """Whatever body is posted is served as the feed, as it is: a newer release, or a broken one."""
    get_sandbox(request).release_feed = await request.text()
    return json_response({"ok": True})


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
