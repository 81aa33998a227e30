"""The engine API the tray app uses, through EngineService against the sandbox (no GUI)."""

from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, wait_for, write
from tests_auth_helpers import sandbox_settings

from app.core.errors import ConfigError
from app.core.events import (
    AuthState,
    JobStateChanged,
    RootsChanged,
    SettingsChanged,
    SettlingChanged,
    SnapshotChanged,
)
from app.core.jobs import Job, JobPhase, JobState
from app.core.settings import load_settings, make_root
from app.engine.queue_store import HistoryQuery
from app.engine.service import NO_LONGER_WATCHED, EngineService


async def job_named(engine: EngineService, name: str, state: JobState | None = None) -> Job | None:
    for job in await engine.jobs():
        if job.name == name and (state is None or job.state is state):
            return job
    return None


def changes_of(harness: Harness, job_id: int) -> list[JobStateChanged]:
    return [e for e in harness.events if isinstance(e, JobStateChanged) and e.job_id == job_id]


async def persistent_engine(harness: Harness, *roots: Any) -> EngineService:
    """An engine whose run-time changes are saved to the (test's own) config file."""
    settings = sandbox_settings(harness.sandbox, **harness.env)
    if harness.auth is None:
        from tests_auth_helpers import signed_in_service

        harness.auth = await signed_in_service(harness.sandbox, harness.bus)
    engine = harness.engine = EngineService(
        settings, harness.auth.auth, harness.auth.frameio, harness.bus, list(roots), persist=True
    )
    await engine.start()
    return engine


def snapshots(harness: Harness) -> list[Any]:
    return [e.snapshot for e in harness.events if isinstance(e, SnapshotChanged)]


def config_of(engine: EngineService) -> dict[str, Any]:
    path = engine.settings.paths.config_file
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# ---- job events ----
async def test_job_events_carry_phase_attempts_link_and_end_with_no_phase(harness: Harness) -> None:
    write(harness.watch / "A001.mov", os.urandom(600_000))
    engine = await harness.start()
    job = await wait_for(lambda: job_named(engine, "A001.mov", JobState.DONE), what="delivered")
    events = changes_of(harness, job.id)
    phases = [e.phase for e in events if e.state == "uploading"]
    assert phases[0] is JobPhase.CREATING
    assert JobPhase.SENDING in phases and JobPhase.VERIFYING in phases
    assert phases.index(JobPhase.SENDING) < phases.index(JobPhase.VERIFYING)
    last = events[-1]
    assert last.state == "done" and last.phase is None and last.attempts == 1 and last.error is None
    assert last.link and last.remote_file_id and last.remote_file_id in last.link
    view = await engine.job(job.id)
    assert view is not None and view.link == last.link and view.phase is None


async def test_a_retry_shows_its_time_and_the_error_display_fields(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"fail_next_uploads": 1000})
    write(harness.watch / "never.mov", os.urandom(300_000))
    engine = await harness.start()
    engine.scheduler.retry_base = 120.0
    before = time.time()

    RETRY = JobPhase.RETRY_WAIT

    def retry_event() -> JobStateChanged | None:
        return next(
            (e for e in harness.events if isinstance(e, JobStateChanged) and e.phase is RETRY),
            None,
        )

    event = await wait_for(retry_event, what="a retry scheduled")
    assert event.state == "pending" and event.attempts == 1
    assert event.next_retry_at is not None and before + 110 < event.next_retry_at < time.time() + 130
    assert event.error is not None and event.error.retryable and event.error.title and event.error.message
    assert "did not accept" in event.error.message
    view = await engine.job(event.job_id)
    assert view is not None and view.phase is RETRY and view.next_retry_at == event.next_retry_at


async def test_a_final_failure_is_not_retryable(harness: Harness) -> None:
    write(harness.watch / "x.mov", os.urandom(1000))
    engine = await harness.start(project="No Such Project")
    job = await wait_for(lambda: job_named(engine, "x.mov", JobState.FAILED), what="failed")
    assert job.error is not None and not job.error.retryable
    assert job.error.title == "Not found" or job.error.title
    assert "No Such Project" in job.error.message


