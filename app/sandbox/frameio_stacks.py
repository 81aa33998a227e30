"""Frame.io V4: version stacks (create, list, show, children, move).

What the spec says, and the sandbox's reading where it is silent:
- a stack is created from 2 to 10 files already in the folder, oldest first; the last is the
  head (``head_version``), and the stack is named after its head;
- a stacked file's ``parent_id`` is its stack ("Parent Folder or Version Stack ID"), so a file
  already in one stack is not in the folder any more and cannot be put in a second one (422);
- ``files.move`` with a stack as ``parent_id`` makes the file the stack's newest version;
- a version deleted or moved out leaves the stack named after its new head; an empty stack is
  gone (a one-file stack stays: the spec does not say it dissolves);
- children are listed oldest version first, as the stack was built.
``version_stacks.copy`` is not emulated (501, see ``spec_operations``).
"""

from __future__ import annotations

from aiohttp import web

from app.sandbox import serialize
from app.sandbox.frameio_common import OpContext, includes, operation
from app.sandbox.frameio_structure import MEDIA_INCLUDES
from app.sandbox.model import File, VersionStack, new_id
from app.sandbox.pagination import paginate
from app.sandbox.responses import ApiError, json_response
from app.sandbox.storage import media_links
from app.sandbox.validation import read_body

routes = web.RouteTableDef()


def stack_of(request: web.Request, ctx: OpContext) -> VersionStack:
    account = ctx.account(request)
    stack = ctx.sb.store.version_stacks.get(request.match_info["version_stack_id"])
    if stack is None or stack.account_id != account.id:
        raise ApiError(404, "Version stack not found")
    return stack


def _shown(ctx: OpContext, stack: VersionStack, inc: set[str]) -> dict[str, object]:
    def links(f: File) -> dict[str, object] | None:
        return media_links(ctx.sb, f, inc)

    out = serialize.version_stack(stack, ctx.sb.store, links)
    return serialize.include_extras(out, inc, ctx.sb.store, stack.project_id, ctx.user)


@routes.post("/v4/accounts/{account_id}/folders/{folder_id}/version_stacks")
@operation("version_stacks.create")
async def create_version_stack(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    data = await read_body(request, "version_stacks.create")
    ids: list[str] = data["file_ids"]
    for n, fid in enumerate(ids):
        f = ctx.sb.store.files.get(fid)
        pointer = f"/data/file_ids/{n}"
        if f is None or f.account_id != folder.account_id:
            raise ApiError(422, f"File {fid} does not exist", title="Invalid value", pointer=pointer)
        if f.parent_id in ctx.sb.store.version_stacks:
            raise ApiError(422, f"File {fid} is already in a version stack", title="Invalid value",
                           pointer=pointer)  # fmt: skip
        if f.parent_id != folder.id:
            raise ApiError(422, f"File {fid} is not in this folder", title="Invalid value", pointer=pointer)
    now = ctx.sb.clock.iso()
    head = ctx.sb.store.files[ids[-1]]
    account, project = folder.account_id, folder.project_id
    vs = VersionStack(new_id(), account, project, folder.id, head.name, list(ids), now, now)
    ctx.sb.store.version_stacks[vs.id] = vs
    for fid in ids:
        ctx.sb.store.files[fid].parent_id = vs.id
    ctx.sb.store.changed()
    return json_response({"data": serialize.version_stack(vs, ctx.sb.store)}, 201)


@routes.get("/v4/accounts/{account_id}/folders/{folder_id}/version_stacks")
@operation("version_stacks.list")
async def list_version_stacks(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    inc = includes(request, MEDIA_INCLUDES)
    stacks = [v for v in ctx.sb.store.version_stacks.values() if v.parent_id == folder.id]
    page, extra = paginate(request, stacks, 500)
    return json_response({"data": [_shown(ctx, v, inc) for v in page], **extra})


@routes.get("/v4/accounts/{account_id}/version_stacks/{version_stack_id}")
@operation("version_stacks.show")
async def show_version_stack(request: web.Request, ctx: OpContext) -> web.Response:
    stack = stack_of(request, ctx)
    return json_response({"data": _shown(ctx, stack, includes(request, MEDIA_INCLUDES))})


@routes.get("/v4/accounts/{account_id}/version_stacks/{version_stack_id}/children")
@operation("version_stacks.index")
async def version_stack_children(request: web.Request, ctx: OpContext) -> web.Response:
    stack = stack_of(request, ctx)
    inc = includes(request, MEDIA_INCLUDES)
    files = [ctx.sb.store.files[fid] for fid in stack.file_ids]
    page, extra = paginate(request, files, 100)
    data = [
        serialize.include_extras(
            serialize.file(f, media_links(ctx.sb, f, inc)), inc, ctx.sb.store, f.project_id, ctx.user
        )
        for f in page
    ]
    return json_response({"data": data, **extra})


@routes.patch("/v4/accounts/{account_id}/version_stacks/{version_stack_id}/move")
@operation("version_stacks.move")
async def move_version_stack(request: web.Request, ctx: OpContext) -> web.Response:
    stack = stack_of(request, ctx)
    data = await read_body(request, "version_stacks.move")
    parent_id = data.get("parent_id")
    if not parent_id:
        raise ApiError(422, "parent_id is required", title="Invalid value", pointer="/data/parent_id")
    folder = ctx.sb.store.folders.get(parent_id)
    if folder is None or folder.account_id != stack.account_id:
        raise ApiError(422, "parent_id does not name a folder of this account", title="Invalid value",
                       pointer="/data/parent_id")  # fmt: skip
    now = ctx.sb.clock.iso()
    stack.parent_id, stack.project_id, stack.updated_at = folder.id, folder.project_id, now
    for fid in stack.file_ids:
        ctx.sb.store.files[fid].project_id = folder.project_id
    ctx.sb.store.changed()
    return json_response({"data": serialize.version_stack(stack, ctx.sb.store)})
