"""Typed, frozen events and the small bus that carries them from the engine to its clients.

The GUI bridges these to Qt signals; the CLI prints them; tests await them. Subscribers are
called synchronously on the engine's event loop and must not block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.core.jobs import ErrorInfo, JobPhase, JobView, WatchRoot

log = logging.getLogger(__name__)


class AuthState(Enum):
    SIGNED_OUT = "signed_out"
    SIGNED_IN = "signed_in"


@dataclass(frozen=True)
class AuthStateChanged:
    state: AuthState
    user_name: str | None = None
    user_email: str | None = None
    account_id: str | None = None
    reason: str | None = None  # why we are signed out, in words for the user


Event = Any  # any frozen dataclass defined in app.core.events
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken subscriber must not stop the engine
                log.exception("event subscriber failed on %s", type(event).__name__)


# ---- upload engine ----


@dataclass(frozen=True)
class JobAdded:
    job_id: int
    rel_path: str
    root_id: str
    size: int


@dataclass(frozen=True)
class JobStateChanged:
    """A job moved: its state, phase (creating / sending / verifying…), attempts, next retry,
    error or link changed. Not sent for byte progress (that is ``JobProgress``)."""

    view: JobView

    @property
    def job_id(self) -> int:
        return self.view.job.id

    @property
    def rel_path(self) -> str:
        return self.view.job.rel_path

    @property
    def root_id(self) -> str:
        return self.view.job.root_id

    @property
    def state(self) -> str:  # a JobState value
        return self.view.job.state.value

    @property
    def phase(self) -> JobPhase | None:
        return self.view.phase

    @property
    def attempts(self) -> int:
        return self.view.job.attempts

    @property
    def next_retry_at(self) -> float | None:
        return self.view.next_retry_at

    @property
    def error(self) -> ErrorInfo | None:
        return self.view.error

    @property
    def link(self) -> str | None:
        return self.view.link

    @property
    def remote_file_id(self) -> str | None:
        return self.view.job.remote_file_id


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    bytes_done: int
    size: int
    bytes_per_second: float


@dataclass(frozen=True)
class HealthChanged:
    """A check changed: ``component`` is "watch:<root id>", "signin", "network", "clock",
    "disk", "disk_space", "discord", "account"; ``action`` says what the user can do about it."""

    component: str
    ok: bool
    message: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class SettlingFile:
    """A file seen but not stable yet: its render (or its LucidLink sync) is still going."""

    root_id: str
    rel_path: str
    size: int
    stable_at: float  # wall-clock seconds at which it counts as finished if nothing changes
    held: str = ""  # why it waits even though unchanged (its render looks unfinished), if it does


@dataclass(frozen=True)
class SettlingChanged:
    """The set of files waiting for their render to finish changed (after a scan)."""

    files: tuple[SettlingFile, ...]


@dataclass(frozen=True)
class RootsChanged:
    """Watch roots were added, edited, moved or removed (already saved when persisted)."""

    roots: tuple[WatchRoot, ...]


@dataclass(frozen=True)
class SettingsChanged:
    """Live settings were applied (and saved); ``names`` are Settings attribute names."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Health:
    """One health check as it stands: red or green, in words, with what to do and since when."""

    component: str
    ok: bool
    message: str | None
    action: str | None = None
    label: str = ""
    since: float = 0.0  # wall-clock seconds of the last change of state or message


@dataclass(frozen=True)
class Snapshot:
    """Everything the tray icon and the window's header need, in one cheap call."""

    counts: dict[str, int]  # JobState value → jobs (entries removed from the history not counted)
    bytes_left: int  # still to send, over pending, uploading and paused jobs
    bytes_total: int  # size of those jobs
    bytes_per_second: float  # all uploads together, smoothed
    eta_seconds: float | None  # None: nothing moving, or no speed measured yet
    uploading: int
    settling: int  # files seen, not stable yet
    paused: bool
    waiting_for_sign_in: bool
    account_problem: str | None
    auth: AuthState
    user_email: str | None
    account_id: str | None
    health: tuple[Health, ...]  # every component that reported, ok or not
    roots: tuple[WatchRoot, ...]
    bandwidth_note: str | None = None  # "Limited to 20 MB/s by the schedule until 19:00"
    update: UpdateNotice | None = None  # a newer PostFlow on the release feed (shown in the menu)
    update_unannounced: bool = False  # ...that the user has not been told of yet

    @property
    def offline(self) -> bool:
        """Frame.io or its storage cannot be reached at all (not one file's trouble)."""
        return any(h.component == "network" and not h.ok for h in self.health)

    @property
    def needs_attention(self) -> bool:
        return (
            bool(self.counts.get("failed"))
            or self.auth is AuthState.SIGNED_OUT
            or any(not h.ok for h in self.health)
        )


@dataclass(frozen=True)
class UpdateNotice:
    """A newer release on the feed; PostFlow only tells, never installs."""

    version: str
    notes: str
    download_url: str
    sha256: str


@dataclass(frozen=True)
class UpdateAvailable:
    """Published once per new version (remembered across restarts): tell the user once."""

    notice: UpdateNotice


@dataclass(frozen=True)
class SnapshotChanged:
    """Published (coalesced, at most a few times a second) whenever the snapshot moved."""

    snapshot: Snapshot


@dataclass(frozen=True)
class AttemptEnded:
    """One upload attempt ended (for metrics and logs): ``outcome`` is "delivered", "retry",
    "failed", "cancelled" or "halted"; ``error_class`` names the kind of trouble, if any."""

    job_id: int
    outcome: str
    seconds: float
    size: int
    error_class: str | None = None


@dataclass(frozen=True)
class FileReviewed:
    """Frame.io finished preparing a delivered file: ``ready`` (transcoded, proxies present: a
    reviewer can play it) or not (Frame.io could not process it; ``message`` says so)."""

    job_id: int
    root_id: str
    rel_path: str
    size: int
    link: str | None
    ready: bool
    message: str | None = None
    waited_seconds: float = 0.0


@dataclass(frozen=True)
class EngineStateChanged:
    running: bool
    paused: bool
    waiting_for_sign_in: bool
