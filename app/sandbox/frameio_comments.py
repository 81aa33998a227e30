"""Frame.io V4: comments on files (create, list, show, update, delete).

Everything the spec's ``CreateCommentParams`` carries is kept and shown back. Where the spec
states a rule it is enforced: ``duration`` needs a ``timestamp``; ``timestamp`` and ``duration``
only on audio or video, ``page`` only on a PDF. Timestamps are kept as frames (a timecode is
read at the sandbox's 24 fps) and shown as timecodes with ``timestamp_as_timecode=true``.
``completed`` is shown as ``completed_at`` and ``completer_id``, as the response schema has it.
Attachments are not emulated (their routes answer 501).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.sandbox import serialize
from app.sandbox.frameio_common import OpContext, operation
from app.sandbox.model import Comment, File, new_id
from app.sandbox.pagination import paginate
from app.sandbox.responses import ApiError, json_response
from app.sandbox.validation import read_body

routes = web.RouteTableDef()
INCLUDES = ("owner", "replies")
SORTS = {
    "created_at_asc": (lambda c: c.created_at, False),
    "created_at_desc": (lambda c: c.created_at, True),
    "completed_at_asc": (lambda c: c.completed_at or "", False),
    "completed_at_desc": (lambda c: c.completed_at or "", True),
    "owner_asc": (lambda c: c.owner_id, False),
    "owner_desc": (lambda c: c.owner_id, True),
}


def _invalid(detail: str, pointer: str) -> ApiError:
    return ApiError(422, detail, title="Invalid value", pointer=pointer)


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise ApiError(422, f"{name} must be true or false", title="Invalid value", pointer=f"/{name}")
    return raw == "true"


def _include(request: web.Request) -> str | None:
    raw = request.query.get("include")
    if raw is not None and raw not in INCLUDES:
        raise ApiError(422, "include must be owner or replies", title="Invalid value", pointer="/include")
    return raw


def _shown(ctx: OpContext, request: web.Request, c: Comment, include: str | None = None) -> dict[str, Any]:
    owner = ctx.sb.store.users.get(c.owner_id) if include == "owner" else None
    return serialize.comment(c, as_timecode=_flag(request, "timestamp_as_timecode"), owner=owner,
                             replies=include == "replies")  # fmt: skip


def _comment(request: web.Request, ctx: OpContext) -> tuple[Comment, File]:
    account = ctx.account(request)
    c = ctx.sb.store.comments.get(request.match_info["comment_id"])
    f = ctx.sb.store.files.get(c.file_id) if c is not None else None
    if c is None or f is None or f.account_id != account.id:
        raise ApiError(404, "Comment not found")
    return c, f


def _apply(ctx: OpContext, c: Comment, f: File, data: dict[str, Any]) -> None:
    """The fields given, checked against the rules the spec states for them."""
    now = ctx.sb.clock.iso()
    timed = f.media_type.startswith(("video/", "audio/"))
    if "timestamp" in data:
        stamp = data["timestamp"]
        if stamp is not None and not timed:
            raise ApiError(422, "timestamp is only allowed on audio and video files", title="Invalid value",
                           pointer="/data/timestamp")  # fmt: skip
        c.timestamp = serialize.frame_of(stamp) if isinstance(stamp, str) else stamp
    if "duration" in data:
        c.duration = data["duration"]
    if c.duration is not None and (c.timestamp is None or not timed):
        raise _invalid("duration requires a timestamp", "/data/duration")
    if data.get("page") is not None and f.media_type != "application/pdf":
        raise ApiError(
            422, "page is only allowed on PDF documents", title="Invalid value", pointer="/data/page"
        )
    for name in ("anchor", "annotation", "page", "text_review_annotation"):
        if name in data:
            setattr(c, name, data[name])
    if "links" in data:
        c.links = [dict(link) for link in data["links"]]
    if "text" in data and data["text"] != c.text:
        c.text = data["text"]
        c.text_edited_at = now if c.created_at != now else None
    if "completed" in data:
        done = bool(data["completed"])
        c.completed_at, c.completer_id = (now, ctx.user.id) if done else (None, None)
    c.updated_at = now


@routes.post("/v4/accounts/{account_id}/files/{file_id}/comments")
@operation("comments.create")
async def create_comment(request: web.Request, ctx: OpContext) -> web.Response:
    f = ctx.file(request)
    data = await read_body(request, "comments.create")
    if data.get("attachments"):  # valid per the spec, but not emulated: said plainly
        raise ApiError(501, "The sandbox does not emulate comment attachments.", title="Not Implemented")
    now = ctx.sb.clock.iso()
    c = Comment(new_id(), f.id, data["text"], ctx.user.id, now, now)
    _apply(ctx, c, f, {k: v for k, v in data.items() if k != "text"})
    ctx.sb.store.comments[c.id] = c
    ctx.sb.store.changed()
    return json_response({"data": _shown(ctx, request, c)}, 201)


@routes.get("/v4/accounts/{account_id}/files/{file_id}/comments")
@operation("comments.index")
async def list_comments(request: web.Request, ctx: OpContext) -> web.Response:
    f = ctx.file(request)
    include = _include(request)
    sort = request.query.get("sort", "created_at_asc")
    if sort not in SORTS:
        raise ApiError(422, f"sort must be one of {', '.join(SORTS)}", title="Invalid value", pointer="/sort")
    if sort.startswith("owner") and include != "owner":
        raise ApiError(422, "sorting by owner needs include=owner", title="Invalid value", pointer="/sort")
    key, reverse = SORTS[sort]
    items = sorted((c for c in ctx.sb.store.comments.values() if c.file_id == f.id), key=key, reverse=reverse)
    page, extra = paginate(request, items, 100)
    return json_response({"data": [_shown(ctx, request, c, include) for c in page], **extra})


@routes.get("/v4/accounts/{account_id}/comments/{comment_id}")
@operation("comments.show")
async def show_comment(request: web.Request, ctx: OpContext) -> web.Response:
    c, _ = _comment(request, ctx)
    return json_response({"data": _shown(ctx, request, c, _include(request))})


@routes.patch("/v4/accounts/{account_id}/comments/{comment_id}")
@operation("comments.update")
async def update_comment(request: web.Request, ctx: OpContext) -> web.Response:
    c, f = _comment(request, ctx)
    data = await read_body(request, "comments.update")
    _apply(ctx, c, f, data)
    ctx.sb.store.changed()
    return json_response({"data": _shown(ctx, request, c)})


@routes.delete("/v4/accounts/{account_id}/comments/{comment_id}")
@operation("comments.delete")
async def delete_comment(request: web.Request, ctx: OpContext) -> web.Response:
    c, _ = _comment(request, ctx)
    del ctx.sb.store.comments[c.id]
    ctx.sb.store.changed()
    return web.Response(status=204)
