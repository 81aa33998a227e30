"""The persistent queue and history: a state machine in SQLite (WAL).

Every change is written before it is announced. All SQL runs on one dedicated thread (SQLite
connections belong to one thread, and the event loop must never wait on disk). Numbered
migrations in ``MIGRATIONS`` move old databases forward; opening recovers from a crash by
putting jobs that were uploading back to pending, with their Frame.io file id and finished
parts kept so the upload resumes instead of restarting.

Which versions may be queued again: only a *delivered* version (or one the user cancelled)
blocks a new job for the same path + size + mtime. A version cancelled because it was moved
away, changed or replaced is queued again when the identical file comes back.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.core.jobs import ACTIVE_STATES, Job, JobState, UploadState
from app.core.path_text import text_form

T = TypeVar("T")
Migration = str | Callable[[sqlite3.Connection], None]

_V1 = """
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
"""

_V2_TABLES = """
CREATE TABLE jobs2 (
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
    bytes_done INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    note TEXT,
    cancelled_by_user INTEGER NOT NULL DEFAULT 0,
    refusals INTEGER NOT NULL DEFAULT 0,
    account_id TEXT,
    folder_id TEXT,
    media_type TEXT,
    create_started_at REAL,
    urls_expire_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE job_parts (
    job_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    size INTEGER NOT NULL,
    url TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _migrate_v2(db: sqlite3.Connection) -> None:
    """No more uniqueness on the version (a cancelled row must not block it forever); part
    URLs move to their own table (one row a part: recording a part is O(1), and listing jobs
    never carries URLs); sha256, note and where the upload lives are recorded."""
    _script(db, _V2_TABLES)
    db.execute(
        "INSERT INTO jobs2 (id, root_id, rel_path, abs_path, size, mtime_ns, state, attempts, last_error, "
        "remote_file_id, bytes_done, media_type, create_started_at, urls_expire_at, created_at, updated_at) "
        "SELECT id, root_id, rel_path, abs_path, size, mtime_ns, state, attempts, last_error, "
        "remote_file_id, bytes_done, media_type, create_started_at, urls_expire_at, created_at, updated_at "
        "FROM jobs"
    )
    for row in db.execute("SELECT id, state, parts, parts_done FROM jobs").fetchall():
        if row[1] == JobState.DONE.value:
            continue
        done = set(json.loads(row[3]))
        db.executemany(
            "INSERT INTO job_parts (job_id, idx, size, url, done) VALUES (?, ?, ?, ?, ?)",
            [(row[0], i, int(s), str(u), int(i in done)) for i, (s, u) in enumerate(json.loads(row[2]))],
        )
    db.execute("DROP TABLE jobs")
    db.execute("ALTER TABLE jobs2 RENAME TO jobs")
    db.execute("CREATE INDEX jobs_by_state ON jobs (state, id)")
    db.execute("CREATE INDEX jobs_by_path ON jobs (root_id, rel_path, size)")


def _script(db: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


_V3 = """
ALTER TABLE jobs ADD COLUMN error_title TEXT;
ALTER TABLE jobs ADD COLUMN error_retryable INTEGER;
ALTER TABLE jobs ADD COLUMN remote_url TEXT;
ALTER TABLE jobs ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_root ON jobs (root_id, id);
CREATE INDEX jobs_by_state_bytes ON jobs (hidden, state, size, bytes_done);
CREATE TABLE root_baseline (
    root_id TEXT NOT NULL,
    rel_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (root_id, rel_path)
) WITHOUT ROWID;
"""
# v3: an error's display fields (title, retryable) beside its message; the file's Frame.io link;
# entries removed from the history view (``hidden``: kept, because a delivered version must still
# block a second upload); indexes for paged history and the snapshot; and the files a root held
# when it was added with "only new files" (its baseline, never uploaded).

_V4 = """
ALTER TABLE jobs ADD COLUMN review_state TEXT;
ALTER TABLE jobs ADD COLUMN review_at REAL;
CREATE INDEX jobs_by_review ON jobs (review_state, id);
CREATE TABLE team_notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX outbox_by_state ON outbox (state, id);
"""
# v4: "ready to review" follow-up of delivered files (``review_state``: waiting, ready, failed,
# gave_up; ``review_at``: when it was settled); what the team is to hear (``team_notices``: events
# not yet gathered into a message) and the Discord outbox (``outbox``: each message, sent once).

_V5 = """
ALTER TABLE jobs ADD COLUMN not_before REAL NOT NULL DEFAULT 0;
CREATE INDEX jobs_ready ON jobs (state, id, not_before, root_id);
CREATE INDEX jobs_by_root_state ON jobs (root_id, state);
CREATE INDEX jobs_given_up ON jobs (id) WHERE state IN ('cancelled', 'failed')
    AND (remote_file_id IS NOT NULL OR create_started_at IS NOT NULL)
"""
# v5: scale. A waiting job's next try (``not_before``, wall clock) is in SQL, so the scheduler
# reads only as many ready rows as it has free slots (``jobs_ready`` covers that query);
# "which roots have work" and "which given-up jobs left something on Frame.io" are index
# look-ups, not scans of the whole history.


def _migrate_v5(db: sqlite3.Connection) -> None:
    """The v5 indexes, and paths in NFC: the form is now a path's identity (macOS writes NFD),
    so a file delivered under its NFD name is still known under the NFC one."""
    _script(db, _V5)
    for row in db.execute("SELECT id, rel_path FROM jobs").fetchall():
        normal = unicodedata.normalize("NFC", row[1])
        if normal != row[1]:
            db.execute("UPDATE jobs SET rel_path = ? WHERE id = ?", (normal, row[0]))
    for row in db.execute("SELECT root_id, rel_path FROM root_baseline").fetchall():
        normal = unicodedata.normalize("NFC", row[1])
        if normal != row[1]:
            db.execute("UPDATE OR REPLACE root_baseline SET rel_path = ? WHERE root_id = ? AND rel_path = ?",
                       (normal, row[0], row[1]))  # fmt: skip


_V6 = """
ALTER TABLE jobs ADD COLUMN stack_key TEXT;
ALTER TABLE jobs ADD COLUMN version INTEGER;
ALTER TABLE jobs ADD COLUMN stack_state TEXT;
ALTER TABLE jobs ADD COLUMN comment_state TEXT;
CREATE INDEX jobs_by_stack ON jobs (root_id, stack_key) WHERE stack_key IS NOT NULL;
CREATE INDEX jobs_following_up ON jobs (id) WHERE stack_state = 'waiting' OR comment_state = 'waiting'
"""
# v6: naming rules. A delivered render's version and what its versions share (``stack_key``:
# its Frame.io folder and its name without the version), whether it still has to join its
# version stack (``stack_state``: waiting, stacked, alone, failed) and its comment to be
# posted (``comment_state``: waiting, posted, failed). Both survive a restart.

_V7 = """
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_next ON jobs (state, root_id, priority DESC, id, not_before);
CREATE INDEX jobs_next_smallest ON jobs (state, root_id, priority DESC, size, id, not_before);
CREATE INDEX jobs_by_priority ON jobs (priority)
"""
# v7: priorities. "Upload next" gives a job a priority above every other one; the scheduler reads,
# per watch folder, its first waiting jobs by priority then oldest (or smallest) first, one index
# range each with a LIMIT, and merges them: the urgent first, then the folders by their own
# priority. A wake costs folders × what it can start, never the queue.

MIGRATIONS: tuple[Migration, ...] = (_V1, _migrate_v2, _V3, _V4, _migrate_v5, _V6, _V7)
UPLOAD_ORDERS = {"oldest": ("jobs_next", "id"), "smallest": ("jobs_next_smallest", "size, id")}

_PUBLIC = ("attempts", "last_error", "remote_file_id", "bytes_done", "sha256", "note", "cancelled_by_user",
           "refusals", "abs_path", "error_title", "error_retryable", "remote_url")  # fmt: skip
_UPLOAD = ("account_id", "folder_id", "media_type", "create_started_at", "urls_expire_at", "not_before",
           "priority")  # fmt: skip
_REVIEW = ("review_state", "review_at")
_FOLLOW_UP = ("stack_key", "version", "stack_state", "comment_state")
_FIELDS = frozenset(_PUBLIC + _UPLOAD + _REVIEW + _FOLLOW_UP)
_CLEARED_UPLOAD: dict[str, Any] = {
    "remote_file_id": None, "folder_id": None, "media_type": None, "create_started_at": None,
    "urls_expire_at": None, "bytes_done": 0, "remote_url": None,
}  # fmt: skip
FINISHED_STATES = (JobState.DONE, JobState.CANCELLED, JobState.FAILED)
_HOLDING = tuple(s.value for s in (*ACTIVE_STATES, JobState.DONE, JobState.FAILED))


def row_to_job(row: sqlite3.Row) -> Job:
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
        bytes_done=row["bytes_done"],
        sha256=row["sha256"],
        note=row["note"],
        cancelled_by_user=bool(row["cancelled_by_user"]),
        refusals=row["refusals"],
        error_title=row["error_title"],
        error_retryable=None if row["error_retryable"] is None else bool(row["error_retryable"]),
        remote_url=row["remote_url"],
        version=row["version"],
        stack_state=row["stack_state"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@dataclass(frozen=True)
class Added:
    """What queuing a file version did: the new job (None: this version is already known),
    and older versions of the same path it replaced (cancelled, their uploads to remove)."""

    job: Job | None
    replaced: tuple[Job, ...] = ()


@dataclass(frozen=True)
class NewFile:
    """A finished file version the watcher offers to the queue."""

    root_id: str
    rel_path: str
    abs_path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FollowUp:
    """A delivered job with something left to do on Frame.io after its upload."""

    job: Job
    account_id: str | None
    folder_id: str | None  # the Frame.io folder it was uploaded into
    stack_key: str | None
    comment_state: str | None


def _follow_up(row: sqlite3.Row) -> FollowUp:
    return FollowUp(
        row_to_job(row), row["account_id"], row["folder_id"], row["stack_key"], row["comment_state"]
    )


@dataclass(frozen=True)
class HistoryQuery:
    """A page of the queue and history, newest first. ``before_id`` is the keyset cursor (the
    previous page's ``next_before_id``): paging stays fast however deep the user scrolls."""

    states: tuple[JobState, ...] = ()  # empty: every state
    root_id: str | None = None
    text: str = ""  # in the file's relative path, case-insensitive
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class HistoryPage:
    jobs: tuple[Job, ...]
    total: int  # entries matching the filter, over every page
    next_before_id: int | None  # None: this was the last page


@dataclass(frozen=True)
class StateTotals:
    """Jobs per state and bytes still to send: what the snapshot counts, in one indexed pass.
    Entries the user removed from the history are not counted (a cleared failure stops nagging)."""

    counts: dict[JobState, int]
    bytes_left: int
    bytes_total: int  # of the jobs still to deliver (pending, uploading, paused)


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

    async def open(self, *, recover: bool = True) -> list[Job]:
        """Open (creating and migrating as needed) and recover; returns the recovered jobs.
        ``recover=False`` for a second opener beside a running engine (its uploads are live)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        return await self._run(self._recover) if recover else []

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _private(self.path.parent, 0o700)
        if not self.path.exists():  # created private: file names and folder ids are the user's business
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        _private(self.path, 0o600)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a power cut must not undo "create started"
        if sys.platform == "darwin":
            db.execute("PRAGMA fullfsync=ON")  # macOS fsync does not reach the platter without it
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            db.close()
            raise RuntimeError(
                f"{self.path} was written by a newer PostFlow (schema {version}); update PostFlow."
            )
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN")
            try:
                if isinstance(step, str):
                    _script(db, step)
                else:
                    step(db)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                db.close()
                raise
        db.isolation_level = "DEFERRED"
        self._db = db

    @staticmethod
    def _recover(db: sqlite3.Connection) -> list[Job]:
        rows = db.execute("SELECT * FROM jobs WHERE state = ?", (JobState.UPLOADING.value,)).fetchall()
        db.execute(
            "UPDATE jobs SET state = ?, updated_at = ? WHERE state = ?",
            (JobState.PENDING.value, time.time(), JobState.UPLOADING.value),
        )
        # A restart is the user's "try again now": waits for a next try start afresh.
        db.execute("UPDATE jobs SET not_before = 0 WHERE state = 'pending' AND not_before > 0")
        return [row_to_job(r) for r in rows]

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        await asyncio.to_thread(self._executor.shutdown, True)

    # ---- queuing ----
    async def add(self, root_id: str, rel_path: str, abs_path: str, size: int, mtime_ns: int) -> Added:
        """Queue a file version unless it is delivered, queued, failed or refused by the user.
        A new version replaces older ones of the same path that are still waiting."""
        [added] = await self.add_many([NewFile(root_id, rel_path, abs_path, size, mtime_ns)])
        return added

    async def add_many(self, files: Sequence[NewFile]) -> list[Added]:
        """``add`` for many files in one transaction: 10,000 renders landing together are one
        write to disk, not 10,000."""
        batch = list(files)
        return await self._run(lambda db: [_insert(db, f) for f in batch]) if batch else []

    async def known_versions(self, root_id: str) -> list[tuple[str, int, int]]:
        """(path, size, mtime) of every version of this root that would not be queued again
        (delivered, queued, failed, refused, or there before the root was watched): after a
        restart the watcher takes these as already handled instead of offering each again."""
        marks = ",".join("?" * len(_HOLDING))

        def fetch(db: sqlite3.Connection) -> list[tuple[str, int, int]]:
            rows = db.execute(
                f"SELECT rel_path, size, mtime_ns FROM jobs WHERE root_id = ? "
                f"AND (state IN ({marks}) OR cancelled_by_user = 1) "
                "UNION SELECT rel_path, size, mtime_ns FROM root_baseline WHERE root_id = ?",
                (root_id, *_HOLDING, root_id),
            ).fetchall()
            return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

        return await self._run(fetch)

    async def ready_jobs(
        self, limit: int, now: float, tiers: Sequence[Sequence[str]], order: str = "oldest"
    ) -> list[Job]:
        """The pending jobs whose next try is due, in the order they should start: those put
        first ("Upload next", most recent first), then each tier of watch folders (highest
        priority first), oldest or smallest first within it. At most ``limit``, read per folder
        as an index range: a scheduler wake costs what it can start, not what the queue holds."""
        groups = [list(t) for t in tiers if t]
        if limit <= 0 or not groups:
            return []
        index, within = UPLOAD_ORDERS[order]

        def fetch(db: sqlite3.Connection) -> list[Job]:
            def first(root_id: str, where: str) -> list[tuple[Any, ...]]:
                return db.execute(
                    f"SELECT priority, {within}, id FROM jobs INDEXED BY {index} WHERE state = ? AND "
                    f"root_id = ? AND {where} AND not_before <= ? ORDER BY priority DESC, {within} LIMIT ?",
                    (JobState.PENDING.value, root_id, now, limit),
                ).fetchall()

            urgent = sorted((r for g in groups for root in g for r in first(root, "priority > 0")),
                            key=lambda r: (-r[0], *r[1:]))  # fmt: skip
            ids = [int(r[-1]) for r in urgent[:limit]]
            for roots in groups:
                if len(ids) >= limit:
                    break
                tier = sorted((r for root in roots for r in first(root, "priority <= 0")),
                              key=lambda r: (-r[0], *r[1:]))  # fmt: skip
                ids += [int(r[-1]) for r in tier[: limit - len(ids)]]
            return [_fetch(db, job_id) for job_id in ids]

        return await self._run(fetch)

    async def put_first(self, job_id: int) -> Job | None:
        """ "Upload next": ahead of every waiting job (a paused one is resumed). None if the job
        is not waiting (started, finished) any more."""

        def write(db: sqlite3.Connection) -> Job | None:
            waiting = (JobState.PENDING.value, JobState.PAUSED.value)
            top = db.execute("SELECT COALESCE(MAX(priority), 0) FROM jobs").fetchone()[0]  # an index look-up
            cur = db.execute(
                "UPDATE jobs SET priority = ?, state = ?, not_before = 0, updated_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (int(top) + 1, JobState.PENDING.value, time.time(), job_id, *waiting),
            )
            return _fetch(db, job_id) if cur.rowcount else None

        return await self._run(write)

    # ---- queries ----
    async def get(self, job_id: int) -> Job | None:
        return await self._run(lambda db: _fetch_or_none(db, job_id))

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
            return [row_to_job(r) for r in rows]

        return await self._run(fetch)

    async def delivered_version(self, root_id: str, rel_path: str, size: int) -> Job | None:
        """The newest delivered job of this path and size with a known checksum."""

        def fetch(db: sqlite3.Connection) -> Job | None:
            row = db.execute(
                "SELECT * FROM jobs INDEXED BY jobs_by_path "
                "WHERE root_id = ? AND rel_path = ? AND size = ? AND state = ? "
                "AND sha256 IS NOT NULL ORDER BY id DESC LIMIT 1",
                (root_id, rel_path, size, JobState.DONE.value),
            ).fetchone()
            return None if row is None else row_to_job(row)

        return await self._run(fetch)

    async def roots_with_work(self, root_ids: Iterable[str]) -> set[str]:
        """Which of these roots have jobs waiting or running (their files are expected to be
        there): one index look-up per root, however long the queue."""
        roots = list(root_ids)
        marks = ",".join("?" * len(ACTIVE_STATES))
        active = [s.value for s in ACTIVE_STATES]

        def fetch(db: sqlite3.Connection) -> set[str]:
            sql = f"SELECT 1 FROM jobs WHERE root_id = ? AND state IN ({marks}) LIMIT 1"
            return {r for r in roots if db.execute(sql, (r, *active)).fetchone() is not None}

        return await self._run(fetch)

    async def unfinished_uploads(self) -> list[Job]:
        """Given-up jobs (cancelled or failed) that may still have something on Frame.io."""

        def fetch(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(  # literals, as the partial index jobs_given_up is written
                "SELECT * FROM jobs WHERE state IN ('cancelled', 'failed') AND (remote_file_id IS NOT NULL "
                "OR create_started_at IS NOT NULL) ORDER BY id"
            ).fetchall()
            return [row_to_job(r) for r in rows]

        return await self._run(fetch)

    async def known_remote_ids(self) -> set[str]:
        """Every Frame.io file id a job holds: never someone else's "lost placeholder"."""

        def fetch(db: sqlite3.Connection) -> set[str]:
            rows = db.execute("SELECT remote_file_id FROM jobs WHERE remote_file_id IS NOT NULL").fetchall()
            return {str(r[0]) for r in rows}

        return await self._run(fetch)

    # ---- changes ----
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
        Returns the stored job, or None when the job was not in an expected state. A delivered
        job forgets its part URLs: they are of no use and should not linger."""
        unknown = set(changes) - _FIELDS
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        if "last_error" in changes:  # a message alone has no title: never show a stale one
            changes.setdefault("error_title", None)
            changes.setdefault("error_retryable", None)
        wanted = None if expect is None else [s.value for s in expect]

        def write(db: sqlite3.Connection) -> Job | None:
            cols = dict(changes)
            if state is not None:
                cols["state"] = state.value
            if state is JobState.DONE:
                cols.update(urls_expire_at=None, create_started_at=None)
            cols["updated_at"] = time.time()
            assignments = ", ".join(f"{name} = ?" for name in cols)
            where = "id = ?"
            args: list[object] = [job_id]
            if wanted is not None:
                where += f" AND state IN ({','.join('?' * len(wanted))})"
                args += wanted
            cur = db.execute(f"UPDATE jobs SET {assignments} WHERE {where}", (*cols.values(), *args))
            if cur.rowcount == 0:
                return None
            if state is JobState.DONE:
                db.execute("DELETE FROM job_parts WHERE job_id = ?", (job_id,))
            return _fetch(db, job_id)

        return await self._run(write)

    # ---- "ready to review" follow-up ----
    async def reviews_waiting(self) -> list[tuple[Job, str | None, float]]:
        """Delivered jobs whose Frame.io processing is still followed: (job, account, since)."""

        def fetch(db: sqlite3.Connection) -> list[tuple[Job, str | None, float]]:
            rows = db.execute("SELECT * FROM jobs WHERE review_state = 'waiting' ORDER BY id").fetchall()
            return [(row_to_job(r), r["account_id"], r["review_at"] or r["updated_at"]) for r in rows]

        return await self._run(fetch)

    async def settle_review(self, job_id: int, outcome: str) -> bool:
        """``ready``, ``failed`` or ``gave_up``, once: False if it was settled already."""

        def write(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE jobs SET review_state = ?, review_at = ? WHERE id = ? AND review_state = 'waiting'",
                (outcome, time.time(), job_id),
            )
            return cur.rowcount == 1

        return await self._run(write)

    # ---- after delivery: version stacks and comments ----
    async def follow_ups(self, job_id: int | None = None) -> list[FollowUp]:
        """Delivered jobs with a stack to join or a comment to post (or just this one, read
        afresh: an earlier step may have settled it)."""
        where = "(stack_state = 'waiting' OR comment_state = 'waiting') AND state = ?"

        def fetch(db: sqlite3.Connection) -> list[FollowUp]:
            if job_id is None:
                rows = db.execute(
                    f"SELECT * FROM jobs INDEXED BY jobs_following_up WHERE {where} ORDER BY id",
                    (JobState.DONE.value,),
                ).fetchall()
            else:
                rows = db.execute(
                    f"SELECT * FROM jobs WHERE id = ? AND {where}", (job_id, JobState.DONE.value)
                ).fetchall()
            return [_follow_up(r) for r in rows]

        return await self._run(fetch)

    async def versions_of(self, root_id: str, stack_key: str, folder_id: str) -> list[Job]:
        """Every delivered version of one render uploaded to one Frame.io folder, lowest first."""

        def fetch(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(
                "SELECT * FROM jobs INDEXED BY jobs_by_stack WHERE root_id = ? AND stack_key = ? "
                "AND state = ? AND remote_file_id IS NOT NULL AND folder_id = ? ORDER BY version, id",
                (root_id, stack_key, JobState.DONE.value, folder_id),
            ).fetchall()
            return [row_to_job(r) for r in rows]

        return await self._run(fetch)

    async def backfill_versions(self, fields_of: Callable[[str, str], dict[str, Any]]) -> int:
        """Versions and stack keys for renders delivered before the queue knew them (an older
        PostFlow), once, so a new version after the upgrade still finds its elders. They are not
        stacked themselves until a new version arrives. Returns how many were filled in."""

        def write(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT id, root_id, rel_path FROM jobs WHERE state = ? AND stack_key IS NULL",
                (JobState.DONE.value,),
            ).fetchall()
            filled = 0
            for job_id, root_id, rel_path in rows:
                found = fields_of(root_id, rel_path)
                if found.get("stack_key") is not None:
                    db.execute("UPDATE jobs SET version = ?, stack_key = ? WHERE id = ?",
                               (found["version"], found["stack_key"], job_id))  # fmt: skip
                    filled += 1
            return filled

        return await self._run(write)

    async def settle_follow_up(self, job_id: int, **changes: Any) -> None:
        """``stack_state``/``comment_state`` (and a note): no other field of the job moves."""
        allowed = {"stack_state", "comment_state", "note"}
        assert set(changes) <= allowed, changes

        def write(db: sqlite3.Connection) -> None:
            sets = ", ".join(f"{k} = ?" for k in changes)
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*changes.values(), job_id))

        await self._run(write)

    # ---- upload state (the uploader's own) ----
    async def upload_state(self, job_id: int) -> UploadState:
        def fetch(db: sqlite3.Connection) -> UploadState:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id}")
            parts = db.execute(
                "SELECT size, url, done FROM job_parts WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
            return UploadState(
                job_id=job_id,
                remote_file_id=row["remote_file_id"],
                account_id=row["account_id"],
                folder_id=row["folder_id"],
                media_type=row["media_type"],
                create_started_at=row["create_started_at"],
                parts=tuple((int(p["size"]), str(p["url"])) for p in parts),
                parts_done=frozenset(i for i, p in enumerate(parts) if p["done"]),
                urls_expire_at=row["urls_expire_at"],
            )

        return await self._run(fetch)

    async def record_upload(
        self, job_id: int, remote_file_id: str, media_type: str, parts: tuple[tuple[int, str], ...],
        urls_expire_at: float | None, *, mark: float | None = None, remote_url: str | None = None,
    ) -> bool:  # fmt: skip
        """The placeholder exists: its id and part URLs, in one transaction. With ``mark``, only
        if that create is still the job's latest (a late answer must not overwrite a newer
        attempt) and the job is not delivered; returns whether it was recorded."""

        def write(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT state, create_started_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or (mark is not None and (row[0] == JobState.DONE.value or row[1] != mark)):
                return False
            db.execute("DELETE FROM job_parts WHERE job_id = ?", (job_id,))
            db.executemany(
                "INSERT INTO job_parts (job_id, idx, size, url) VALUES (?, ?, ?, ?)",
                [(job_id, i, size, url) for i, (size, url) in enumerate(parts)],
            )
            db.execute(
                "UPDATE jobs SET remote_file_id = ?, media_type = ?, urls_expire_at = ?, bytes_done = 0, "
                "remote_url = ?, updated_at = ? WHERE id = ?",
                (remote_file_id, media_type, urls_expire_at, remote_url or None, time.time(), job_id),
            )
            return True

        return await self._run(write)

    async def clear_upload(self, job_id: int) -> None:
        """Nothing of this job is on Frame.io any more (deleted, or never created)."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM job_parts WHERE job_id = ?", (job_id,))
            assignments = ", ".join(f"{name} = ?" for name in _CLEARED_UPLOAD)
            db.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?",
                (*_CLEARED_UPLOAD.values(), time.time(), job_id),
            )

        await self._run(write)

    async def mark_part_done(self, job_id: int, index: int) -> None:
        """One row touched, whatever the number of parts (a 100 GB file has thousands)."""

        def write(db: sqlite3.Connection) -> None:
            cur = db.execute(
                "UPDATE job_parts SET done = 1 WHERE job_id = ? AND idx = ? AND done = 0", (job_id, index)
            )
            if cur.rowcount:
                db.execute(
                    "UPDATE jobs SET bytes_done = bytes_done + (SELECT size FROM job_parts WHERE job_id = ? "
                    "AND idx = ?), updated_at = ? WHERE id = ?",
                    (job_id, index, time.time(), job_id),
                )

        await self._run(write)

    # ---- history ----
    async def history(self, query: HistoryQuery) -> HistoryPage:
        where: list[str] = ["hidden = 0"]
        args: list[object] = []
        if query.states:
            where.append(f"state IN ({','.join('?' * len(query.states))})")
            args += [s.value for s in query.states]
        if query.root_id is not None:
            where.append("root_id = ?")
            args.append(query.root_id)
        if query.text:
            escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("rel_path LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        limit = max(1, min(query.limit, 1000))

        def fetch(db: sqlite3.Connection) -> HistoryPage:
            clause = " AND ".join(where)
            paged, page_args = clause, list(args)
            if query.before_id is not None:
                paged += " AND id < ?"
                page_args.append(query.before_id)
            rows = db.execute(
                f"SELECT * FROM jobs WHERE {paged} ORDER BY id DESC LIMIT ?", (*page_args, limit + 1)
            ).fetchall()
            jobs = tuple(row_to_job(r) for r in rows[:limit])
            more = len(rows) > limit
            if not more and query.before_id is None:
                total = len(jobs)  # the page scan saw every match: no second pass (text search)
            else:
                total = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {clause}", args).fetchone()[0]
            return HistoryPage(jobs, int(total), jobs[-1].id if more and jobs else None)

        return await self._run(fetch)

    async def totals(self, live: Mapping[int, int] | None = None) -> StateTotals:
        """``live``: bytes sent so far by running jobs (job id → bytes), counted as sent although
        their rows are written only once a part is finished, so progress moves between parts."""
        sent = dict(live or {})

        def fetch(db: sqlite3.Connection) -> StateTotals:
            counts = {state: 0 for state in JobState}
            for state, count in db.execute(
                "SELECT state, COUNT(*) FROM jobs WHERE hidden = 0 GROUP BY state"
            ).fetchall():
                counts[JobState(state)] = int(count)
            active = [s.value for s in ACTIVE_STATES]  # a few rows: summed over the index range
            size, left = db.execute(
                f"SELECT TOTAL(size), TOTAL(MAX(size - bytes_done, 0)) FROM jobs WHERE hidden = 0 "
                f"AND state IN ({','.join('?' * len(active))})",
                active,
            ).fetchone()
            if sent:
                marks = ",".join("?" * len(sent))
                for job_id, job_size, recorded in db.execute(
                    f"SELECT id, size, bytes_done FROM jobs WHERE state = 'uploading' AND id IN ({marks})",
                    list(sent),
                ).fetchall():
                    left -= max(0, min(sent[job_id], job_size) - recorded)
            return StateTotals(counts, max(0, int(left)), int(size))

        return await self._run(fetch)

    async def hide_finished(self, job_ids: Iterable[int] | None = None, root_id: str | None = None) -> int:
        """Remove finished entries (delivered, cancelled, failed) from the history the user sees.
        The rows stay: a delivered version must keep blocking a second upload of itself."""
        ids = None if job_ids is None else list(job_ids)
        marks = ",".join("?" * len(FINISHED_STATES))

        def write(db: sqlite3.Connection) -> int:
            sql = f"UPDATE jobs SET hidden = 1 WHERE hidden = 0 AND state IN ({marks})"
            args: list[object] = [s.value for s in FINISHED_STATES]
            if root_id is not None:
                sql += " AND root_id = ?"
                args.append(root_id)
            if ids is None:
                return int(db.execute(sql, args).rowcount)
            changed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cur = db.execute(sql + f" AND id IN ({','.join('?' * len(chunk))})", (*args, *chunk))
                changed += cur.rowcount
            return changed

        return await self._run(write)

    async def end_root_jobs(self, root_id: str, reason: str) -> list[Job]:
        """A root is no longer watched: its waiting and failed jobs end with ``reason`` (what
        they may have left on Frame.io is then removed like any given-up job's)."""
        ending = (JobState.PENDING, JobState.PAUSED, JobState.FAILED, JobState.UPLOADING)
        marks = ",".join("?" * len(ending))

        def write(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(
                f"SELECT id FROM jobs WHERE root_id = ? AND state IN ({marks})",
                (root_id, *(s.value for s in ending)),
            ).fetchall()
            db.execute(
                f"UPDATE jobs SET state = ?, last_error = ?, error_title = NULL, error_retryable = NULL, "
                f"updated_at = ? WHERE root_id = ? AND state IN ({marks})",
                (JobState.CANCELLED.value, reason, time.time(), root_id, *(s.value for s in ending)),
            )
            return [_fetch(db, r[0]) for r in rows]

        return await self._run(write)

    async def record_moves(self, root_id: str, moves: Sequence[tuple[str, str, str, int, int]]
                           ) -> list[tuple[Job, str]]:  # fmt: skip
        """(old path, new path, new absolute path, size, mtime) of files that moved: a delivered
        (or waiting) job of that exact version follows its file, with a note. Returns the jobs
        moved, each with its old path; a version with no such job is not a move."""
        note_of = "Moved from {}; already on Frame.io, not uploaded again."
        following = (JobState.DONE.value, JobState.PENDING.value, JobState.PAUSED.value)

        def write(db: sqlite3.Connection) -> list[tuple[Job, str]]:
            out = []
            for old, new, abs_path, size, mtime in moves:
                row = db.execute(
                    "SELECT id, state FROM jobs INDEXED BY jobs_by_path "
                    "WHERE root_id = ? AND rel_path = ? AND size = ? "
                    "AND mtime_ns = ? AND state IN (?, ?, ?) ORDER BY id DESC LIMIT 1",
                    (root_id, old, size, mtime, *following),
                ).fetchone()
                if row is None:
                    continue
                note = note_of.format(old) if row[1] == JobState.DONE.value else f"Moved from {old}."
                db.execute(
                    "UPDATE jobs SET rel_path = ?, abs_path = ?, note = ?, updated_at = ? WHERE id = ?",
                    (text_form(new), text_form(abs_path), note, time.time(), row[0]),
                )
                out.append((_fetch(db, row[0]), old))
            return out

        return await self._run(write)

    async def end_missing(self, root_id: str, rel_paths: Sequence[str], note: str) -> list[Job]:
        """The files are gone from the folder: their waiting (not running) jobs end, with ``note``."""
        waiting = (JobState.PENDING.value, JobState.PAUSED.value)

        def write(db: sqlite3.Connection) -> list[Job]:
            ended = []
            for rel_path in rel_paths:
                rows = db.execute(
                    "SELECT id FROM jobs INDEXED BY jobs_by_path "
                    "WHERE root_id = ? AND rel_path = ? AND state IN (?, ?)",
                    (root_id, rel_path, *waiting),
                ).fetchall()
                for r in rows:
                    db.execute(
                        "UPDATE jobs SET state = ?, last_error = ?, error_title = ?, error_retryable = 0, "
                        "updated_at = ? WHERE id = ?",
                        (JobState.CANCELLED.value, note, "File deleted", time.time(), r[0]),
                    )
                    ended.append(_fetch(db, r[0]))
            return ended

        return await self._run(write)

    async def set_baseline(self, root_id: str, files: Iterable[tuple[str, int, int]]) -> int:
        """The files a root holds as it is added with "only new files": these versions are
        never queued (a changed one is). Replaces the root's earlier baseline."""
        rows = [(root_id, rel, size, mtime) for rel, size, mtime in files]

        def write(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM root_baseline WHERE root_id = ?", (root_id,))
            db.executemany(
                "INSERT OR REPLACE INTO root_baseline (root_id, rel_path, size, mtime_ns) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            return len(rows)

        return await self._run(write)

    # ---- roots and other small facts ----
    async def rekey_root(self, old_ids: Iterable[str], new_id: str, new_path: str | None = None) -> int:
        """Give jobs of ``old_ids`` to ``new_id`` (an older id scheme, or a moved folder), with
        their absolute paths rebased on ``new_path``. Returns how many jobs moved."""
        old = [i for i in old_ids if i != new_id]

        def write(db: sqlite3.Connection) -> int:
            moved = 0
            for old_id in old:
                rows = db.execute("SELECT id, rel_path FROM jobs WHERE root_id = ?", (old_id,)).fetchall()
                for row in rows:
                    abs_path = (
                        os.path.join(new_path, *row["rel_path"].split("/")) if new_path is not None else None
                    )
                    db.execute(
                        "UPDATE jobs SET root_id = ?, abs_path = COALESCE(?, abs_path) WHERE id = ?",
                        (new_id, abs_path, row["id"]),
                    )
                moved += len(rows)
                db.execute(
                    "UPDATE OR REPLACE root_baseline SET root_id = ? WHERE root_id = ?", (new_id, old_id)
                )
                value = db.execute("SELECT value FROM meta WHERE key = ?", (f"root:{old_id}",)).fetchone()
                db.execute("DELETE FROM meta WHERE key = ?", (f"root:{old_id}",))
                if value is not None and new_path is None:
                    db.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (f"root:{new_id}", value[0])
                    )
            return moved

        return await self._run(write)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one transaction on the store's thread: for the small stores that keep
        their own tables in this database (the Discord outbox, review follow-up)."""
        return await self._run(fn)

    async def meta(self, key: str) -> str | None:
        def fetch(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(fetch)

    async def set_meta(self, key: str, value: str | None) -> None:
        def write(db: sqlite3.Connection) -> None:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

        await self._run(write)


def _insert(db: sqlite3.Connection, f: NewFile) -> Added:
    marks = ",".join("?" * len(_HOLDING))
    key = (f.root_id, f.rel_path, f.size, f.mtime_ns)
    held = db.execute(
        "SELECT 1 FROM jobs INDEXED BY jobs_by_path "
        "WHERE root_id = ? AND rel_path = ? AND size = ? AND mtime_ns = ? "
        f"AND (state IN ({marks}) OR cancelled_by_user = 1) LIMIT 1",
        (*key, *_HOLDING),
    ).fetchone()
    if held is None:  # there when the root was added with "only new files"
        held = db.execute(
            "SELECT 1 FROM root_baseline WHERE root_id = ? AND rel_path = ? AND size = ? AND mtime_ns = ?",
            key,
        ).fetchone()
    if held is not None:
        return Added(None)
    now = time.time()
    waiting = (JobState.PENDING.value, JobState.PAUSED.value, JobState.FAILED.value)
    older = db.execute(
        "SELECT id FROM jobs INDEXED BY jobs_by_path "
        "WHERE root_id = ? AND rel_path = ? AND state IN (?, ?, ?)",
        (f.root_id, f.rel_path, *waiting),
    ).fetchall()
    if older:
        db.execute(
            "UPDATE jobs INDEXED BY jobs_by_path SET state = ?, last_error = ?, error_title = NULL, "
            "error_retryable = NULL, updated_at = ? "
            "WHERE root_id = ? AND rel_path = ? AND state IN (?, ?, ?)",
            (JobState.CANCELLED.value, "Replaced by a newer version of the file.", now, f.root_id, f.rel_path,
             *waiting),
        )  # fmt: skip
    cur = db.execute(
        "INSERT INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (f.root_id, f.rel_path, text_form(f.abs_path), f.size, f.mtime_ns, JobState.PENDING.value, now, now),
    )
    job = _fetch(db, int(cur.lastrowid or 0))
    return Added(job, tuple(_fetch(db, r["id"]) for r in older))


def _fetch_or_none(db: sqlite3.Connection, job_id: int) -> Job | None:
    row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row_to_job(row)


def _fetch(db: sqlite3.Connection, job_id: int) -> Job:
    job = _fetch_or_none(db, job_id)
    if job is None:
        raise KeyError(f"no job {job_id}")
    return job


def _private(path: Path, mode: int) -> None:
    """Owner-only access; not every file system keeps modes (then there is nothing to do)."""
    try:
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError:
        pass
