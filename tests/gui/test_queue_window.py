"""The queue table: 100,000 rows of history from a real SQLite queue, paged as the user
scrolls, kept current by engine events; and the window's row actions on a real engine."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gui_waits import until
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView
from running_tray import tray_app

from app.core.events import JobProgress, JobStateChanged
from app.core.jobs import Job, JobPhase, JobState, JobView, WatchRoot
from app.engine.queue_store import HistoryPage, HistoryQuery, QueueStore
from app.gui.queue_model import COLUMNS, PAGE, PROGRESS_ROLE, Column, QueueFilter, QueueModel

ROWS = 100_000


class StoreSource:
    """The three engine calls the model makes, answered by a real queue database."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self.queries: list[HistoryQuery] = []

    async def history(self, query: HistoryQuery | None = None) -> HistoryPage:
        self.queries.append(query or HistoryQuery())
        return await self.store.history(query or HistoryQuery())

    async def job(self, job_id: int) -> JobView | None:
        job = await self.store.get(job_id)
        return None if job is None else JobView(job)

    def view(self, job: Job) -> JobView:
        return JobView(job)


def fill(store: QueueStore, count: int) -> None:
    db = store._db
    assert db is not None
    now = time.time()
    rows = [
        ("r1", f"SHOW/SC{i % 500:03}/shot_{i:06d}.mov", f"/fs/SHOW/shot_{i:06d}.mov", 10**6 + i, i,
         (JobState.FAILED if i % 50 == 0 else JobState.DONE).value, 1, 10**6 + i, now, now)
        for i in range(count)
    ]  # fmt: skip
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, attempts, bytes_done, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")


async def test_a_hundred_thousand_rows_page_in_as_the_user_scrolls(tmp_path: Path, qapp: Any) -> None:
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    try:
        fill(store, ROWS)
        source = StoreSource(store)
        model = QueueModel(source)
        pending: list[Any] = []
        model.bind(lambda action: pending.append(action))
        model.set_roots((WatchRoot("r1", "/fs", "Project X"),))
        await model.reload(QueueFilter.ALL)
        assert (model.rowCount(), model.total) == (PAGE, ROWS)
        first = model.row(0)
        assert first is not None and first.view is not None and first.view.job.name == "shot_099999.mov"
        assert model.data(model.index(0, COLUMNS.index(Column.DESTINATION))) == "Project X / SHOW/SC499"

        view = QTableView()
        view.setModel(model)
        view.resize(800, 400)
        view.show()
        for _ in range(5):  # the view asks for more when scrolled to the end; each is one page
            view.scrollToBottom()
            qapp.processEvents()
            assert len(pending) == 1, "one page at a time, never a flood"
            await pending.pop()()
        assert model.rowCount() == 6 * PAGE
        ids = [model.row(i).job_id for i in range(model.rowCount())]  # type: ignore[union-attr]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        assert all(q.limit == PAGE for q in source.queries)

        # A new job lands on top, its progress repaints only its live cells.
        added = await store.add("r1", "SHOW/new.mov", "/fs/SHOW/new.mov", 4000, 1)
        assert added.job is not None
        job = await store.update(added.job.id, JobState.UPLOADING)
        model.upsert(JobView(job, JobPhase.SENDING))
        assert model.row(0).job_id == job.id and model.total == ROWS + 1  # type: ignore[union-attr]
        changed: list[tuple[int, int, int]] = []
        model.dataChanged.connect(lambda a, b, _r=(): changed.append((a.row(), a.column(), b.column())))
        model.on_progress(JobProgress(job.id, 1000, 4000, 2_000_000))
        live = [COLUMNS.index(c) for c in (Column.PROGRESS, Column.SPEED, Column.ETA)]
        assert changed == [(0, min(live), max(live))]
        assert model.data(model.index(0, COLUMNS.index(Column.PROGRESS)), PROGRESS_ROLE) == 25
        assert model.data(model.index(0, COLUMNS.index(Column.STATE))) == "Sending"
        assert model.data(model.index(0, COLUMNS.index(Column.SPEED))) == "2 MB/s"

        # Finished while "Active" is shown: it leaves the view.
        await model.reload(QueueFilter.ACTIVE)
        assert model.rowCount() == 1
        model.on_job_changed(JobStateChanged(JobView(await store.update(job.id, JobState.DONE))))
        assert model.rowCount() == 0

        # Search and "Needs attention" are the engine's queries, paged the same way.
        await model.reload(QueueFilter.ATTENTION, "shot_0999")
        assert model.total == 2 and {model.row(i).view.job.name for i in range(2)} == {  # type: ignore[union-attr]
            "shot_099900.mov", "shot_099950.mov",
        }  # fmt: skip
        view.close()
    finally:
        await store.close()


