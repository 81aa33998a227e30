"""The queue store on a real SQLite file: which versions queue, transitions, crash recovery,
migrations, O(1) part records, private files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import time
from pathlib import Path

import pytest

from app.core.jobs import JobState
from app.engine.queue_store import _V1, MIGRATIONS, QueueStore


async def test_same_path_size_mtime_is_queued_once_new_content_is_new(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    first = (await store.add("r", "A/clip.mov", "/w/A/clip.mov", 10, 111)).job
    assert first is not None and first.state is JobState.PENDING
    assert (await store.add("r", "A/clip.mov", "/w/A/clip.mov", 10, 111)).job is None
    added = await store.add("r", "A/clip.mov", "/w/A/clip.mov", 12, 222)
    assert added.job is not None and added.job.id != first.id
    assert [j.id for j in added.replaced] == [first.id]  # the waiting old version is replaced
    assert (await store.get(first.id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    await store.close()


async def test_only_a_delivered_or_refused_version_blocks_it_from_coming_back(tmp_path: Path) -> None:
    """Defect 1: a version cancelled because it was moved away must queue again when it is back."""
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    moved = (await store.add("r", "a.mov", "/w/a.mov", 10, 1)).job
    assert moved is not None
    await store.update(moved.id, JobState.CANCELLED, last_error="moved or deleted")
    back = (await store.add("r", "a.mov", "/w/a.mov", 10, 1)).job
    assert back is not None and back.id != moved.id
    await store.update(back.id, JobState.DONE)
    assert (await store.add("r", "a.mov", "/w/a.mov", 10, 1)).job is None  # delivered: never again
    refused = (await store.add("r", "b.mov", "/w/b.mov", 10, 1)).job
    assert refused is not None
    await store.update(refused.id, JobState.CANCELLED, cancelled_by_user=True)
    assert (await store.add("r", "b.mov", "/w/b.mov", 10, 1)).job is None  # the user said no
    await store.close()


async def test_progress_survives_a_crash_and_uploading_goes_back_to_pending(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = QueueStore(path)
    await store.open()
    job = (await store.add("r", "a.mov", "/w/a.mov", 30, 1)).job
    assert job is not None
    await store.update(job.id, JobState.UPLOADING, create_started_at=5.0, folder_id="fo", account_id="ac")
    await store.record_upload(job.id, "f-1", "video/quicktime", ((10, "u0"), (10, "u1"), (10, "u2")), None)
    await store.mark_part_done(job.id, 1)
    await store.mark_part_done(job.id, 1)  # idempotent
    # no close(): the process "dies"
    again = QueueStore(path)
    recovered = await again.open()
    assert [j.id for j in recovered] == [job.id]
    restored = await again.get(job.id)
    assert restored is not None and restored.state is JobState.PENDING
    assert restored.remote_file_id == "f-1" and restored.bytes_done == 10
    up = await again.upload_state(job.id)
    assert up.parts_done == frozenset({1}) and [url for _, url in up.parts] == ["u0", "u1", "u2"]
    assert (up.folder_id, up.account_id, up.create_started_at) == ("fo", "ac", 5.0)
    await again.close()
    await store.close()


async def test_jobs_carry_no_uploader_internals_and_done_forgets_part_urls(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    job = (await store.add("r", "a.mov", "/w/a.mov", 20, 1)).job
    assert job is not None
    await store.record_upload(
        job.id, "f-1", "video/mp4", ((10, "https://s/u0?sig"), (10, "https://s/u1?sig")), 9.0
    )
    listed = (await store.jobs())[0]
    assert "https://" not in repr(listed) and not hasattr(listed, "parts")
    await store.update(job.id, JobState.DONE)
    up = await store.upload_state(job.id)
    assert up.parts == () and up.urls_expire_at is None and up.remote_file_id == "f-1"
    await store.close()


async def test_recording_a_part_touches_one_row(tmp_path: Path) -> None:
    """Defect 10: no re-read and re-decode of the whole part list per finished part."""
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    job = (await store.add("r", "big.mov", "/w/big.mov", 10_000 * 7, 1)).job
    assert job is not None
    await store.record_upload(job.id, "f", "video/mp4", tuple((7, f"u{i}" * 50) for i in range(10_000)), None)
    statements: list[str] = []
    assert store._db is not None
    store._db.set_trace_callback(statements.append)
    await store.mark_part_done(job.id, 9_999)
    store._db.set_trace_callback(None)
    assert not any("parts" in s and "SELECT" in s and "idx" not in s for s in statements), statements
    assert len([s for s in statements if s.startswith(("UPDATE", "SELECT"))]) <= 3
    assert (await store.get(job.id)).bytes_done == 7  # type: ignore[union-attr]
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


async def test_a_version_1_database_is_migrated_with_its_progress(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_V1)
    now = time.time()
    db.execute(
        "INSERT INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, remote_file_id, parts, "
        "parts_done, bytes_done, created_at, updated_at) "
        "VALUES ('r', 'a.mov', '/w/a.mov', 20, 1, 'pending', 'f-1', ?, ?, 10, ?, ?)",
        (json.dumps([[10, "u0"], [10, "u1"]]), json.dumps([0]), now, now),
    )
    db.execute(
        "INSERT INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, created_at, updated_at) "
        "VALUES ('r', 'b.mov', '/w/b.mov', 5, 1, 'cancelled', ?, ?)",
        (now, now),
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = QueueStore(path)
    await store.open()
    up = await store.upload_state(1)
    assert up.remote_file_id == "f-1" and up.parts == ((10, "u0"), (10, "u1")) and up.parts_done == {0}
    assert (await store.add("r", "b.mov", "/w/b.mov", 5, 1)).job is not None  # cancelled no longer blocks
    await store.close()


async def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "s.sqlite3")
    await store.open()
    job = (await store.add("r", "a.mov", "/w/a.mov", 1, 1)).job
    assert job is not None
    with pytest.raises(ValueError):
        await store.update(job.id, bogus=1)
    await store.close()


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
async def test_the_state_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "data" / "state.sqlite3")
    await store.open()
    await store.add("r", "secret project/a.mov", "/w/a.mov", 1, 1)
    await store.close()
    for name in os.listdir(tmp_path / "data"):
        mode = stat.S_IMODE(os.stat(tmp_path / "data" / name).st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700


async def test_macos_gets_fullfsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On macOS fsync stops at the drive's cache; F_FULLFSYNC reaches the platter."""
    monkeypatch.setattr(sys, "platform", "darwin")
    store = QueueStore(tmp_path / "state.sqlite3")
    await store.open()
    assert store._db is not None and store._db.execute("PRAGMA fullfsync").fetchone()[0] == 1
    await store.close()
