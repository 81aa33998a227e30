"""Frame.io V4: files (local and remote upload, status, show, move, rename, delete)."""

from __future__ import annotations

import mimetypes

from aiohttp import web

from app.sandbox import serialize
from app.sandbox.frameio_common import OpContext, includes, operation
from app.sandbox.frameio_structure import MEDIA_INCLUDES
from app.sandbox.model import File, new_id
from app.sandbox.pagination import paginate
from app.sandbox.remote import fetch_remote
from app.sandbox.responses import ApiError, json_response
from app.sandbox.storage import delete_blobs, media_links, split_parts, upload_urls
from app.sandbox.validation import read_body

routes = web.RouteTableDef()


def media_type_for(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _new_file(ctx: OpContext, parent_id: str, project_id: str, name: str, size: int) -> File:
    now = ctx.sb.clock.iso()
    f = File(
        id=new_id(), account_id=ctx.sb.store.folders[parent_id].account_id, project_id=project_id,
        parent_id=parent_id, name=name, file_size=size, media_type=media_type_for(name),
        created_at=now, updated_at=now, keep_bytes=ctx.sb.config.keep_bytes,
    )  # fmt: skip
    ctx.sb.store.files[f.id] = f
    ctx.sb.store.changed()
    return f


@routes.get("/v4/accounts/{account_id}/folders/{folder_id}/files")
@operation("files.list")
async def list_files(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    inc = includes(request, MEDIA_INCLUDES)
    items = [a for a in ctx.sb.store.children(folder.id, ctx.sb.config.listing_lag) if isinstance(a, File)]
    page, extra = paginate(request, items, 500)
    data = [
        serialize.include_extras(
            serialize.file(f, media_links(ctx.sb, f, inc)),
            inc,
            ctx.sb.store,
            f.project_id,
            ctx.user,
        )
        for f in page
    ]
    return json_response({"data": data, **extra})


@routes.post("/v4/accounts/{account_id}/folders/{folder_id}/files/local_upload")
@operation("files.create_local_upload")
async def create_local_upload(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    data = await read_body(request, "files.create_local_upload")
    f = _new_file(ctx, folder.id, folder.project_id, data["name"], data["file_size"])
    f.part_sizes = split_parts(f.file_size, ctx.sb.config.part_size)
    f.url_expires_at = ctx.sb.clock.now() + ctx.sb.config.part_url_lifetime
    out = serialize.file(f)
    out["upload_urls"] = upload_urls(ctx.sb, f)
    return json_response({"data": out}, 201)


@routes.post("/v4/accounts/{account_id}/folders/{folder_id}/files/remote_upload")
@operation("files.create_remote_upload")
async def create_remote_upload(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    data = await read_body(request, "files.create_remote_upload")
    source = data["source_url"]
    if not source.startswith(("http://", "https://")):
        raise ApiError(422, "source_url must be an http(s) URL", pointer="/data/source_url")
    f = _new_file(ctx, folder.id, folder.project_id, data["name"], 0)
    f.source = "remote"
    ctx.sb.spawn(fetch_remote(ctx.sb, f, source))
    links = {"status": f"/v4/accounts/{f.account_id}/files/{f.id}/status"}
    return json_response({"data": serialize.file(f), "links": links}, 202)


@routes.get("/v4/accounts/{account_id}/files/{file_id}")
@operation("files.show")
async def show_file(request: web.Request, ctx: OpContext) -> web.Response:
    f = ctx.file(request)
    inc = includes(request, MEDIA_INCLUDES)
    out = serialize.include_extras(
        serialize.file(f, media_links(ctx.sb, f, inc)), inc, ctx.sb.store, f.project_id, ctx.user
    )
    return json_response({"data": out})


@routes.delete("/v4/accounts/{account_id}/files/{file_id}")
@operation("files.delete")
async def delete_file(request: web.Request, ctx: OpContext) -> web.Response:
    f = ctx.file(request)
    ctx.sb.store.unstack(f)
    del ctx.sb.store.files[f.id]
    for c in [c for c in ctx.sb.store.comments.values() if c.file_id == f.id]:
        del ctx.sb.store.comments[c.id]
    ctx.sb.store.changed()
    delete_blobs(ctx.sb, f.id)
    return web.Response(status=204)


@routes.patch("/v4/accounts/{account_id}/files/{file_id}/move")
@operation("files.move")
async def move_file(request: web.Request, ctx: OpContext) -> web.Response:
    """Into another folder of the account (its project follows the folder), or into a version
    stack, where it becomes the newest version."""
    f = ctx.file(request)
    data = await read_body(request, "files.move")
    parent_id = data.get("parent_id")
    if not parent_id:
        raise ApiError(422, "parent_id is required", title="Invalid value", pointer="/data/parent_id")
    store = ctx.sb.store
    stack = store.version_stacks.get(parent_id)
    if stack is not None and stack.account_id == f.account_id:
        if f.parent_id != stack.id:
            store.stack_onto(f, stack)
    else:
        folder = store.folders.get(parent_id)
        if folder is None or folder.account_id != f.account_id:
            raise ApiError(422, "parent_id does not name a folder or version stack of this account",
                           title="Invalid value", pointer="/data/parent_id")  # fmt: skip
        store.unstack(f)
        f.parent_id, f.project_id, f.updated_at = folder.id, folder.project_id, ctx.sb.clock.iso()
    store.changed()
    return json_response({"data": serialize.file(f, media_links(ctx.sb, f, set()))})


@routes.patch("/v4/accounts/{account_id}/files/{file_id}")
@operation("files.update")
async def update_file(request: web.Request, ctx: OpContext) -> web.Response:
    f = ctx.file(request)
    data = await read_body(request, "files.update")
    if "name" in data:
        f.name = data["name"]
        f.updated_at = ctx.sb.clock.iso()
        ctx.sb.store.changed()
    return json_response({"data": serialize.file(f, media_links(ctx.sb, f, set()))})


@routes.get("/v4/accounts/{account_id}/files/{file_id}/status")
@operation("files.show_file_upload_status")
async def file_status(request: web.Request, ctx: OpContext) -> web.Response:
    return json_response({"data": serialize.file_status(ctx.file(request))})