# ---- snapshot ----
async def test_the_snapshot_counts_and_is_kept_current_by_events(harness: Harness) -> None:
    engine = await harness.start()
    await engine.pause_all()
    for i in range(3):
        write(harness.watch / f"s{i}.mov", os.urandom(10_000 + i))
    await wait_for(lambda: _count(engine, JobState.PENDING, 3), what="queued")
    snap = await engine.snapshot()
    assert snap.counts["pending"] == 3 and snap.bytes_left == 30_003 and snap.bytes_total == 30_003
    assert snap.paused and snap.auth is AuthState.SIGNED_IN and snap.user_email
    assert snap.eta_seconds is None and snap.uploading == 0
    assert [r.path for r in snap.roots] == [str(harness.watch.resolve())]
    await wait_for(
        lambda: any(
            isinstance(e, SnapshotChanged) and e.snapshot.counts["pending"] == 3 for e in harness.events
        ),
        what="a snapshot event",
    )
    await engine.resume_all()
    await wait_for(lambda: _count(engine, JobState.DONE, 3), what="delivered")
    await wait_for(
        lambda: [
            e.snapshot
            for e in harness.events
            if isinstance(e, SnapshotChanged) and e.snapshot.counts["done"] == 3
        ],
        what="the snapshot caught up",
    )
    final = await engine.snapshot()
    assert final.bytes_left == 0 and not final.paused and not final.needs_attention
    assert any(h.component.startswith("watch:") and h.ok for h in final.health)


# ---- pause ----
async def test_a_global_pause_outlives_a_restart(harness: Harness) -> None:
    engine = await harness.start()
    await engine.pause_all()
    engine = await harness.restart()
    assert engine.paused and (await engine.snapshot()).paused
    write(harness.watch / "held.mov", os.urandom(5000))
    await wait_for(lambda: job_named(engine, "held.mov", JobState.PENDING), what="queued")
    await engine.scheduler.start_what_fits()
    assert not engine.scheduler.running and harness.remote_files() == []
    await engine.resume_all()
    engine = await harness.restart()
    assert not engine.paused
    await wait_for(lambda: job_named(engine, "held.mov", JobState.DONE), what="delivered after resume")


# ---- history ----
async def test_history_pages_filters_and_removes_finished_entries(harness: Harness) -> None:
    engine = await harness.start()
    await engine.pause_all()  # these rows are made up: nothing must try to upload them
    store = engine.store
    root = next(iter((await engine.snapshot()).roots)).id
    for i in range(25):
        added = await store.add(root, f"day{i % 2}/clip_{i:02}.mov", f"/x/clip_{i:02}.mov", 100 + i, i)
        assert added.job is not None
        if i % 5 == 0:
            await store.update(added.job.id, JobState.DONE)
    await store.add("other-root", "elsewhere.mov", "/y/elsewhere.mov", 1, 1)
    await engine.pause_all()

    first = await engine.history(HistoryQuery(root_id=root, limit=10))
    assert first.total == 25 and len(first.jobs) == 10 and first.next_before_id is not None
    ids = [j.id for j in first.jobs]
    assert ids == sorted(ids, reverse=True)
    second = await engine.history(HistoryQuery(root_id=root, limit=10, before_id=first.next_before_id))
    third = await engine.history(HistoryQuery(root_id=root, limit=10, before_id=second.next_before_id))
    assert len(third.jobs) == 5 and third.next_before_id is None
    assert len({j.id for page in (first, second, third) for j in page.jobs}) == 25

    done = await engine.history(HistoryQuery(states=(JobState.DONE,)))
    assert done.total == 5 and all(j.state is JobState.DONE for j in done.jobs)
    text = await engine.history(HistoryQuery(text="CLIP_1"))  # case-insensitive, in the path
    assert text.total == 10 and all("clip_1" in j.rel_path for j in text.jobs)
    assert (await engine.history(HistoryQuery(text="%"))).total == 0  # LIKE wildcards are literal
    assert (await engine.history(HistoryQuery(text="day1/"))).total == 12

    removed = await engine.remove_finished([j.id for j in done.jobs[:2]] + [ids[1]])  # ids[1] is pending
    assert removed == 2
    assert (await engine.history(HistoryQuery(states=(JobState.DONE,)))).total == 3
    assert await engine.clear_finished() == 3
    assert (await engine.snapshot()).counts["done"] == 0  # cleared entries no longer count
    assert (await engine.history(HistoryQuery(root_id=root))).total == 20
    # A delivered version removed from the history is still never queued again.
    again = await store.add(root, "day0/clip_00.mov", "/x/clip_00.mov", 100, 0)
    assert again.job is None


