"""Every job change the engine makes goes through here: stored first (compare-and-set), then
published as a ``JobView`` with what only the running engine knows (phase, next retry, speed).

One place for it means the queue window, the tray and the tests hear the same thing the
database holds, and a client never sees a state that was not written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.core.events import AttemptEnded, EventBus, JobProgress, JobStateChanged
from app.core.jobs import Job, JobPhase, JobState, JobView
from app.core.units import format_bytes
from app.engine.queue_store import QueueStore

PROGRESS_EVERY = 0.25  # seconds between progress events of one job
LOG_EVERY_BYTES = 100 * 1000**2  # a transfer's progress in the log: every 100 MB…
LOG_EVERY_SECONDS = 10.0  # …or 10 s, whichever comes first,
LOG_GAP_SECONDS = 5.0  # but never more than one line per 5 s of one file (1 Gbit/s is 125 MB/s)
log = logging.getLogger(__name__)
SPEED_SMOOTHING = 0.3  # weight of the newest measure in a job's speed
SPEED_STALE = 5.0  # a job silent this long no longer counts in the overall speed


class JobBoard:
    def __init__(self, store: QueueStore, bus: EventBus) -> None:
        self._store = store
        self._bus = bus
        self._phases: dict[int, JobPhase] = {}  # running jobs only
        self._retry_at: dict[int, float] = {}  # wall clock
        self._last: dict[int, Job] = {}  # the latest stored version of running jobs
        self._progress: dict[int, tuple[float, int]] = {}  # job → (when, bytes) last published
        self._logged: dict[int, tuple[float, int]] = {}  # job → (when, bytes) last logged
        self._speed: dict[int, tuple[float, float]] = {}  # job → (when, smoothed bytes/s)
        #: what a job's name says and where it goes (the engine's naming rules)
        self.describe: Callable[[Job], tuple[tuple[tuple[str, str], ...], str | None]] | None = None

    # ---- views ----
    def view(self, job: Job) -> JobView:
        speed = self._speed.get(job.id)
        fields, folder = self.describe(job) if self.describe is not None else ((), None)
        return JobView(
            job, self._phase_of(job), self._retry_at.get(job.id) if job.state is JobState.PENDING else None,
            speed[1] if speed and job.state is JobState.UPLOADING else 0.0, fields, folder,
        )  # fmt: skip

    def _phase_of(self, job: Job) -> JobPhase | None:
        if job.state is JobState.UPLOADING:
            return self._phases.get(job.id, JobPhase.CREATING)
        if job.state is not JobState.PENDING:
            return None
        if self._retry_at.get(job.id, 0.0) > time.time():
            return JobPhase.RETRY_WAIT
        return JobPhase.WAITING if job.last_error else JobPhase.QUEUED

    def overall_speed(self) -> float:
        now = time.monotonic()
        return sum(speed for when, speed in self._speed.values() if now - when < SPEED_STALE)

    # ---- changes ----
    def attempt_ended(
        self, job: Job, outcome: str, started: float, error: BaseException | None = None
    ) -> None:
        """For the metrics: how one attempt ended (``started``: its ``time.monotonic()``)."""
        error_class = type(error).__name__ if error is not None else None
        self._bus.publish(AttemptEnded(job.id, outcome, time.monotonic() - started, job.size, error_class))

    def publish(self, job: Job) -> None:
        if job.state is JobState.UPLOADING:
            self._last[job.id] = job
        else:
            self._forget_running(job.id)
        self._bus.publish(JobStateChanged(self.view(job)))

    async def set(self, job: Job, state: JobState, **changes: Any) -> Job:
        stored = await self._store.update(job.id, state, **changes)
        self.publish(stored)
        return stored

    async def cas(
        self, job_id: int, state: JobState | None, expect: tuple[JobState, ...], **changes: Any
    ) -> Job | None:
        """Move a job only if it is in an expected state; publish only what was stored."""
        stored = await self._store.transition(job_id, state, expect, **changes)
        if stored is not None:
            self.publish(stored)
        return stored

    def retry_at(self, job_id: int, when: float | None) -> None:
        if when is None:
            self._retry_at.pop(job_id, None)
        else:
            self._retry_at[job_id] = when

    def phase(self, job_id: int, phase: JobPhase) -> None:
        """A running upload moved on (creating → sending → verifying): say so once."""
        if self._phases.get(job_id) == phase:
            return
        self._phases[job_id] = phase
        job = self._last.get(job_id)
        if job is not None and job.state is JobState.UPLOADING:
            self._bus.publish(JobStateChanged(self.view(job)))

    def progress(self, job_id: int, done: int) -> None:
        now = time.monotonic()
        last = self._progress.get(job_id)
        if last is not None and now - last[0] < PROGRESS_EVERY:
            return
        self._progress[job_id] = (now, done)
        if last is not None and now > last[0]:
            measured = max(0.0, (done - last[1]) / (now - last[0]))
            before = self._speed.get(job_id)
            smoothed = measured if before is None else before[1] + SPEED_SMOOTHING * (measured - before[1])
            self._speed[job_id] = (now, smoothed)
        job = self._last.get(job_id)
        speed = self._speed.get(job_id, (now, 0.0))[1]
        self._log_progress(job, job_id, done, speed, now)
        self._bus.publish(JobProgress(job_id, done, job.size if job is not None else 0, speed))

    def _log_progress(self, job: Job | None, job_id: int, done: int, speed: float, now: float) -> None:
        logged = self._logged.setdefault(job_id, (now, 0))
        elapsed = now - logged[0]
        if elapsed < LOG_GAP_SECONDS or (done - logged[1] < LOG_EVERY_BYTES and elapsed < LOG_EVERY_SECONDS):
            return
        self._logged[job_id] = (now, done)
        if job is None or done <= logged[1] or done >= job.size:
            return  # nothing new, or finished (the delivery has its own line)
        log.info("%s: %s of %s sent (%d%%, %s/s)", job.rel_path, format_bytes(done), format_bytes(job.size),
                 done * 100 // max(1, job.size), format_bytes(int(speed)))  # fmt: skip

    def live_bytes(self) -> dict[int, int]:
        """Bytes sent so far by each running job, as last reported by its parts."""
        return {job_id: done for job_id, (_when, done) in self._progress.items()}

    def stopped(self, job_id: int) -> None:
        """The job's task ended (whatever it recorded): no phase or speed lingers."""
        self._forget_running(job_id)

    def _forget_running(self, job_id: int) -> None:
        self._phases.pop(job_id, None)
        self._last.pop(job_id, None)
        self._progress.pop(job_id, None)
        self._logged.pop(job_id, None)
        self._speed.pop(job_id, None)
