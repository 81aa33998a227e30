"""Discord webhooks: Discord's validation, its per-webhook rate limit and 429 shape; a webhook
can be read (``GET``, how a client checks it still exists) and deleted (``DELETE``, as someone
removing it in the server's settings), after which every call answers 404 Unknown Webhook."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from app.sandbox.context import get_sandbox
from app.sandbox.fault_responses import fault_response
from app.sandbox.responses import json_response

routes = web.RouteTableDef()
LIMIT = 5
WINDOW = 2.0  # seconds: 5 messages per 2 s per webhook, as Discord does


def _error(status: int, message: str, code: int) -> web.Response:
    return json_response({"message": message, "code": code}, status)


def _refusal(sb: Any, webhook_id: str, token: str) -> web.Response | None:
    if not webhook_id.isdigit() or webhook_id in sb.discord_deleted:
        return _error(404, "Unknown Webhook", 10015)
    if token == "invalid":
        return _error(401, "Invalid Webhook Token", 50027)
    return None


def _webhook_object(webhook_id: str, token: str) -> dict[str, Any]:
    """Discord's webhook object as ``GET /webhooks/{id}/{token}`` returns it (no ``user``)."""
    return {"id": webhook_id, "type": 1, "name": "PostFlow sandbox", "avatar": None,
            "channel_id": "100000000000000001", "guild_id": "100000000000000000",
            "application_id": None, "token": token}  # fmt: skip


@routes.get("/discord/api/webhooks/{webhook_id}/{token}")
async def get_webhook(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    sb.stats["discord.get"] += 1
    kind = sb.faults.pick("discord")
    if kind is not None:
        return await fault_response(sb, request, "discord", kind)
    webhook_id, token = request.match_info["webhook_id"], request.match_info["token"]
    return _refusal(sb, webhook_id, token) or json_response(_webhook_object(webhook_id, token))


@routes.delete("/discord/api/webhooks/{webhook_id}/{token}")
async def delete_webhook(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    webhook_id, token = request.match_info["webhook_id"], request.match_info["token"]
    refusal = _refusal(sb, webhook_id, token)
    if refusal is not None:
        return refusal
    sb.discord_deleted.add(webhook_id)
    return web.Response(status=204)


@routes.post("/discord/api/webhooks/{webhook_id}/{token}")
async def execute_webhook(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    sb.stats["discord.execute"] += 1
    kind = sb.faults.pick("discord")
    if kind is not None:
        return await fault_response(sb, request, "discord", kind)
    webhook_id, token = request.match_info["webhook_id"], request.match_info["token"]
    refusal = _refusal(sb, webhook_id, token)
    if refusal is not None:
        return refusal
    now = sb.clock.now()
    window = sb.discord_windows.setdefault(webhook_id, [])
    window[:] = [t for t in window if t > now - WINDOW]
    reset_after = (window[0] + WINDOW - now) if window else WINDOW
    headers = {
        "x-ratelimit-bucket": f"sandbox-{webhook_id}",
        "x-ratelimit-limit": str(LIMIT),
        "x-ratelimit-reset-after": f"{reset_after:.3f}",
        "x-ratelimit-reset": f"{now + reset_after:.3f}",
    }
    if len(window) >= LIMIT:
        headers["x-ratelimit-remaining"] = "0"
        headers["Retry-After"] = str(math.ceil(reset_after))
        body = {"message": "You are being rate limited.", "retry_after": round(reset_after, 3),
                "global": False}  # fmt: skip
        return json_response(body, 429, headers)
    try:
        payload: Any = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "The request body contains invalid JSON.", 50109)
    problem = _validate(payload)
    if problem:
        return json_response({"message": "Invalid Form Body", "code": 50035, "errors": problem}, 400)
    window.append(now)
    headers["x-ratelimit-remaining"] = str(LIMIT - len(window))
    message = {
        "id": str(4_000_000_000 + len(sb.discord_messages)),
        "webhook_id": webhook_id,
        "channel_id": "100000000000000001",
        "content": payload.get("content", ""),
        "embeds": payload.get("embeds", []),
        "timestamp": sb.clock.iso(),
        "type": 0,
    }
    sb.discord_messages.append({"webhook_id": webhook_id, "payload": payload, "message": message})
    if request.query.get("wait", "").lower() == "true":
        return json_response(message, 200, headers)
    return web.Response(status=204, headers=headers)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _validate(payload: Any) -> dict[str, Any] | None:
    """Discord's "Invalid Form Body" errors for the limits a notifier can hit."""
    if not isinstance(payload, dict):
        return _field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used")
    content = payload.get("content")
    embeds = payload.get("embeds")
    if not content and not embeds:
        return {"content": _field_error("BASE_TYPE_REQUIRED", "Cannot send an empty message")}
    if content is not None and (not isinstance(content, str) or len(content) > 2000):
        return {"content": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")}
    if embeds is None:
        return None
    if not isinstance(embeds, list) or len(embeds) > 10:
        return {"embeds": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")}
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            return {"embeds": {str(i): _field_error("DICT_TYPE_CONVERT", "Only dictionaries")}}
        too_long = len(str(embed.get("title", ""))) > 256 or len(str(embed.get("description", ""))) > 4096
        if too_long:
            return {"embeds": {str(i): _field_error("BASE_TYPE_MAX_LENGTH", "Embed field too long")}}
    return None