# ---- watch folders at run time ----
async def test_roots_are_added_edited_and_removed_at_run_time_and_saved(
    harness: Harness, tmp_path: Path
) -> None:
    engine = await persistent_engine(harness)
    second = tmp_path / "second"
    second.mkdir()
    write(second / "old_render.mov", os.urandom(2000))
    added = await engine.add_root(make_root(str(second), "Demo Project", "Second"))
    assert any(isinstance(e, RootsChanged) and added in e.roots for e in harness.events)
    saved = config_of(engine)["watch"]["roots"]
    assert saved == [{"path": str(second.resolve()), "project": "Demo Project", "folder": "Second"}]
    assert load_settings(paths=engine.settings.paths, environ={}).watch_roots == (added,)
    await wait_for(lambda: job_named(engine, "old_render.mov", JobState.DONE), what="existing file uploaded")

    edited = await engine.edit_root(added.id, project="Client Review", folder="")
    assert config_of(engine)["watch"]["roots"] == [
        {"path": str(second.resolve()), "project": "Client Review"}
    ]
    write(second / "new_render.mov", os.urandom(3000))
    await wait_for(
        lambda: job_named(engine, "new_render.mov", JobState.DONE), what="uploaded to the new place"
    )
    delivered = harness.delivered()
    assert any(p.startswith("Client Review/") and p.endswith("new_render.mov") for p in delivered), delivered
    assert edited.id == added.id

    await engine.pause_all()
    write(second / "waiting.mov", os.urandom(3000))
    await wait_for(lambda: job_named(engine, "waiting.mov", JobState.PENDING), what="queued")
    ended = await engine.remove_root(added.id)
    assert [j.name for j in ended] == ["waiting.mov"] and ended[0].last_error == NO_LONGER_WATCHED
    waiting = await job_named(engine, "waiting.mov")
    assert (
        waiting is not None
        and waiting.state is JobState.CANCELLED
        and waiting.last_error == NO_LONGER_WATCHED
    )
    assert "roots" not in config_of(engine).get("watch", {})
    assert not (await engine.snapshot()).roots
    await engine.resume_all()
    write(second / "after_removal.mov", os.urandom(3000))
    await engine.scan_now()
    assert await job_named(engine, "after_removal.mov") is None  # no longer watched


async def test_a_root_added_for_new_files_only_leaves_the_existing_ones(
    harness: Harness, tmp_path: Path
) -> None:
    engine = await harness.start()
    folder = tmp_path / "archive"
    write(folder / "old" / "already_there.mov", os.urandom(2000))
    changed = write(folder / "changed_later.mov", os.urandom(2000))
    root = await engine.add_root(make_root(str(folder), "Demo Project", "Archive"), upload_existing=False)
    write(folder / "brand_new.mov", os.urandom(2000))
    await wait_for(lambda: job_named(engine, "brand_new.mov", JobState.DONE), what="new file uploaded")
    changed.write_bytes(os.urandom(2100))  # a new version of an existing file is new work
    await wait_for(
        lambda: job_named(engine, "changed_later.mov", JobState.DONE), what="changed file uploaded"
    )
    await engine.stop()  # a restart with the root in the config: what was there stays left alone
    harness.engine = None
    engine = await persistent_engine(harness, make_root(str(harness.watch), "Demo Project"), root)
    await engine.scan_now()
    await engine.scan_now()
    assert await job_named(engine, "already_there.mov") is None


