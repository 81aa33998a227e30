"""Jobs and watch roots: the engine's own vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class JobState(Enum):
    PENDING = "pending"  # waiting for a free upload slot
    UPLOADING = "uploading"  # creating, sending parts, verifying
    PAUSED = "paused"  # held by the user
    DONE = "done"  # verified on Frame.io
    FAILED = "failed"  # needs attention; retry puts it back to PENDING
    CANCELLED = "cancelled"  # the user gave up on it


ACTIVE_STATES = (JobState.PENDING, JobState.UPLOADING, JobState.PAUSED)


@dataclass(frozen=True)
class WatchRoot:
    """A watched folder and where its files go on Frame.io."""

    id: str
    path: str
    project: str  # project name or id
    folder: str = ""  # optional sub-folder path inside the project, "a/b"
    workspace: str = ""  # workspace name or id; empty: search every workspace
    account_id: str = ""  # empty: the signed-in account


@dataclass(frozen=True)
class Job:
    id: int
    root_id: str
    rel_path: str  # relative to the root, with "/" separators
    abs_path: str
    size: int
    mtime_ns: int
    state: JobState
    attempts: int = 0
    last_error: str | None = None
    remote_file_id: str | None = None
    media_type: str | None = None
    create_started_at: float | None = None  # set before local_upload, to find a lost placeholder
    parts: tuple[tuple[int, str], ...] = ()  # (size, url) as the server split the file
    parts_done: frozenset[int] = field(default_factory=frozenset)
    urls_expire_at: float | None = None
    bytes_done: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]

    @property
    def rel_dir(self) -> str:
        return self.rel_path.rsplit("/", 1)[0] if "/" in self.rel_path else ""