async def test_a_row_shows_what_its_name_says_and_where_it_was_routed(tmp_path: Path, qapp: Any) -> None:
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    try:
        added = await store.add("r1", "Day1/SHOW_SQ01_SH010_comp_v002.mov", "/fs/x.mov", 10, 1)
        assert added.job is not None
        model = QueueModel(StoreSource(store))
        model.set_roots((WatchRoot("r1", "/fs", "Project X", "Incoming"),))
        fields = (
            ("show", "SHOW"),
            ("sequence", "SQ01"),
            ("shot", "SH010"),
            ("task", "comp"),
            ("version", "v002"),
        )
        done = await store.update(added.job.id, JobState.DONE, note="Stacked on v001.")
        await model.reload(QueueFilter.ALL)
        model.upsert(JobView(done, name_fields=fields, folder="Day1/SH010"))
        said = model.data(model.index(0, COLUMNS.index(Column.NAME_SAYS)))
        assert said == "show SHOW · sequence SQ01 · shot SH010 · task comp · v002"
        assert (
            model.data(model.index(0, COLUMNS.index(Column.DESTINATION)))
            == "Project X / Incoming / Day1/SH010"
        )
        assert model.data(model.index(0, COLUMNS.index(Column.STATE))) == "Uploaded (Stacked on v001.)"
    finally:
        await store.close()


def drop(folder: Path, name: str, size: int = 128 * 1024) -> None:
    tmp = folder / f".{name}"
    tmp.write_bytes(os.urandom(size))
    tmp.rename(folder / name)


def select(app: Any, name: str) -> None:
    model = app.window.model
    for number in range(model.rowCount()):
        row = model.row(number)
        if row is not None and row.rel_path == name:
            app.window.table.selectRow(number)
            return
    raise AssertionError(f"{name} is not shown")


async def test_row_actions_retry_cancel_and_remove(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        window = app.window
        app.open_window()
        app.engine.scheduler.retry_base = 0.05
        sandbox.control(
            "/_sandbox/faults", {"api": {"rate": 1.0, "kinds": ["400"], "only": "files.create_local_upload"}}
        )
        drop(watch_dir, "refused.mov")
        window.filter_buttons[QueueFilter.ATTENTION].click()
        await until(lambda: window.model.rowCount() == 1, "the failed file under Needs attention", 60)
        error = window.model.data(window.model.index(0, COLUMNS.index(Column.ERROR)))
        assert error.startswith("Frame.io refused the request: "), error
        select(app, "refused.mov")
        assert window.retry_button.isEnabled() and not window.remove_button.isEnabled()

        sandbox.control("/_sandbox/faults", {"api": {"rate": 0.0, "only": ""}})
        window.retry_button.click()
        await until(lambda: window.model.rowCount() == 0, "the retried file leaving Needs attention", 60)
        window.filter_buttons[QueueFilter.DONE].click()
        await until(lambda: window.model.rowCount() == 1, "the delivered file under Done", 60)
        select(app, "refused.mov")
        assert window.open_button.isEnabled()  # it has its Frame.io page now
        window.remove_button.click()
        await until(lambda: window.model.rowCount() == 0, "removed from the list")
        assert (await app.engine.history(HistoryQuery(states=(JobState.DONE,)))).total == 0
        assert [f["name"] for f in sandbox.files()] == ["refused.mov"]  # delivered once, still

        # Cancel a file while it waits (paused engine), from the Active view.
        await app.engine.pause_all()
        drop(watch_dir, "not-this-one.mov")
        window.filter_buttons[QueueFilter.ACTIVE].click()
        await until(lambda: window.model.rowCount() == 1 and window.model.row(0).view, "queued", 60)
        select(app, "not-this-one.mov")
        window.cancel_button.click()
        await until(lambda: window.model.rowCount() == 0, "cancelled, out of Active")
        await app.engine.resume_all()
        (job,) = [j for j in await app.engine.jobs() if j.rel_path == "not-this-one.mov"]
        assert job.state is JobState.CANCELLED and job.cancelled_by_user


async def test_search_filters_as_you_type(sandbox: Any, watch_dir: Path, tray_env: None, qtbot: Any) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        window = app.window
        for name in ("A001_C001.mov", "A001_C002.mov", "B002_C001.mov"):
            drop(watch_dir, name)
        window.filter_buttons[QueueFilter.ALL].click()
        await until(lambda: window.model.total == 3, "three files listed", 60)
        window.search.setText("b002")
        await until(lambda: window.model.total == 1, "one match")
        assert window.model.data(window.model.index(0, 0)) == "B002_C001.mov"
        window.search.clear()
        await until(lambda: window.model.total == 3, "all again")
        assert window.model.headerData(0, Qt.Orientation.Horizontal) == "File"


async def test_upload_next_puts_the_chosen_file_first(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        window = app.window
        app.open_window()
        app.engine.scheduler.max_concurrent = 1
        await app.engine.pause_all()
        for name in ("a_first.mov", "b_second.mov", "c_urgent.mov"):
            drop(watch_dir, name)
        window.filter_buttons[QueueFilter.ACTIVE].click()

        def queued() -> bool:
            return window.model.rowCount() == 3 and all(window.model.row(i).view for i in range(3))

        await until(queued, "three queued", 60)
        select(app, "c_urgent.mov")
        assert window.next_button.isEnabled()
        window.next_button.click()

        async def put_first() -> bool:
            return any(j.rel_path == "c_urgent.mov" and j.priority > 0 for j in await app.engine.jobs())

        await until(put_first, "put first")
        started: list[str] = []

        def on_event(event: Any) -> None:
            if isinstance(event, JobStateChanged) and event.view.job.state is JobState.UPLOADING:
                started.append(event.view.job.rel_path)

        app.engine.bus.subscribe(on_event)
        await app.engine.resume_all()
        await until(lambda: started, "an upload started", 60)
        assert started[0] == "c_urgent.mov"  # the newest of the three, started before the oldest
