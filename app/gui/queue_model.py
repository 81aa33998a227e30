"""The queue and history table: a page-at-a-time model fed by engine events, never by a timer.

Rows are kept newest first (by job id), so an event finds its row by bisection and a new job
lands on top. History comes from the engine a page at a time through ``canFetchMore`` /
``fetchMore`` as the user scrolls, so 100,000 delivered files cost one page of memory and
one indexed query per page. Files still rendering (not yet jobs) are listed above the jobs in
the views that show active work.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from app.core.events import JobAdded, JobProgress, JobStateChanged, SettlingChanged, SettlingFile
from app.core.jobs import ACTIVE_STATES, Job, JobPhase, JobState, JobView, WatchRoot
from app.core.units import format_bytes, format_duration, format_speed
from app.engine.queue_store import HistoryPage, HistoryQuery

Index = QModelIndex | QPersistentModelIndex
PAGE = 200


class QueueFilter(Enum):
    ACTIVE = "Active"
    ATTENTION = "Needs attention"
    DONE = "Done"
    ALL = "All"

    @property
    def states(self) -> tuple[JobState, ...]:
        return {
            QueueFilter.ACTIVE: ACTIVE_STATES,
            QueueFilter.ATTENTION: (JobState.FAILED,),
            QueueFilter.DONE: (JobState.DONE, JobState.CANCELLED),
            QueueFilter.ALL: (),
        }[self]

    @property
    def shows_settling(self) -> bool:
        return self in (QueueFilter.ACTIVE, QueueFilter.ALL)


class Column(Enum):
    FILE = "File"
    DESTINATION = "Destination"
    SIZE = "Size"
    PROGRESS = "Progress"
    SPEED = "Speed"
    ETA = "Time left"
    STATE = "State"
    NAME_SAYS = "Name says"  # after the state: what an editor reads first stays in view
    ERROR = "Last error"


COLUMNS = tuple(Column)
LIVE_COLUMNS = (Column.PROGRESS, Column.SPEED, Column.ETA)
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1  # 0..100, or -1 for no bar
ROW_ROLE = Qt.ItemDataRole.UserRole + 2  # the Row itself


class HistorySource(Protocol):
    async def history(self, query: HistoryQuery | None = None) -> HistoryPage: ...
    async def job(self, job_id: int) -> JobView | None: ...
    def view(self, job: Job) -> JobView: ...


@dataclass(frozen=True)
class Row:
    """A job (``view``) or a file still rendering (``settling``)."""

    view: JobView | None = None
    settling: SettlingFile | None = None

    @property
    def job_id(self) -> int | None:
        return self.view.id if self.view else None

    @property
    def rel_path(self) -> str:
        if self.view:
            return self.view.job.rel_path
        assert self.settling is not None
        return self.settling.rel_path

    @property
    def root_id(self) -> str:
        if self.view:
            return self.view.job.root_id
        assert self.settling is not None
        return self.settling.root_id


PHASE_TEXT = {
    JobPhase.QUEUED: "Queued",
    JobPhase.WAITING: "Waiting",
    JobPhase.CREATING: "Creating on Frame.io",
    JobPhase.SENDING: "Sending",
    JobPhase.VERIFYING: "Verifying on Frame.io",
}
STATE_TEXT = {
    JobState.PENDING: "Queued",
    JobState.UPLOADING: "Uploading",
    JobState.PAUSED: "Paused",
    JobState.DONE: "Uploaded",
    JobState.FAILED: "Failed",
    JobState.CANCELLED: "Cancelled",
}


def state_text(view: JobView, now: float | None = None) -> str:
    if view.phase is JobPhase.RETRY_WAIT and view.next_retry_at is not None:
        wait = view.next_retry_at - (now or time.time())
        return f"Retrying in {format_duration(wait)}" if wait > 0 else "Retrying"
    if view.phase is not None and view.state in (JobState.PENDING, JobState.UPLOADING):
        return PHASE_TEXT.get(view.phase, STATE_TEXT[view.state])
    if view.state is JobState.DONE and view.job.note:
        return f"Uploaded ({view.job.note})"
    return STATE_TEXT[view.state]


class QueueModel(QAbstractTableModel):
    total_changed = Signal(int)

    def __init__(self, source: HistorySource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._rows: list[Row] = []  # jobs only, newest (highest id) first
        self._settling: list[Row] = []
        self._all_settling: tuple[SettlingFile, ...] = ()
        self._roots: dict[str, WatchRoot] = {}
        self.filter = QueueFilter.ACTIVE
        self.text = ""
        self.total = 0
        self._next_before: int | None = None
        self._generation = 0  # a reload in progress makes older pages stale
        self._fetching = False
        self._spawn: Any = None

    # ---- loading ----
    def bind(self, spawn: Any) -> None:
        """``spawn(coroutine_function)`` runs engine calls (the bridge's ``run``)."""
        self._spawn = spawn

    def set_roots(self, roots: tuple[WatchRoot, ...]) -> None:
        self._roots = {r.id: r for r in roots}
        if self.rowCount():
            self._cells_changed(0, self.rowCount() - 1, [Column.DESTINATION])

    def _query(self, before: int | None) -> HistoryQuery:
        return HistoryQuery(states=self.filter.states, text=self.text, before_id=before, limit=PAGE)

    async def reload(self, filter: QueueFilter | None = None, text: str | None = None) -> None:
        """Show another filter or search: the first page replaces what is shown."""
        if filter is not None:
            self.filter = filter
        if text is not None:
            self.text = text.strip()
        self._generation += 1
        generation = self._generation
        self._next_before = None  # no "more" of the old view while the new one loads
        self._fetching = True
        try:
            page = await self._source.history(self._query(None))
        finally:
            if generation == self._generation:
                self._fetching = False
        if generation != self._generation:
            return
        self.beginResetModel()
        self._rows = [Row(self._source.view(job)) for job in page.jobs]
        self._settling = self._settling_rows()
        self._next_before = page.next_before_id
        self._fetching = False
        self.endResetModel()
        self._set_total(page.total)

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008, N802 - Qt's API
        return not parent.isValid() and self._next_before is not None and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008, N802 - Qt's API
        if not self.canFetchMore(parent) or self._spawn is None:
            return
        self._fetching = True
        self._spawn(self.fetch_next_page)

    async def fetch_next_page(self) -> None:
        generation, before = self._generation, self._next_before
        if before is None:
            self._fetching = False
            return
        try:
            page = await self._source.history(self._query(before))
        finally:
            if generation == self._generation:
                self._fetching = False
        if generation != self._generation:
            return
        # Rows shown so far all have higher ids than the cursor (events only insert above the
        # last loaded row), so a page never repeats one; the guard covers a reordering store.
        last = self._rows[-1].job_id if self._rows else None
        fresh = [Row(self._source.view(job)) for job in page.jobs if last is None or job.id < last]
        first = len(self._settling) + len(self._rows)
        if fresh:
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self._rows.extend(fresh)
            self.endInsertRows()
        self._next_before = page.next_before_id
        self._set_total(page.total)

    def _set_total(self, total: int) -> None:
        self.total = total
        self.total_changed.emit(total)

    # ---- events ----
    def _matches(self, view: JobView) -> bool:
        states = self.filter.states
        if states and view.state not in states:
            return False
        return not self.text or self.text.casefold() in view.job.rel_path.casefold()

    def _position(self, job_id: int) -> int:
        """Where a job is (or would go) in ``_rows``: ids descend, so search on their negation."""
        return bisect.bisect_left(self._rows, -job_id, key=lambda row: -(row.job_id or 0))

    def _find(self, job_id: int) -> int | None:
        at = self._position(job_id)
        return at if at < len(self._rows) and self._rows[at].job_id == job_id else None

    def on_job_added(self, event: JobAdded) -> None:
        if self._spawn is not None:
            self._spawn(lambda: self._fetch_added(event.job_id))

    async def _fetch_added(self, job_id: int) -> None:
        view = await self._source.job(job_id)
        if view is not None:
            self.upsert(view)

    def on_job_changed(self, event: JobStateChanged) -> None:
        self.upsert(event.view)

    def upsert(self, view: JobView) -> None:
        at = self._find(view.id)
        offset = len(self._settling)
        if at is not None:
            if self._matches(view):
                self._rows[at] = Row(view)
                self.dataChanged.emit(self.index(offset + at, 0), self.index(offset + at, len(COLUMNS) - 1))
            else:
                self.beginRemoveRows(QModelIndex(), offset + at, offset + at)
                del self._rows[at]
                self.endRemoveRows()
                self._set_total(max(0, self.total - 1))
            return
        if not self._matches(view):
            return
        at = self._position(view.id)
        if at == len(self._rows) and self._next_before is not None:
            return  # older than what is loaded: its page brings it when scrolled to
        self.beginInsertRows(QModelIndex(), offset + at, offset + at)
        self._rows.insert(at, Row(view))
        self.endInsertRows()
        self._set_total(self.total + 1)

    def on_progress(self, event: JobProgress) -> None:
        at = self._find(event.job_id)
        if at is None:
            return
        row = self._rows[at]
        assert row.view is not None
        job = replace(row.view.job, bytes_done=event.bytes_done)
        self._rows[at] = Row(replace(row.view, job=job, bytes_per_second=event.bytes_per_second))
        self._cells_changed(len(self._settling) + at, len(self._settling) + at, LIVE_COLUMNS)

    def on_settling(self, event: SettlingChanged) -> None:
        self._all_settling = event.files
        wanted = self._settling_rows()
        if [r.settling for r in wanted] == [r.settling for r in self._settling]:
            return
        if self._settling:
            self.beginRemoveRows(QModelIndex(), 0, len(self._settling) - 1)
            self._settling = []
            self.endRemoveRows()
        if wanted:
            self.beginInsertRows(QModelIndex(), 0, len(wanted) - 1)
            self._settling = wanted
            self.endInsertRows()

    def _settling_rows(self) -> list[Row]:
        if not self.filter.shows_settling:
            return []
        needle = self.text.casefold()
        return [Row(settling=f) for f in self._all_settling if needle in f.rel_path.casefold()]

    def _cells_changed(self, first: int, last: int, columns: tuple[Column, ...] | list[Column]) -> None:
        lo, hi = min(COLUMNS.index(c) for c in columns), max(COLUMNS.index(c) for c in columns)
        self.dataChanged.emit(self.index(first, lo), self.index(last, hi))

    # ---- Qt model ----
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's API
        return 0 if parent.isValid() else len(self._settling) + len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt's API
        return 0 if parent.isValid() else len(COLUMNS)

    def row(self, number: int) -> Row | None:
        if number < 0:
            return None
        if number < len(self._settling):
            return self._settling[number]
        number -= len(self._settling)
        return self._rows[number] if number < len(self._rows) else None

    def row_of(self, job_id: int) -> int | None:
        at = self._find(job_id)
        return None if at is None else len(self._settling) + at

    def headerData(  # noqa: N802 - Qt's API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].value
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row(index.row()) if index.isValid() else None
        if row is None:
            return None
        column = COLUMNS[index.column()]
        if role == ROW_ROLE:
            return row
        if role == PROGRESS_ROLE:
            return self._percent(row)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole and column in (Column.ERROR, Column.FILE, Column.STATE):
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.SIZE, Column.SPEED, Column.ETA):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _percent(row: Row) -> int:
        if row.view is None or row.view.state in (JobState.CANCELLED,):
            return -1
        job = row.view.job
        if row.view.state is JobState.DONE:
            return 100
        return int(job.bytes_done * 100 / job.size) if job.size else 0

    def _destination(self, row: Row) -> str:
        root = self._roots.get(row.root_id)
        routed = row.view.folder if row.view is not None else None
        folder = routed if routed is not None else row.rel_path.rpartition("/")[0]
        if root is None:
            return folder or "—"
        return " / ".join(p for p in (root.project, root.folder, folder) if p)

    def _text(self, row: Row, column: Column) -> str:
        if row.settling is not None:
            return {
                Column.FILE: row.settling.rel_path.rpartition("/")[2],
                Column.DESTINATION: self._destination(row),
                Column.SIZE: format_bytes(row.settling.size),
                Column.STATE: _held_words(row.settling.held) or "Waiting for the render to finish",
            }.get(column, "")
        view = row.view
        assert view is not None
        job = view.job
        uploading = view.state is JobState.UPLOADING
        if column is Column.FILE:
            return job.name
        if column is Column.NAME_SAYS:
            said = (value if name == "version" else f"{name} {value}" for name, value in view.name_fields)
            return " · ".join(said)
        if column is Column.DESTINATION:
            return self._destination(row)
        if column is Column.SIZE:
            return format_bytes(job.size)
        if column is Column.PROGRESS:
            percent = self._percent(row)
            return "" if percent < 0 else f"{percent} %"
        if column is Column.SPEED:
            return format_speed(view.bytes_per_second) if uploading and view.bytes_per_second > 0 else ""
        if column is Column.ETA:
            if not uploading or view.bytes_per_second <= 0:
                return ""
            return format_duration((job.size - job.bytes_done) / view.bytes_per_second)
        if column is Column.STATE:
            return state_text(view)
        if column is Column.ERROR:
            error = view.error
            return "" if error is None else f"{error.title}: {error.message}"
        return ""

    def _tooltip(self, row: Row, column: Column) -> str:
        if column is Column.FILE:
            return row.view.job.abs_path if row.view else row.rel_path
        return self._text(row, column)


def _held_words(held: str) -> str:
    """Why an unchanged file still waits, as the queue says it ("Waiting: no movie index…")."""
    return f"Waiting: {held}" if held else ""
