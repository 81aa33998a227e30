"""The status document (``postflow.status/1``): one JSON shape whether it comes from the
running app or, when PostFlow is not running, straight from its state database.

Automation parses this; its schema is ``docs/status.schema.json`` (described in
docs/automation.md) and a test validates both sources against it. A new field is added
freely; renaming or removing one means ``postflow.status/2``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import __version__
from app.core.errors import PostFlowError
from app.core.jobs import ACTIVE_STATES, Job, JobState, JobView, WatchRoot
from app.engine.queue_store import HistoryQuery, row_to_job

SCHEMA = "postflow.status/1"
RECENT_FINISHED = 20  # delivered / cancelled entries listed after the unfinished ones
MAX_UNFINISHED = 1000
STATES = tuple(s.value for s in JobState)


class StateUnreadable(PostFlowError):
    title = "Cannot read the queue"


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def job_json(job: Job, view: JobView | None = None) -> dict[str, Any]:
    error = job.error
    return {
        "id": job.id,
        "root_id": job.root_id,
        "rel_path": job.rel_path,
        "size": job.size,
        "state": job.state.value,
        "phase": view.phase.value if view is not None and view.phase is not None else None,
        "bytes_done": job.bytes_done,
        "attempts": job.attempts,
        "error": None
        if error is None
        else {"title": error.title, "message": error.message, "retryable": error.retryable},  # fmt: skip
        "note": job.note,
        "next_retry_at": iso(view.next_retry_at) if view is not None else None,
        "remote_file_id": job.remote_file_id,
        "link": job.remote_url,
        "updated_at": iso(job.updated_at),
    }


def root_json(root: WatchRoot, problem: str | None, known: bool) -> dict[str, Any]:
    return {
        "id": root.id, "path": root.path, "project": root.project, "folder": root.folder,
        "workspace": root.workspace, "ok": (problem is None) if known else None, "problem": problem,
    }  # fmt: skip


def _document(source: str, **parts: Any) -> dict[str, Any]:
    return {"schema": SCHEMA, "postflow_version": __version__, "source": source,
            "generated_at": iso(time.time()), **parts}  # fmt: skip


async def live_status(engine: Any, demo: bool) -> dict[str, Any]:
    """From the running engine: live phases, speed, settling files, health and metrics."""
    snap = await engine.snapshot()
    unfinished = await engine.history(
        HistoryQuery(states=(*ACTIVE_STATES, JobState.FAILED), limit=MAX_UNFINISHED)
    )
    finished = await engine.history(
        HistoryQuery(states=(JobState.DONE, JobState.CANCELLED), limit=RECENT_FINISHED)
    )
    jobs = [job_json(j, engine.view(j)) for j in (*unfinished.jobs, *finished.jobs)]
    health = {h.component: h for h in snap.health}
    roots = []
    for root in snap.roots:
        h = health.get(f"watch:{root.id}")
        roots.append(root_json(root, None if h is None or h.ok else h.message, True))
    return _document(
        "app",
        engine={
            "running": True, "paused": snap.paused, "waiting_for_sign_in": snap.waiting_for_sign_in,
            "signed_in": snap.auth.value == "signed_in", "user_email": snap.user_email,
            "account_id": snap.account_id, "account_problem": snap.account_problem, "demo": demo,
        },
        queue={
            "counts": {s: snap.counts.get(s, 0) for s in STATES}, "bytes_total": snap.bytes_total,
            "bytes_left": snap.bytes_left, "bytes_per_second": round(snap.bytes_per_second, 1),
            "eta_seconds": None if snap.eta_seconds is None else round(snap.eta_seconds, 1),
            "uploading": snap.uploading, "settling": snap.settling,
        },
        roots=roots,
        settling=[
            {"root_id": f.root_id, "rel_path": f.rel_path, "size": f.size, "stable_at": iso(f.stable_at),
             "held": f.held}
            for f in engine.settling_files()
        ],
        health=[health_json(h) for h in snap.health],
        jobs=jobs,
        jobs_truncated=unfinished.total > len(unfinished.jobs),
        metrics=engine.metrics.summary(),
    )  # fmt: skip


def health_json(h: Any) -> dict[str, Any]:
    return {"check": h.component, "label": h.label or h.component, "ok": h.ok, "message": h.message,
            "action": h.action, "since": iso(h.since) if h.since else None}  # fmt: skip


def offline_status(db_path: Path, roots: tuple[WatchRoot, ...]) -> dict[str, Any]:
    """PostFlow is not running: what its state database holds (read-only, never changed).
    Raises ``StateUnreadable`` with what is wrong (locked, damaged, not readable)."""
    counts = dict.fromkeys(STATES, 0)
    jobs: list[dict[str, Any]] = []
    truncated, paused, size, left = False, False, 0, 0
    if db_path.exists():
        counts, jobs, truncated, paused, size, left = _read(db_path)
    return _document(
        "database",
        engine={"running": False, "paused": paused, "waiting_for_sign_in": None, "signed_in": None,
                "user_email": None, "account_id": None, "account_problem": None, "demo": None},
        queue={"counts": counts, "bytes_total": size, "bytes_left": left, "bytes_per_second": 0.0,
               "eta_seconds": None, "uploading": counts["uploading"], "settling": 0},
        roots=[root_json(r, None, False) for r in roots],
        settling=[], health=[], jobs=jobs, jobs_truncated=truncated, metrics=None,
    )  # fmt: skip


def _read(db_path: Path) -> tuple[dict[str, int], list[dict[str, Any]], bool, bool, int, int]:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise StateUnreadable(_why(db_path, exc)) from None
    db.row_factory = sqlite3.Row
    try:
        counts = dict.fromkeys(STATES, 0)
        for state, n in db.execute("SELECT state, COUNT(*) FROM jobs WHERE hidden = 0 GROUP BY state"):
            counts[state] = int(n)
        active = [s.value for s in ACTIVE_STATES]
        marks = ",".join("?" * len(active))
        size, left = db.execute(
            f"SELECT TOTAL(size), TOTAL(MAX(size - bytes_done, 0)) FROM jobs WHERE hidden = 0 "
            f"AND state IN ({marks})", active,
        ).fetchone()  # fmt: skip
        unfinished = [*active, JobState.FAILED.value]
        rows = db.execute(
            f"SELECT * FROM jobs WHERE hidden = 0 AND state IN ({','.join('?' * len(unfinished))}) "
            "ORDER BY id DESC LIMIT ?", (*unfinished, MAX_UNFINISHED + 1),
        ).fetchall()  # fmt: skip
        truncated = len(rows) > MAX_UNFINISHED
        rows = (
            rows[:MAX_UNFINISHED]
            + db.execute(
                "SELECT * FROM jobs WHERE hidden = 0 AND state IN ('done', 'cancelled') "
                "ORDER BY id DESC LIMIT ?",
                (RECENT_FINISHED,),
            ).fetchall()
        )
        paused_row = db.execute("SELECT value FROM meta WHERE key = 'paused'").fetchone()
        jobs = [job_json(row_to_job(r)) for r in rows]
    except sqlite3.Error as exc:
        raise StateUnreadable(_why(db_path, exc)) from None
    finally:
        db.close()
    return counts, jobs, truncated, paused_row is not None and paused_row[0] == "1", int(size), int(left)


def _why(db_path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{db_path} is locked by another program; try again in a moment ({text})."
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"{db_path} is damaged ({text}). Quit PostFlow and move the file aside: PostFlow starts "
            "a new queue, and files already delivered may be uploaded again."
        )
    if "no such table" in text:
        return f"{db_path} is not a PostFlow queue (or an empty one) ({text})."
    return f"{db_path} cannot be read: {text}"


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)
