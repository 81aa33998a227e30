"""What the team is to hear, kept in the state database until it is sent.

Two steps, both persisted: an event worth telling (a file delivered, ready, failed) is first a
*notice*; notices that arrive together are then *gathered* into one or a few messages, in one
transaction that writes the messages and deletes the notices. A message is marked ``sending``
before its request and ``sent`` after Discord's answer, so a restart sends every pending
message once. (Only a crash in the second between Discord's answer and our write can repeat
one; a clean stop waits for the request in flight.)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.engine.queue_store import QueueStore

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


@dataclass(frozen=True)
class Notice:
    id: int
    kind: str
    data: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class Message:
    id: int
    payload: dict[str, Any]
    attempts: int
    not_before: float


class Outbox:
    def __init__(self, store: QueueStore) -> None:
        self._store = store

    async def recover(self) -> int:
        """A message caught mid-request by a crash goes back to pending (sent again)."""

        def write(db: sqlite3.Connection) -> int:
            return int(db.execute("UPDATE outbox SET state = ? WHERE state = ?", (PENDING, SENDING)).rowcount)

        return await self._store.run(write)

    async def retry_now(self) -> int:
        """Pending messages waiting out a backoff may go at once (a restart, or the webhook
        answers again): the wait was about Discord, not about the message."""

        def write(db: sqlite3.Connection) -> int:
            return int(
                db.execute(
                    "UPDATE outbox SET not_before = 0 WHERE state = ? AND not_before > 0", (PENDING,)
                ).rowcount
            )

        return await self._store.run(write)

    async def add_notice(self, kind: str, data: dict[str, Any]) -> int:
        def write(db: sqlite3.Connection) -> int:
            cur = db.execute("INSERT INTO team_notices (kind, data, created_at) VALUES (?, ?, ?)",
                             (kind, json.dumps(data), time.time()))  # fmt: skip
            return int(cur.lastrowid or 0)

        return await self._store.run(write)

    async def notices(self) -> list[Notice]:
        def fetch(db: sqlite3.Connection) -> list[Notice]:
            rows = db.execute("SELECT id, kind, data, created_at FROM team_notices ORDER BY id").fetchall()
            return [Notice(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

        return await self._store.run(fetch)

    async def gather(self, notice_ids: Sequence[int], payloads: Sequence[dict[str, Any]]) -> None:
        """Notices become messages, all at once or not at all."""
        ids = list(notice_ids)

        def write(db: sqlite3.Connection) -> None:
            now = time.time()
            for payload in payloads:
                db.execute("INSERT INTO outbox (payload, state, created_at) VALUES (?, ?, ?)",
                           (json.dumps(payload), PENDING, now))  # fmt: skip
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                db.execute(f"DELETE FROM team_notices WHERE id IN ({','.join('?' * len(chunk))})", chunk)

        await self._store.run(write)

    async def add_message(self, payload: dict[str, Any], once: tuple[str, str] | None = None) -> bool:
        """Queue one message. With ``once=(key, value)``: only if the database's ``key`` is not
        ``value`` yet, and set it in the same transaction (the daily summary, once a day even
        across a crash). False: it was queued before."""

        def write(db: sqlite3.Connection) -> bool:
            if once is not None:
                row = db.execute("SELECT value FROM meta WHERE key = ?", (once[0],)).fetchone()
                if row is not None and row[0] == once[1]:
                    return False
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", once)
            db.execute("INSERT INTO outbox (payload, state, created_at) VALUES (?, ?, ?)",
                       (json.dumps(payload), PENDING, time.time()))  # fmt: skip
            return True

        return await self._store.run(write)

    async def next_message(self) -> Message | None:
        def fetch(db: sqlite3.Connection) -> Message | None:
            row = db.execute(
                "SELECT id, payload, attempts, not_before FROM outbox WHERE state = ? ORDER BY id LIMIT 1",
                (PENDING,),
            ).fetchone()
            return None if row is None else Message(row[0], json.loads(row[1]), row[2], row[3])

        return await self._store.run(fetch)

    async def mark(self, message_id: int, state: str, *, error: str | None = None,
                   not_before: float | None = None, attempt: bool = False) -> None:  # fmt: skip
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET state = ?, last_error = COALESCE(?, last_error), "
                "not_before = COALESCE(?, not_before), attempts = attempts + ?, "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                (state, error, not_before, int(attempt), state, time.time(), message_id),
            )

        await self._store.run(write)

    async def counts(self) -> dict[str, int]:
        def fetch(db: sqlite3.Connection) -> dict[str, int]:
            counts = {s: 0 for s in (PENDING, SENDING, SENT, DEAD)}
            for state, n in db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
                counts[state] = int(n)
            counts["notices"] = int(db.execute("SELECT COUNT(*) FROM team_notices").fetchone()[0])
            return counts

        return await self._store.run(fetch)
