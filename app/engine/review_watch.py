"""Follows each delivered file until Frame.io can play it, or says it cannot.

"Uploaded" is not "ready": Frame.io still transcodes, and a reviewer who clicks too early
sees a spinner. A file is *ready to review* when its ``status`` is ``transcoded`` and a
playback proxy (``media_links.high_quality``, ``efficient``, ``video_h264_180``) has an address
(a still or a document: a thumbnail). A file
that is ``transcoded`` but stays without any proxy past a grace period could not be
processed (a format Frame.io does not play, a damaged render): that is reported as such.

Which files are followed is persisted (``jobs.review_state``), so a restart neither forgets
a file nor announces one twice. Polls go through the Frame.io client (its limiter keeps
``files.show`` within the documented 10/s) and are paced further, at most ``rate`` a second,
so the follow-up never starves uploads; each file is asked again at growing intervals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.errors import PostFlowError
from app.core.event_wait import wait_set
from app.core.events import EventBus, FileReviewed, JobStateChanged
from app.core.jobs import Job, JobState
from app.engine.queue_store import QueueStore
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound

log = logging.getLogger(__name__)
VIDEO_PROXIES = ("high_quality", "efficient", "video_h264_180")
PREVIEWS = ("thumbnail_high_quality", "thumbnail")
PROXIES = VIDEO_PROXIES + PREVIEWS
INCLUDE = ",".join(f"media_links.{kind}" for kind in PROXIES)
READY, FAILED, GAVE_UP = "ready", "failed", "gave_up"
CANNOT_PLAY = (
    "Frame.io finished processing it but made no playable version: the format may not be supported "
    "or the file may be damaged. Check it on Frame.io or render it again."
)
DELETED = "It was deleted from Frame.io before it was ready."


@dataclass
class _Followed:
    job: Job
    account_id: str | None
    since: float  # wall clock: when it was delivered
    next_at: float  # monotonic
    interval: float
    transcoded_at: float | None = None  # monotonic: first seen transcoded without proxies


def _has(links: dict[str, Any], kind: str) -> bool:
    link = links.get(kind)
    return isinstance(link, dict) and bool(link.get("download_url") or link.get("url"))


def playable(data: dict[str, Any]) -> bool:
    """A video needs a playback proxy; a still or a document is ready once it has a preview."""
    links = data.get("media_links") or {}
    if any(_has(links, kind) for kind in VIDEO_PROXIES):
        return True
    is_video = str(data.get("media_type") or "").startswith(("video/", "audio/"))
    return not is_video and any(_has(links, kind) for kind in PREVIEWS)


class ReviewWatch:
    def __init__(
        self,
        store: QueueStore,
        frameio: FrameioClient,
        bus: EventBus,
        account_for: Callable[[Job, str | None], str | None],
    ) -> None:
        """``account_for(job, account the upload used)``: where to ask (None: not signed in)."""
        self._store = store
        self._frameio = frameio
        self._bus = bus
        self._account_for = account_for
        self.rate = 5.0  # polls a second, at most (half the documented files.show limit)
        self.first_check = 2.0  # seconds after delivery
        self.max_interval = 60.0
        self.grace = 120.0  # seconds "transcoded" without any proxy before it counts as failed
        self.give_up_after = 24 * 3600.0
        self._followed: dict[int, _Followed] = {}
        self._reload = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def following(self) -> int:
        return len(self._followed)

    def start(self) -> None:
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._reload.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Idempotent: the session stops it before the team channel, the engine again."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, JobStateChanged) and event.view.job.state is JobState.DONE:
            self._reload.set()  # the store knows whether it is to be followed

    async def _load(self) -> None:
        now = time.monotonic()
        for job, account_id, since in await self._store.reviews_waiting():
            if job.id not in self._followed and job.remote_file_id:
                self._followed[job.id] = _Followed(
                    job, account_id, since, now + self.first_check, self.first_check
                )

    async def _run(self) -> None:
        while True:
            if self._reload.is_set():
                self._reload.clear()
                try:
                    await self._load()
                except Exception:  # the disk: try again at the next delivery or in a minute
                    log.exception("ready-to-review: the files to follow could not be read")
            now = time.monotonic()
            due = sorted((f for f in self._followed.values() if f.next_at <= now), key=lambda f: f.next_at)
            for followed in due:
                try:
                    await self._check(followed)
                except Exception:  # an answer we did not expect: ask again later, go on with the rest
                    log.exception("%s: ready-to-review check failed", followed.job.rel_path)
                    self._later(followed, self.max_interval)
                await asyncio.sleep(1.0 / self.rate)
            if due:
                continue
            soonest = min((f.next_at for f in self._followed.values()), default=now + 60.0)
            await wait_set(self._reload, max(0.05, soonest - time.monotonic()))

    async def _check(self, followed: _Followed) -> None:
        job = followed.job
        account_id = self._account_for(job, followed.account_id)
        if account_id is None:
            self._later(followed, self.max_interval)
            return
        try:
            doc = await self._frameio.request(
                "files.show", "GET", f"/v4/accounts/{account_id}/files/{job.remote_file_id}",
                params={"include": INCLUDE},
            )  # fmt: skip
        except NotFound:
            await self._settle(followed, FAILED, DELETED)
            return
        except PostFlowError as exc:  # offline, signed out, rate limited: ask again later
            log.debug("%s: ready-to-review check postponed: %s", job.rel_path, exc.message)
            if not await self._gave_up(followed):
                self._later(followed, self.max_interval)
            return
        data = doc.get("data", doc) if isinstance(doc, dict) else {}
        data = data if isinstance(data, dict) else {}
        status = data.get("status")
        now = time.monotonic()
        if status == "transcoded" and playable(data):
            await self._settle(followed, READY, None)
        elif status == "transcoded":
            followed.transcoded_at = followed.transcoded_at or now
            if now - followed.transcoded_at >= self.grace:
                await self._settle(followed, FAILED, CANNOT_PLAY)
            else:
                self._later(followed, min(followed.interval, 10.0))
        elif await self._gave_up(followed):
            pass
        else:
            self._later(followed, min(followed.interval * 1.5, self.max_interval))

    async def _gave_up(self, followed: _Followed) -> bool:
        """Past ``give_up_after`` (whatever the answers were): stop asking, and say so."""
        if time.time() - followed.since < self.give_up_after:
            return False
        hours = self.give_up_after / 3600
        await self._settle(
            followed, GAVE_UP, f"Frame.io has not finished preparing it after {hours:g} hours."
        )
        return True

    def _later(self, followed: _Followed, interval: float) -> None:
        followed.interval = interval
        followed.next_at = time.monotonic() + interval

    async def _settle(self, followed: _Followed, outcome: str, message: str | None) -> None:
        job = followed.job
        try:
            first = await self._store.settle_review(job.id, outcome)
        except Exception:
            log.exception("%s: the ready-to-review outcome could not be saved", job.rel_path)
            self._later(followed, self.max_interval)
            return
        self._followed.pop(job.id, None)
        if not first:
            return
        waited = max(0.0, time.time() - followed.since)
        if outcome == READY:
            log.info("%s: ready to review on Frame.io (%.0fs after delivery)", job.rel_path, waited)
        else:
            log.warning("%s: not playable on Frame.io: %s", job.rel_path, message)
        self._bus.publish(FileReviewed(job.id, job.root_id, job.rel_path, job.size, job.remote_url,
                                       outcome == READY, message, waited))  # fmt: skip
