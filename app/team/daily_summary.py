"""The daily summary in the team's channel, at ``discord.summary_time`` (local time): files
and bytes delivered over the last 24 hours, failures, per destination.

Sent once a day: the day it was last sent is kept in the database, so a restart after 18:00
does not post it again, and a PostFlow started late still posts that day's. A day missed
entirely (the computer was off) is not posted the next morning: a stale summary misleads.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from app.core.jobs import JobState
from app.core.settings import Settings
from app.engine.queue_store import QueueStore
from app.engine.scheduler import TOUCHED_NOTE
from app.team import discord_messages as messages

log = logging.getLogger(__name__)
LAST_SENT_KEY = "discord.summary_sent_for"


class Sender(Protocol):
    def enabled(self, kind: str) -> bool: ...
    async def add_message(self, payload: dict[str, Any], once: tuple[str, str] | None = None) -> bool: ...


def due_today(now: datetime, clock_time: str) -> datetime:
    hours, minutes = (int(x) for x in clock_time.split(":"))
    return now.replace(hour=hours, minute=minutes, second=0, microsecond=0)


def totals(
    db: sqlite3.Connection, start: float, end: float, destination: Callable[[str], str]
) -> dict[str, Any]:
    """Delivered and failed jobs whose last change falls in [start, end), per destination."""
    rows = db.execute(
        "SELECT root_id, rel_path, state, size FROM jobs "
        "WHERE updated_at >= ? AND updated_at < ? AND state IN (?, ?) AND COALESCE(note, '') != ?",
        (start, end, JobState.DONE.value, JobState.FAILED.value, TOUCHED_NOTE),  # touched: not uploaded
    ).fetchall()
    out: dict[str, Any] = {"files": 0, "bytes": 0, "failed": 0, "projects": {}, "failed_names": []}
    for root_id, rel_path, state, size in rows:
        place = destination(root_id) or "(a folder no longer watched)"
        row = out["projects"].setdefault(place, {"files": 0, "bytes": 0, "failed": 0})
        if state == JobState.DONE.value:
            out["files"] += 1
            out["bytes"] += size
            row["files"] += 1
            row["bytes"] += size
        else:
            out["failed"] += 1
            row["failed"] += 1
            out["failed_names"].append(rel_path.rsplit("/", 1)[-1])
    return out


class DailySummary:
    def __init__(
        self,
        settings: Callable[[], Settings],
        store: QueueStore,
        sender: Sender,
        destination: Callable[[str], str],
        machine: Callable[[], str],
    ) -> None:
        self._settings = settings
        self._store = store
        self._sender = sender
        self._destination = destination
        self._machine = machine
        self.tick = 30.0  # seconds between looks at the clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.send_if_due(datetime.now().astimezone())
            except Exception:  # the database: try again at the next tick
                log.exception("daily summary failed")
            await asyncio.sleep(self.tick)

    async def send_if_due(self, now: datetime) -> bool:
        """Post today's summary if its time has come and it was not posted yet."""
        if not self._sender.enabled("summary"):
            return False
        due = due_today(now, self._settings().discord_summary_time)
        day = due.date().isoformat()
        if now < due or await self._store.meta(LAST_SENT_KEY) == day:
            return False
        start, end = (due - timedelta(days=1)).timestamp(), due.timestamp()
        numbers = await self._store.run(lambda db: totals(db, start, end, self._destination))
        payload = messages.summary_message(day, self._machine(), numbers)
        if not await self._sender.add_message(payload, once=(LAST_SENT_KEY, day)):
            return False
        log.info("daily summary for %s queued: %d files delivered, %d failed", day, numbers["files"],
                 numbers["failed"])  # fmt: skip
        return True
