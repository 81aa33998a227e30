"""The app's own view of Frame.io resources (only the fields PostFlow uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Me:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Account:
    id: str
    name: str


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    root_folder_id: str
    view_url: str = ""


@dataclass(frozen=True)
class Folder:
    id: str
    name: str
    parent_id: str | None


@dataclass(frozen=True)
class RemoteFile:
    id: str
    name: str
    status: str  # created | uploaded | transcoded
    file_size: int
    media_type: str
    parent_id: str | None
    view_url: str = ""


@dataclass(frozen=True)
class UploadPart:
    index: int
    offset: int
    size: int
    url: str


@dataclass(frozen=True)
class LocalUpload:
    file: RemoteFile
    parts: tuple[UploadPart, ...]


@dataclass(frozen=True)
class UploadStatus:
    complete: bool
    failed: bool


def _str(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return value if isinstance(value, str) else ""


def me_from(doc: dict[str, Any]) -> Me:
    return Me(_str(doc, "id"), _str(doc, "name"), _str(doc, "email"))


def account_from(doc: dict[str, Any]) -> Account:
    return Account(_str(doc, "id"), _str(doc, "display_name"))


def workspace_from(doc: dict[str, Any]) -> Workspace:
    return Workspace(_str(doc, "id"), _str(doc, "name"))


def project_from(doc: dict[str, Any]) -> Project:
    return Project(_str(doc, "id"), _str(doc, "name"), _str(doc, "root_folder_id"), _str(doc, "view_url"))


def folder_from(doc: dict[str, Any]) -> Folder:
    return Folder(_str(doc, "id"), _str(doc, "name"), doc.get("parent_id"))


def file_from(doc: dict[str, Any]) -> RemoteFile:
    size = doc.get("file_size")
    return RemoteFile(
        id=_str(doc, "id"),
        name=_str(doc, "name"),
        status=_str(doc, "status") or "created",
        file_size=size if isinstance(size, int) else 0,
        media_type=_str(doc, "media_type") or "application/octet-stream",
        parent_id=doc.get("parent_id"),
        view_url=_str(doc, "view_url"),
    )


def local_upload_from(doc: dict[str, Any]) -> LocalUpload:
    parts: list[UploadPart] = []
    offset = 0
    for index, entry in enumerate(doc.get("upload_urls") or []):
        size = int(entry["size"])
        parts.append(UploadPart(index, offset, size, str(entry["url"])))
        offset += size
    return LocalUpload(file_from(doc), tuple(parts))


def status_from(doc: dict[str, Any]) -> UploadStatus:
    return UploadStatus(bool(doc.get("upload_complete")), bool(doc.get("upload_failed")))
