"""Frame.io V4: who am I, accounts, workspaces, projects, folders and their children.

Folder listings leave out what was created less than ``listing_lag`` seconds ago, as the real
service's listings trail its creates; GET by id sees a new folder at once.
"""

from __future__ import annotations

from aiohttp import web

from app.sandbox import serialize
from app.sandbox.frameio_common import OpContext, includes, operation
from app.sandbox.model import File, Folder, VersionStack
from app.sandbox.pagination import paginate
from app.sandbox.responses import ApiError, json_response
from app.sandbox.storage import media_links
from app.sandbox.validation import read_body

routes = web.RouteTableDef()
ASSET_INCLUDES = ("creator", "project", "metadata")
MEDIA_INCLUDES = (
    "media_links.original",
    "media_links.thumbnail",
    "media_links.thumbnail_high_quality",
    "media_links.video_h264_180",
    "media_links.high_quality",
    "media_links.efficient",
    "media_links.scrub_sheet",
    "creator",
    "project",
    "metadata",
)


@routes.get("/v4/me")
@operation("users.show")
async def me(request: web.Request, ctx: OpContext) -> web.Response:
    return json_response({"data": serialize.profile(ctx.user)})


@routes.get("/v4/accounts")
@operation("accounts.index")
async def accounts(request: web.Request, ctx: OpContext) -> web.Response:
    items = list(ctx.sb.store.accounts.values())
    page, extra = paginate(request, items, 100)
    return json_response({"data": [serialize.account(a) for a in page], **extra})


@routes.get("/v4/accounts/{account_id}/workspaces")
@operation("workspaces.index")
async def workspaces(request: web.Request, ctx: OpContext) -> web.Response:
    account = ctx.account(request)
    inc = includes(request, ("creator",))
    items = [w for w in ctx.sb.store.workspaces.values() if w.account_id == account.id]
    page, extra = paginate(request, items, 100)
    creator = ctx.user if "creator" in inc else None
    return json_response({"data": [serialize.workspace(w, creator) for w in page], **extra})


def _workspace(ctx: OpContext, request: web.Request):  # type: ignore[no-untyped-def]
    account = ctx.account(request)
    ws = ctx.sb.store.workspaces.get(request.match_info["workspace_id"])
    if ws is None or ws.account_id != account.id:
        raise ApiError(404, "Workspace not found")
    return ws


@routes.get("/v4/accounts/{account_id}/workspaces/{workspace_id}/projects")
@operation("projects.index")
async def projects(request: web.Request, ctx: OpContext) -> web.Response:
    ws = _workspace(ctx, request)
    inc = includes(request, ("owner",))
    items = [p for p in ctx.sb.store.projects.values() if p.workspace_id == ws.id]
    page, extra = paginate(request, items, 100)
    owner = ctx.user if "owner" in inc else None
    return json_response({"data": [serialize.project(p, owner) for p in page], **extra})


@routes.post("/v4/accounts/{account_id}/workspaces/{workspace_id}/projects")
@operation("projects.create")
async def create_project(request: web.Request, ctx: OpContext) -> web.Response:
    ws = _workspace(ctx, request)
    data = await read_body(request, "projects.create")
    project = ctx.sb.store.create_project(ws, data["name"])
    project.restricted = bool(data.get("restricted", False))
    return json_response({"data": serialize.project(project, with_description=False)}, 201)


@routes.get("/v4/accounts/{account_id}/projects/{project_id}")
@operation("projects.show")
async def show_project(request: web.Request, ctx: OpContext) -> web.Response:
    account = ctx.account(request)
    inc = includes(request, ("owner",))
    project = ctx.sb.store.projects.get(request.match_info["project_id"])
    if project is None or project.account_id != account.id:
        raise ApiError(404, "Project not found")
    owner = ctx.user if "owner" in inc else None
    return json_response({"data": serialize.project(project, owner)})


@routes.get("/v4/accounts/{account_id}/folders/{folder_id}")
@operation("folders.show")
async def show_folder(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    inc = includes(request, ASSET_INCLUDES)
    out = serialize.include_extras(serialize.folder(folder), inc, ctx.sb.store, folder.project_id, ctx.user)
    return json_response({"data": out})


_CHILD_TYPES = {"file": File, "folder": Folder, "version_stack": VersionStack}


@routes.get("/v4/accounts/{account_id}/folders/{folder_id}/children")
@operation("folders.index")
async def children(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    inc = includes(request, MEDIA_INCLUDES)
    wanted = [t.strip() for t in request.query.get("type", "").split(",") if t.strip()]
    if any(t not in _CHILD_TYPES for t in wanted):
        raise ApiError(422, "type must be file, folder or version_stack", pointer="/type")
    items = ctx.sb.store.children(folder.id, ctx.sb.config.listing_lag)
    if wanted:
        items = [a for a in items if isinstance(a, tuple(_CHILD_TYPES[t] for t in wanted))]
    page, extra = paginate(request, items, 500)

    def links(f: File) -> dict[str, object] | None:
        return media_links(ctx.sb, f, inc)

    data = [
        serialize.include_extras(
            serialize.asset(a, ctx.sb.store, links), inc, ctx.sb.store, a.project_id, ctx.user
        )
        for a in page
    ]
    return json_response({"data": data, **extra})


@routes.get("/v4/accounts/{account_id}/folders/{folder_id}/folders")
@operation("folders.list")
async def list_folders(request: web.Request, ctx: OpContext) -> web.Response:
    folder = ctx.folder(request)
    inc = includes(request, ASSET_INCLUDES)
    items = [a for a in ctx.sb.store.children(folder.id, ctx.sb.config.listing_lag) if isinstance(a, Folder)]
    page, extra = paginate(request, items, 500)
    data = [
        serialize.include_extras(serialize.folder(f), inc, ctx.sb.store, f.project_id, ctx.user) for f in page
    ]
    return json_response({"data": data, **extra})


@routes.post("/v4/accounts/{account_id}/folders/{folder_id}/folders")
@operation("folders.create")
async def create_folder(request: web.Request, ctx: OpContext) -> web.Response:
    parent = ctx.folder(request)
    data = await read_body(request, "folders.create")
    name = data.get("name")
    if not name:
        raise ApiError(422, "name can't be blank", pointer="/data/name")
    project = ctx.sb.store.projects[parent.project_id]
    folder = ctx.sb.store.create_folder(project, parent.id, name)
    return json_response({"data": serialize.folder(folder)}, 201)
