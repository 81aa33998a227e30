"""The sandbox's world: users, accounts, workspaces, projects, folders, files, tokens.

Plain dataclasses in dicts, saved as one JSON document in the state directory (written
atomically, coalesced) so a restarted sandbox keeps everything, uploaded bytes included
(unless ``keep_bytes`` is off).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from app.sandbox.clock import Clock

_NS = uuid.UUID("5b1f6a38-8a44-4e39-9d0f-6a1f1c6e0a11")
#: The seed is dated this long before it is made: it is the world that existed before the
#: sandbox started, so a ``listing_lag`` never hides it.
SEED_AGE = 86400.0


def seeded_id(name: str) -> str:
    """Stable ids for seed data, so docs and tests can name them."""
    return str(uuid.uuid5(_NS, name))


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class User:
    id: str
    name: str
    email: str
    adobe_user_id: str


@dataclass
class Account:
    id: str
    display_name: str
    created_at: str
    updated_at: str


@dataclass
class Workspace:
    id: str
    account_id: str
    name: str
    created_at: str
    updated_at: str


@dataclass
class Project:
    id: str
    account_id: str
    workspace_id: str
    name: str
    root_folder_id: str
    created_at: str
    updated_at: str
    restricted: bool = False
    description: str | None = None


@dataclass
class Folder:
    id: str
    account_id: str
    project_id: str
    parent_id: str | None
    name: str
    created_at: str
    updated_at: str


@dataclass
class File:
    id: str
    account_id: str
    project_id: str
    parent_id: str
    name: str
    file_size: int
    media_type: str
    created_at: str
    updated_at: str
    status: str = "created"  # created -> uploaded -> transcoded
    part_sizes: list[int] = field(default_factory=list)
    parts_received: list[int] = field(default_factory=list)
    upload_failed: bool = False
    #: Frame.io could not process it: "transcoded" (processing over) with no playable rendition.
    transcode_failed: bool = False
    uploaded_at: str | None = None
    sha256: str | None = None
    source: str = "local"  # local | remote
    url_expires_at: float = 0.0
    #: Decided when the file is created (state saved before the option existed kept bytes).
    keep_bytes: bool = True


@dataclass
class VersionStack:
    id: str
    account_id: str
    project_id: str
    parent_id: str
    name: str
    file_ids: list[str]
    created_at: str
    updated_at: str


@dataclass
class Comment:
    id: str
    file_id: str
    text: str
    owner_id: str
    created_at: str
    updated_at: str
    timestamp: int | None = None  # a frame (timecodes are stored as frames, at FRAME_RATE)
    anchor: dict[str, float] | None = None
    annotation: str | None = None
    duration: int | None = None
    page: int | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    completed_at: str | None = None
    completer_id: str | None = None
    text_edited_at: str | None = None
    text_review_annotation: dict[str, Any] | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class IssuedToken:
    token: str
    kind: str  # access | refresh
    client_id: str
    user_id: str
    expires_at: float
    revoked: bool = False
    rotated: bool = False


T = TypeVar("T")


def _load(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


_TABLES: dict[str, type] = {
    "users": User,
    "accounts": Account,
    "workspaces": Workspace,
    "projects": Project,
    "folders": Folder,
    "files": File,
    "version_stacks": VersionStack,
    "comments": Comment,
    "codes": AuthCode,
    "tokens": IssuedToken,
}


class SandboxStore:
    """All sandbox state. Tables are ``dict[id, entity]`` in insertion (= creation) order."""

    def __init__(self, clock: Clock, state_dir: Path | None) -> None:
        self.clock = clock
        self.state_dir = state_dir
        self.users: dict[str, User] = {}
        self.accounts: dict[str, Account] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.projects: dict[str, Project] = {}
        self.folders: dict[str, Folder] = {}
        self.files: dict[str, File] = {}
        self.version_stacks: dict[str, VersionStack] = {}
        self.comments: dict[str, Comment] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.blob_dir.mkdir(exist_ok=True)
        if not self._restore():
            self.seed()

    # ---- persistence ----
    @property
    def state_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / "sandbox-state.json"

    @property
    def blob_dir(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "blobs"

    def _restore(self) -> bool:
        path = self.state_file
        if path is None or not path.exists():
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
        for table, cls in _TABLES.items():
            target: dict[str, Any] = getattr(self, table)
            for key, row in doc.get(table, {}).items():
                target[key] = _load(cls, row)
        self.clock.offset = float(doc.get("clock_offset", 0.0))
        return True

    def save_now(self) -> None:
        path = self.state_file
        if path is None:
            return
        doc: dict[str, Any] = {t: {k: asdict(v) for k, v in getattr(self, t).items()} for t in _TABLES}
        doc["clock_offset"] = self.clock.offset
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)

    def changed(self) -> None:
        """Coalesce saves: many changes within 50 ms cost one write."""
        if self.state_dir is None or self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save_now()
            return

        def flush() -> None:
            self._flush_handle = None
            self.save_now()

        self._flush_handle = loop.call_later(0.05, flush)

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.save_now()

    # ---- seed ----
    def clear(self) -> None:
        for table in _TABLES:
            getattr(self, table).clear()

    def seed(self) -> None:
        """One user, one account, one workspace, two projects with nested folders."""
        now = self.clock.iso(self.clock.now() - SEED_AGE)
        user = User(
            id=seeded_id("user"),
            name="Sandbox Editor",
            email="editor@sandbox.postflow.invalid",
            adobe_user_id="SANDBOXUSER0000000000001@AdobeID",
        )
        self.users[user.id] = user
        account = Account(seeded_id("account"), "Sandbox Post House", now, now)
        self.accounts[account.id] = account
        ws = Workspace(seeded_id("workspace"), account.id, "Sandbox Workspace", now, now)
        self.workspaces[ws.id] = ws
        tree: dict[str, dict[str, Any]] = {
            "Demo Project": {"Dailies": {"Day 01": {}, "Day 02": {}}, "VFX": {"Shots": {}}},
            "Client Review": {"Deliverables": {}},
        }
        for project_name, folders in tree.items():
            project = self.create_project(ws, project_name, seeded=True, created_at=now)
            self._seed_folders(project, project.root_folder_id, folders, project_name, now)

    def _seed_folders(
        self, project: Project, parent: str, tree: dict[str, Any], path: str, created_at: str
    ) -> None:
        for name, sub in tree.items():
            folder = self.create_folder(
                project, parent, name, fixed_id=seeded_id(f"{path}/{name}"), created_at=created_at
            )
            self._seed_folders(project, folder.id, sub, f"{path}/{name}", created_at)

    # ---- creation helpers shared by the API and the seed ----
    def create_project(
        self, ws: Workspace, name: str, seeded: bool = False, created_at: str | None = None
    ) -> Project:
        now = created_at or self.clock.iso()
        pid = seeded_id(f"project/{name}") if seeded else new_id()
        root = Folder(
            seeded_id(f"root/{name}") if seeded else new_id(),
            ws.account_id, pid, None, "root", now, now,
        )  # fmt: skip
        self.folders[root.id] = root
        project = Project(pid, ws.account_id, ws.id, name, root.id, now, now)
        self.projects[pid] = project
        self.changed()
        return project

    def create_folder(
        self,
        project: Project,
        parent_id: str,
        name: str,
        fixed_id: str | None = None,
        created_at: str | None = None,
    ) -> Folder:
        now = created_at or self.clock.iso()
        folder = Folder(fixed_id or new_id(), project.account_id, project.id, parent_id, name, now, now)
        self.folders[folder.id] = folder
        self.changed()
        return folder

    def children(self, folder_id: str, lag: float = 0.0) -> list[Folder | File | VersionStack]:
        """Direct children, oldest first. Files inside a version stack are not listed.

        With ``lag`` > 0, children created less than ``lag`` seconds ago (sandbox clock) are left
        out, as the real service's listings trail its creates.
        """
        stacked = {fid for vs in self.version_stacks.values() for fid in vs.file_ids}
        out: list[Folder | File | VersionStack] = []
        out += [f for f in self.folders.values() if f.parent_id == folder_id]
        out += [f for f in self.files.values() if f.parent_id == folder_id and f.id not in stacked]
        out += [v for v in self.version_stacks.values() if v.parent_id == folder_id]
        if lag > 0:
            cutoff = self.clock.now() - lag
            out = [a for a in out if _timestamp(a.created_at) <= cutoff]
        out.sort(key=lambda a: a.created_at)
        return out

    # ---- version stacks: a stacked file's parent is its stack; the stack's parent the folder ----
    def folder_of(self, f: File) -> str:
        """The folder a file is in, through its stack if it is stacked."""
        stack = self.version_stacks.get(f.parent_id)
        return stack.parent_id if stack is not None else f.parent_id

    def unstack(self, f: File) -> None:
        """Take a file out of the stack it is in (its parent is then set by the caller). The
        stack is named after its head, so losing the head renames it; an empty stack is gone."""
        stack = self.version_stacks.get(f.parent_id)
        if stack is None or f.id not in stack.file_ids:
            return
        stack.file_ids.remove(f.id)
        stack.updated_at = self.clock.iso()
        if not stack.file_ids:
            del self.version_stacks[stack.id]
            return
        stack.name = self.files[stack.file_ids[-1]].name

    def stack_onto(self, f: File, stack: VersionStack) -> None:
        """A file moved into a stack becomes its newest version (the head)."""
        self.unstack(f)
        stack.file_ids.append(f.id)
        stack.name = f.name
        stack.updated_at = f.updated_at = self.clock.iso()
        f.parent_id, f.project_id = stack.id, stack.project_id

    def folder_path(self, folder_id: str) -> str:
        parts: list[str] = []
        folder = self.folders.get(folder_id)
        while folder is not None and folder.parent_id is not None:
            parts.append(folder.name)
            folder = self.folders.get(folder.parent_id)
        project = self.projects.get(folder.project_id) if folder else None
        return "/".join([project.name if project else "?"] + parts[::-1])

    def blob_path(self, file_id: str, part: int) -> Path:
        return self.blob_dir / file_id / f"{part:05d}"

    @property
    def spool_dir(self) -> Path:
        """Parts that arrived before their predecessors, kept only until they are hashed."""
        assert self.state_dir is not None
        return self.state_dir / "spool"

    def spool_path(self, file_id: str, part: int) -> Path:
        return self.spool_dir / file_id / f"{part:05d}"


def _timestamp(iso: str) -> float:
    """Seconds since the epoch of an ``created_at`` the sandbox wrote (always UTC, ``Z``)."""
    return datetime.fromisoformat(iso).timestamp()
