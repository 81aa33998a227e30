"""The queue store on a real SQLite file: uniqueness, transitions, crash recovery, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.jobs import JobState
from app.engine.queue_store import MIGRATIONS, QueueStore


async def test_same_path_size_mtime_is_queued_once_new_content_is_new(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    first = await store.add("r", "A/clip.mov", "/w/A/clip.mov", 10, 111)
    assert first is not None and first.state is JobState.PENDING
    assert await store.add("r", "A/clip.mov", "/w/A/clip.mov", 10, 111) is None
    newer = await store.add("r", "A/clip.mov", "/w/A/clip.mov", 12, 222)
    assert newer is not None and newer.id != first.id
    await store.close()


async def test_progress_survives_a_crash_and_uploading_goes_back_to_pending(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = QueueStore(path)
    await store.open()
    job = await store.add("r", "a.mov", "/w/a.mov", 30, 1)
    assert job is not None
    parts = ((10, "u0"), (10, "u1"), (10, "u2"))
    await store.update(job.id, JobState.UPLOADING, remote_file_id="f-1", parts=parts,
                       create_started_at=5.0)  # fmt: skip
    await store.mark_part_done(job.id, 1, 10)
    await store.mark_part_done(job.id, 1, 10)  # idempotent
    # no close(): the process "dies"
    again = QueueStore(path)
    recovered = await again.open()
    assert [j.id for j in recovered] == [job.id]
    restored = await again.get(job.id)
    assert restored is not None and restored.state is JobState.PENDING
    assert (
        restored.remote_file_id == "f-1"
        and restored.parts_done == frozenset({1})
        and restored.bytes_done == 10
    )
    assert [url for _, url in restored.parts] == ["u0", "u1", "u2"]
    await again.close()
    await store.close()


async def test_schema_is_versioned_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = QueueStore(path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer PostFlow"):
        await QueueStore(path).open()


async def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "s.sqlite3")
    await store.open()
    job = await store.add("r", "a.mov", "/w/a.mov", 1, 1)
    assert job is not None
    with pytest.raises(ValueError):
        await store.update(job.id, bogus=1)
    await store.close()