async def test_bad_roots_are_refused_with_a_plain_reason(harness: Harness, tmp_path: Path) -> None:
    engine = await harness.start()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cases = {
        "no such folder": make_root(str(tmp_path / "missing"), "Demo Project"),
        "is a file": make_root(str(write(tmp_path / "file.mov", b"x")), "Demo Project"),
        "twice": make_root(str(harness.watch / "inner"), "Demo Project"),
        "already watched": make_root(str(harness.watch), "Demo Project"),
        "was not found": make_root(str(elsewhere), "No Such Project"),
    }
    (harness.watch / "inner").mkdir()
    for expected, root in cases.items():
        with pytest.raises(ConfigError) as info:
            await engine.add_root(root)
        assert expected in info.value.message, (expected, info.value.message)
    assert len((await engine.snapshot()).roots) == 1
    with pytest.raises(ConfigError):
        await engine.remove_root("nope")
    with pytest.raises(ConfigError):
        await engine.edit_root(next(iter((await engine.snapshot()).roots)).id, project="No Such Project")


# ---- live settings ----
async def test_live_settings_apply_without_a_restart_and_are_saved(harness: Harness) -> None:
    engine = await persistent_engine(harness, make_root(str(harness.watch), "Demo Project", "Incoming"))
    write(harness.watch / "notes.txt", b"not media")
    await engine.scan_now()
    await engine.scan_now()
    assert await job_named(engine, "notes.txt") is None
    await engine.update_settings(
        {"extensions": [".txt"], "max_concurrent_files": 3, "bandwidth_limit": 0, "stable_seconds": 0.1}
    )
    assert any(isinstance(e, SettingsChanged) and "extensions" in e.names for e in harness.events)
    await wait_for(lambda: job_named(engine, "notes.txt", JobState.DONE), what="a .txt uploads now")
    assert engine.scheduler.max_concurrent == 3
    saved = config_of(engine)
    assert saved["watch"]["extensions"] == [".txt"] and saved["upload"]["max_concurrent_files"] == 3
    with pytest.raises(ConfigError) as info:
        await engine.update_settings({"max_concurrent_files": 0, "stable_seconds": 5})
    assert "max_concurrent_files" in info.value.message
    assert engine.settings.stable_seconds == 0.1  # nothing changed
    with pytest.raises(ConfigError):
        await engine.update_settings({"api_url": "http://elsewhere"})


# ---- destination picker ----
async def test_browsing_accounts_workspaces_projects_folders_page_by_page(harness: Harness) -> None:
    engine = await harness.start()
    accounts = await engine.browser.accounts()
    assert len(accounts.items) == 1 and accounts.items[0].kind == "account"
    account = accounts.items[0].id
    workspaces = await engine.browser.workspaces(account)
    projects = await engine.browser.projects(account, workspaces.items[0].id, page_size=1)
    assert len(projects.items) == 1 and projects.next_cursor
    rest = await engine.browser.projects(account, workspaces.items[0].id, cursor=projects.next_cursor)
    names = {p.name for p in (*projects.items, *rest.items)}
    assert {"Demo Project", "Client Review"} <= names and rest.next_cursor is None
    demo = next(p for p in (*projects.items, *rest.items) if p.name == "Demo Project")
    assert demo.folder_id
    folders = await engine.browser.folders(account, demo.folder_id, page_size=1)
    more = await engine.browser.folders(account, demo.folder_id, cursor=folders.next_cursor, page_size=1)
    assert {f.name for f in (*folders.items, *more.items)} >= {"Dailies"} and folders.next_cursor


# ---- settling ----
async def test_files_still_being_written_are_announced_as_settling(harness: Harness) -> None:
    harness.env["POSTFLOW_STABLE_SECONDS"] = "600"
    engine = await harness.start()
    write(harness.watch / "render.mov", os.urandom(1000))
    event = await wait_for(
        lambda: next((e for e in harness.events if isinstance(e, SettlingChanged) and e.files), None),
        what="settling event",
    )
    (file,) = event.files
    assert file.rel_path == "render.mov" and file.size == 1000 and file.stable_at > time.time() + 500
    assert engine.settling_files() == event.files and (await engine.snapshot()).settling == 1
    (harness.watch / "render.mov").unlink()
    await wait_for(lambda: engine.settling_files() == (), what="gone again")


async def _count(engine: EngineService, state: JobState, n: int) -> bool:
    return sum(j.state is state for j in await engine.jobs()) == n
