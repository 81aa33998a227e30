"""Entities → the exact JSON shapes of the OpenAPI description (shared/frameio-v4-openapi.json)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.sandbox.model import (
    Account,
    Comment,
    File,
    Folder,
    Project,
    SandboxStore,
    User,
    VersionStack,
    Workspace,
)

VIEW_BASE = "https://next.frame.io.sandbox.invalid"


def profile(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email, "avatar_url": None}


def user_ref(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "avatar_url": None,
        "active": True,
        "adobe_user_id": user.adobe_user_id,
    }


def account(a: Account) -> dict[str, Any]:
    return {
        "id": a.id,
        "display_name": a.display_name,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "roles": ["owner"],
        "storage_limit": None,
        "storage_usage": 0,
        "adobe_id": None,
        "image": None,
    }


def workspace(w: Workspace, creator: User | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": w.id,
        "account_id": w.account_id,
        "name": w.name,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    }
    if creator is not None:
        out["creator"] = user_ref(creator)
    return out


def project(p: Project, owner: User | None = None, with_description: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "workspace_id": p.workspace_id,
        "root_folder_id": p.root_folder_id,
        "status": "active",
        "storage": 0,
        "restricted": p.restricted,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "view_url": f"{VIEW_BASE}/project/{p.id}",
        "adobe_id": None,
    }
    if with_description:
        out["description"] = p.description
    if owner is not None:
        out["owner"] = user_ref(owner)
    return out


def _asset_common(a: Folder | File | VersionStack, kind: str) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "type": kind,
        "parent_id": a.parent_id,
        "project_id": a.project_id,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "view_url": f"{VIEW_BASE}/project/{a.project_id}/view/{a.id}",
        "adobe_id": None,
    }


def folder(f: Folder) -> dict[str, Any]:
    out = _asset_common(f, "folder")
    out["cover_file_id"] = None
    return out


def file(f: File, media_links: dict[str, Any] | None = None) -> dict[str, Any]:
    out = _asset_common(f, "file")
    out.update(
        {
            "file_size": f.file_size,
            "media_type": f.media_type,
            "status": f.status,
            "adobe_version_id": None,
        }
    )
    if media_links is not None:
        out["media_links"] = media_links
    return out


MediaLinks = Callable[[File], dict[str, Any] | None]


def version_stack(v: VersionStack, store: SandboxStore, links: MediaLinks = lambda f: None) -> dict[str, Any]:
    out = _asset_common(v, "version_stack")
    head = store.files[v.file_ids[-1]]
    out["name"] = head.name  # named after its head, whatever renamed or removed a version
    out["head_version"] = file(head, links(head))
    return out


def asset(
    a: Folder | File | VersionStack, store: SandboxStore, links: MediaLinks = lambda f: None
) -> dict[str, Any]:
    if isinstance(a, Folder):
        return folder(a)
    if isinstance(a, File):
        return file(a, links(a))
    return version_stack(a, store, links)


def include_extras(
    out: dict[str, Any], includes: set[str], store: SandboxStore, project_id: str, creator: User
) -> dict[str, Any]:
    """Apply the ``include=`` expansions the asset endpoints document."""
    if "creator" in includes:
        out["creator"] = user_ref(creator)
    if "project" in includes:
        out["project"] = project(store.projects[project_id])
    if "metadata" in includes:
        out["metadata"] = []
    return out


def file_status(f: File) -> dict[str, Any]:
    complete = f.status in ("uploaded", "transcoded")
    return {
        "id": f.id,
        "filetype": f.media_type,
        "upload_complete": complete and not f.upload_failed,
        "upload_failed": f.upload_failed,
        "uploaded_at": f.uploaded_at,
        "upload_completed_at": f.uploaded_at if complete else None,
    }


FRAME_RATE = 24  # the sandbox's media all run at 24 fps: frames ↔ HH:MM:SS:FF


def timecode(frame: int, rate: int = FRAME_RATE) -> str:
    seconds, frames = divmod(frame, rate)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    return f"{hours:02d}:{mins:02d}:{secs:02d}:{frames:02d}"


def frame_of(timecode_text: str, rate: int = FRAME_RATE) -> int:
    hours, mins, secs, frames = (int(p) for p in timecode_text.split(":"))
    return ((hours * 60 + mins) * 60 + secs) * rate + frames


def comment(c: Comment, *, as_timecode: bool = False, owner: User | None = None,
            replies: bool = False) -> dict[str, Any]:  # fmt: skip
    stamp: Any = c.timestamp
    if isinstance(stamp, int) and as_timecode:
        stamp = timecode(stamp)
    out: dict[str, Any] = {
        "id": c.id,
        "file_id": c.file_id,
        "text": c.text,
        "anchor": c.anchor,
        "annotation": c.annotation,
        "attachments": [],
        "completed_at": c.completed_at,
        "completer_id": c.completer_id,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "duration": c.duration,
        "links": [{**link, "text": c.text[link["start_index"] : link["end_index"]]} for link in c.links],
        "mentions": [],
        "page": c.page,
        "text_edited_at": c.text_edited_at,
        "text_review_annotation": c.text_review_annotation,
        "timestamp": stamp,
    }
    if owner is not None:
        out["owner"] = user_ref(owner)
    if replies:
        out["replies"] = []
    return out
