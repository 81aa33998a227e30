"""Jobs and watch roots: the engine's own vocabulary.

A ``Job`` is what every client may see (queue, history, status). How far its upload got on
Frame.io's storage (part URLs, the create marker) is ``UploadState``, which only the uploader
and the clean-up of unfinished uploads read: presigned URLs are not for the GUI or the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class JobState(Enum):
    PENDING = "pending"  # waiting for a free upload slot
    UPLOADING = "uploading"  # creating, sending parts, verifying
    PAUSED = "paused"  # held by the user
    DONE = "done"  # verified on Frame.io (or its content was already there)
    FAILED = "failed"  # needs attention; retry puts it back to PENDING
    CANCELLED = "cancelled"  # given up: by the user, or the file moved, changed or was replaced


ACTIVE_STATES = (JobState.PENDING, JobState.UPLOADING, JobState.PAUSED)


class JobPhase(Enum):
    """Where a job stands inside its state, for the queue window's "sending" / "verifying"."""

    QUEUED = "queued"  # pending: waiting for a free slot
    RETRY_WAIT = "retry_wait"  # pending: a retry is due at ``next_retry_at``
    WAITING = "waiting"  # pending: for the volume, the sign-in or the account (see the error)
    CREATING = "creating"  # uploading: resolving the folder, creating the file on Frame.io
    SENDING = "sending"  # uploading: parts going to storage
    VERIFYING = "verifying"  # uploading: waiting for Frame.io to assemble and confirm


@dataclass(frozen=True)
class ErrorInfo:
    """An error as a person reads it: the same fields ``PostFlowError`` carries."""

    title: str
    message: str
    retryable: bool


@dataclass(frozen=True)
class WatchRoot:
    """A watched folder and where its files go on Frame.io.

    ``id`` comes from the folder's resolved path alone: however the path or the destination
    is written, the same folder keeps the same history (and is never uploaded twice)."""

    id: str
    path: str  # resolved, absolute
    project: str  # project name or id
    folder: str = ""  # optional sub-folder path inside the project, "a/b"
    workspace: str = ""  # workspace name or id; empty: search every workspace
    account_id: str = ""  # empty: the signed-in account
    legacy_ids: tuple[str, ...] = ()  # ids older PostFlow versions gave this root
    done_marker: str = ""  # e.g. ".done": a file uploads only once "<name>.done" is beside it
    naming: tuple[str, ...] = ("versioned",)  # naming rules (presets or patterns), tried in order
    stack_versions: bool = True  # a new version of a delivered render joins its version stack
    comment: str = ""  # a comment posted on each delivered file, from this template
    route_by: str = ""  # a naming field (e.g. "shot"): files go into a sub-folder named by it
    upload_mode: str = "push"  # push, pull (Frame.io fetches it through the tunnel) or auto
    priority: int = 0  # folders with a higher priority upload first


@dataclass(frozen=True)
class Job:
    id: int
    root_id: str
    rel_path: str  # relative to the root, with "/" separators
    abs_path: str
    size: int
    mtime_ns: int
    state: JobState
    attempts: int = 0  # upload attempts started
    last_error: str | None = None
    remote_file_id: str | None = None
    bytes_done: int = 0
    sha256: str | None = None  # of the bytes delivered
    note: str | None = None  # e.g. "touched, content unchanged"
    cancelled_by_user: bool = False  # the user said no to this version: not queued again on its own
    refusals: int = 0  # attempts refused in a way that repeats (bounded by max_attempts)
    error_title: str | None = None
    error_retryable: bool | None = None
    remote_url: str | None = None  # the file's page on Frame.io, once created
    version: int | None = None  # the version its name says (naming rules), once delivered
    stack_state: str | None = None  # waiting, stacked, alone, failed (None: not a versioned render)
    priority: int = 0  # above 0: put first by the user ("Upload next"), the latest highest
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def error(self) -> ErrorInfo | None:
        if not self.last_error:
            return None
        retryable = (
            self.state is not JobState.FAILED if self.error_retryable is None else self.error_retryable
        )
        title = self.error_title or ("Upload failed" if self.state is JobState.FAILED else "Not uploaded")
        return ErrorInfo(title, self.last_error, retryable)

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]

    @property
    def rel_dir(self) -> str:
        return self.rel_path.rsplit("/", 1)[0] if "/" in self.rel_path else ""


@dataclass(frozen=True)
class JobView:
    """A job as clients see it, with what only the running engine knows: the phase, the time
    of the next retry, the live speed. Events, the snapshot and history all carry this."""

    job: Job
    phase: JobPhase | None = None  # None once the job is finished
    next_retry_at: float | None = None  # wall-clock seconds
    bytes_per_second: float = 0.0
    name_fields: tuple[tuple[str, str], ...] = ()  # what its name says (naming rules), version last
    folder: str | None = None  # where it goes under the root's destination (None: its own folder)

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def state(self) -> JobState:
        return self.job.state

    @property
    def error(self) -> ErrorInfo | None:
        return self.job.error

    @property
    def link(self) -> str | None:
        return self.job.remote_url


@dataclass(frozen=True)
class UploadState:
    """A job's upload on Frame.io's side; kept across restarts so an upload resumes."""

    job_id: int
    remote_file_id: str | None = None
    account_id: str | None = None  # where the placeholder lives
    folder_id: str | None = None  # where it was (or is being) created
    media_type: str | None = None
    create_started_at: float | None = None  # set before local_upload, to find a lost placeholder
    parts: tuple[tuple[int, str], ...] = ()  # (size, url) as the server split the file
    parts_done: frozenset[int] = field(default_factory=frozenset)
    urls_expire_at: float | None = None
