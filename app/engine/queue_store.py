"""The persistent queue and history: a state machine in SQLite (WAL).

Every change is written before it is announced. All SQL runs on one dedicated thread (SQLite
connections belong to one thread, and the event loop must never wait on disk). Numbered
migrations in ``MIGRATIONS`` move old databases forward; opening recovers from a crash by
putting jobs that were uploading back to pending, with their Frame.io file id and finished
parts kept so the upload resumes instead of restarting.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from app.core.jobs import Job, JobState

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs and their upload progress
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        root_id TEXT NOT NULL,
        rel_path TEXT NOT NULL,
        abs_path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        remote_file_id TEXT,
        media_type TEXT,
        create_started_at REAL,
        parts TEXT NOT NULL DEFAULT '[]',
        parts_done TEXT NOT NULL DEFAULT '[]',
        urls_expire_at REAL,
        bytes_done INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (root_id, rel_path, size, mtime_ns)
    );
    CREATE INDEX jobs_by_state ON jobs (state, id);
    """,
)

_FIELDS = (
    "attempts", "last_error", "remote_file_id", "media_type", "create_started_at", "parts", "parts_done",
    "urls_expire_at", "bytes_done", "abs_path",
)  # fmt: skip


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        root_id=row["root_id"],
        rel_path=row["rel_path"],
        abs_path=row["abs_path"],
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        state=JobState(row["state"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        remote_file_id=row["remote_file_id"],
        media_type=row["media_type"],
        create_started_at=row["create_started_at"],
        parts=tuple((int(s), str(u)) for s, u in json.loads(row["parts"])),
        parts_done=frozenset(json.loads(row["parts_done"])),
        urls_expire_at=row["urls_expire_at"],
        bytes_done=row["bytes_done"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _encode(name: str, value: Any) -> Any:
    if name == "parts":
        return json.dumps([list(p) for p in value])
    if name == "parts_done":
        return json.dumps(sorted(value))
    return value


class QueueStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-store")
        self._db: sqlite3.Connection | None = None

    # ---- plumbing ----
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "QueueStore is not open"
            with self._db:  # one transaction per call
                return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> list[Job]:
        """Open (creating and migrating as needed) and recover; returns the recovered jobs."""

        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a power cut must not undo "create started"
            db.execute("PRAGMA busy_timeout=5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} was written by a newer PostFlow (schema {version}); update PostFlow."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                db.execute("BEGIN")
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            db.isolation_level = "DEFERRED"
            self._db = db

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        return await self._run(self._recover)

    @staticmethod
    def _recover(db: sqlite3.Connection) -> list[Job]:
        rows = db.execute("SELECT * FROM jobs WHERE state = ?", (JobState.UPLOADING.value,)).fetchall()
        db.execute(
            "UPDATE jobs SET state = ?, updated_at = ? WHERE state = ?",
            (JobState.PENDING.value, time.time(), JobState.UPLOADING.value),
        )
        return [_row_to_job(r) for r in rows]

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        await asyncio.to_thread(self._executor.shutdown, True)

    # ---- queries ----
    async def add(self, root_id: str, rel_path: str, abs_path: str, size: int, mtime_ns: int) -> Job | None:
        """Queue a file version; None when this exact path + size + mtime is already known."""

        def insert(db: sqlite3.Connection) -> Job | None:
            now = time.time()
            cur = db.execute(
                "INSERT OR IGNORE INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (root_id, rel_path, abs_path, size, mtime_ns, JobState.PENDING.value, now, now),
            )
            if cur.rowcount == 0:
                return None
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (cur.lastrowid,)).fetchone()
            return _row_to_job(row)

        return await self._run(insert)

    async def get(self, job_id: int) -> Job | None:
        def fetch(db: sqlite3.Connection) -> Job | None:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _row_to_job(row)

        return await self._run(fetch)

    async def jobs(self, states: Iterable[JobState] | None = None) -> list[Job]:
        wanted = [s.value for s in states] if states is not None else None

        def fetch(db: sqlite3.Connection) -> list[Job]:
            if wanted is None:
                rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
            else:
                marks = ",".join("?" * len(wanted))
                rows = db.execute(
                    f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", wanted
                ).fetchall()
            return [_row_to_job(r) for r in rows]

        return await self._run(fetch)

    async def update(self, job_id: int, state: JobState | None = None, **changes: Any) -> Job:
        """Persist a transition and/or progress; returns the job as stored."""
        job = await self.transition(job_id, state, None, **changes)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return job

    async def transition(
        self, job_id: int, state: JobState | None, expect: Iterable[JobState] | None, **changes: Any
    ) -> Job | None:
        """Compare-and-set: apply only if the job is in one of ``expect`` (None: any state).
        Returns the stored job, or None when the job was not in an expected state."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        wanted = None if expect is None else [s.value for s in expect]

        def write(db: sqlite3.Connection) -> Job | None:
            cols = dict(changes)
            if state is not None:
                cols["state"] = state.value
            cols["updated_at"] = time.time()
            assignments = ", ".join(f"{name} = ?" for name in cols)
            values = [_encode(name, value) for name, value in cols.items()]
            where = "id = ?"
            args: list[object] = [job_id]
            if wanted is not None:
                where += f" AND state IN ({','.join('?' * len(wanted))})"
                args += wanted
            cur = db.execute(f"UPDATE jobs SET {assignments} WHERE {where}", (*values, *args))
            if cur.rowcount == 0:
                return None
            return _row_to_job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        return await self._run(write)

    async def mark_part_done(self, job_id: int, index: int, size: int) -> Job:
        def write(db: sqlite3.Connection) -> Job:
            row = db.execute("SELECT parts_done, bytes_done FROM jobs WHERE id = ?", (job_id,)).fetchone()
            done = set(json.loads(row["parts_done"]))
            if index not in done:
                done.add(index)
                db.execute(
                    "UPDATE jobs SET parts_done = ?, bytes_done = ?, updated_at = ? WHERE id = ?",
                    (json.dumps(sorted(done)), row["bytes_done"] + size, time.time(), job_id),
                )
            return _row_to_job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

        return await self._run(write)
