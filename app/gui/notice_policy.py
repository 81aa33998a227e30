"""Which desktop notifications to show, and when: few, grouped, and never the same twice.

Deliveries are gathered for a few seconds and told per project ("12 files uploaded to Project
X"). Failures are grouped the same way. Problems that need the user (signed out, a folder
unreachable, the disk full, another account) are told once when they start; a retry that
fails the same way says nothing; once the problem clears, a new occurrence is told again.
Pure (no Qt, no clock of its own), so every rule is tested with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from app.core.events import AuthState, Snapshot, UpdateNotice
from app.core.jobs import JobState, JobView, WatchRoot
from app.engine.scheduler import TOUCHED_NOTE

GATHER_SECONDS = 3.0  # after the first delivery, wait this long for others to join it
GATHER_AT_MOST = 15.0  # a steady stream still gets a notification this often


class ClickTarget(Enum):
    WINDOW = "window"  # open the queue window
    LINK = "link"  # open ``Notice.link`` (the file on Frame.io)
    SIGN_IN = "sign_in"  # start the sign-in
    DOWNLOAD = "download"  # open ``Notice.link``, a release's download page


@dataclass(frozen=True)
class Notice:
    title: str
    message: str
    target: ClickTarget = ClickTarget.WINDOW
    link: str = ""
    problem: bool = False


SIGNED_OUT = Notice(
    "PostFlow is signed out",
    "Uploads wait until you sign in with Adobe again. Nothing is lost.",
    ClickTarget.SIGN_IN,
    problem=True,
)


@dataclass
class _Batch:
    started: float
    last: float
    names: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class NoticePolicy:
    def __init__(self) -> None:
        self._delivered: dict[str, _Batch] = {}  # by destination label
        self._failed: dict[str, _Batch] = {}
        self._told: dict[str, str] = {}  # problem key → the words told (until it clears)

    # ---- deliveries and failures ----
    def job_changed(self, view: JobView, root: WatchRoot | None, now: float) -> None:
        destination = _destination(root)
        if view.state is JobState.DONE and view.job.note != TOUCHED_NOTE:
            self._add(self._delivered, destination, view, now)
        elif view.state is JobState.FAILED:
            self._add(self._failed, destination, view, now)

    @staticmethod
    def _add(batches: dict[str, _Batch], destination: str, view: JobView, now: float) -> None:
        batch = batches.setdefault(destination, _Batch(started=now, last=now))
        batch.last = now
        batch.names.append(view.job.name)
        batch.links.append(view.link or "")
        if view.error is not None:
            batch.errors.append(view.error.message)

    def due_at(self) -> float | None:
        """When ``flush`` has something to tell (None: nothing gathered)."""
        times = [self._due(b) for b in (*self._delivered.values(), *self._failed.values())]
        return min(times) if times else None

    @staticmethod
    def _due(batch: _Batch) -> float:
        return min(batch.last + GATHER_SECONDS, batch.started + GATHER_AT_MOST)

    def flush(self, now: float) -> list[Notice]:
        notices: list[Notice] = []
        for destination, batch in list(self._delivered.items()):
            if self._due(batch) <= now:
                del self._delivered[destination]
                notices.append(_delivered_notice(destination, batch))
        for destination, batch in list(self._failed.items()):
            if self._due(batch) <= now:
                del self._failed[destination]
                notices.append(_failed_notice(destination, batch))
        return notices

    # ---- problems that need the user ----
    def expect_signed_out(self) -> None:
        """The user chose Sign out: that is not news to tell them."""
        self._told["auth"] = SIGNED_OUT.message

    def snapshot(self, snap: Snapshot) -> list[Notice]:
        current: dict[str, Notice] = {}
        if snap.auth is AuthState.SIGNED_OUT:
            current["auth"] = SIGNED_OUT
        if snap.account_problem:
            current["account"] = Notice("Uploads are on hold", snap.account_problem, problem=True)
        folders = {r.id: r.path for r in snap.roots}
        for health in snap.health:
            if health.ok or health.component in ("account", "network"):
                continue  # the account is told above; being offline heals by itself
            title = "PostFlow needs your attention"
            if health.component.startswith("watch:"):
                path = folders.get(health.component.partition(":")[2], "")
                title = f"Cannot watch {path.rstrip('/').rpartition('/')[2] or 'a folder'}"
            elif health.component == "disk":
                title = "PostFlow's disk is full"
            elif health.component == "discord":
                title = "The team's Discord channel hears nothing"
            current[health.component] = Notice(title, health.message or "", problem=True)
        notices = [n for key, n in current.items() if self._told.get(key) != n.message]
        self._told = {key: n.message for key, n in current.items()}
        return notices


def update_notice(update: UpdateNotice) -> Notice:
    words = update.notes.strip() or "Click to open its download page; PostFlow does not install it by itself."
    return Notice(
        f"PostFlow {update.version} is available", words[:300], ClickTarget.DOWNLOAD, update.download_url
    )


def _destination(root: WatchRoot | None) -> str:
    if root is None:
        return "Frame.io"
    return root.project + (f" / {root.folder}" if root.folder else "")


def _delivered_notice(destination: str, batch: _Batch) -> Notice:
    if len(batch.names) == 1:
        link = batch.links[0]
        target = ClickTarget.LINK if link else ClickTarget.WINDOW
        return Notice(f"Uploaded to {destination}", batch.names[0], target, link)
    shown = ", ".join(batch.names[:3]) + (f" and {len(batch.names) - 3} more" if len(batch.names) > 3 else "")
    return Notice(f"{len(batch.names)} files uploaded to {destination}", shown)


def _failed_notice(destination: str, batch: _Batch) -> Notice:
    reason = batch.errors[-1] if batch.errors else "See the queue window."
    if len(batch.names) == 1:
        return Notice(f"{batch.names[0]} was not uploaded", reason, problem=True)
    return Notice(f"{len(batch.names)} files were not uploaded to {destination}", reason, problem=True)
