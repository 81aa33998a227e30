"""EngineService: the one facade the GUI and CLI call, and the stream of typed events they hear.

It owns the watcher, the queue store and the uploader, and decides what runs when: at most
``max_concurrent_files`` uploads, one job per file path at a time, none while paused or signed
out. Every state change is persisted before its event is published; user actions and the
scheduler move jobs with compare-and-set transitions, so a cancel can never be overwritten by an
upload that was about to start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from app.auth.service import AuthService
from app.core.errors import PostFlowError, SignedOut
from app.core.events import (
    AuthState,
    AuthStateChanged,
    EngineStateChanged,
    EventBus,
    HealthChanged,
    JobAdded,
    JobProgress,
    JobStateChanged,
)
from app.core.jobs import Job, JobState, WatchRoot
from app.core.settings import Settings
from app.engine.bandwidth import BandwidthLimiter
from app.engine.destinations import DestinationResolver
from app.engine.file_filter import FileFilter
from app.engine.instance_lock import InstanceLock
from app.engine.push_uploader import FileChanged, PushUploader, SourceUnavailable
from app.engine.queue_store import QueueStore
from app.engine.watcher import FoundFile, Watcher

log = logging.getLogger(__name__)
RETRY_CAP = 300.0  # retryable failures keep retrying, never more than 5 minutes apart
PROGRESS_EVERY = 0.25  # seconds between progress events of one job
UNCANCELLED = (JobState.PENDING, JobState.PAUSED, JobState.FAILED, JobState.UPLOADING)


class EngineService:
    def __init__(
        self, settings: Settings, auth: AuthService, bus: EventBus, roots: Sequence[WatchRoot] = ()
    ) -> None:
        self.settings = settings
        self.bus = bus
        self._auth = auth
        self.store = QueueStore(settings.paths.state_db)
        self._lock = InstanceLock(settings.paths.data_dir / "engine.lock")
        self._roots: dict[str, WatchRoot] = {r.id: r for r in roots}
        self._resolver = DestinationResolver(auth.frameio)
        self._parts_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.part_timeout, connect=15.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._uploader = PushUploader(
            self.store, auth.frameio, self._parts_http, BandwidthLimiter(settings.bandwidth_limit),
            settings.parts_per_file, self._progress,
        )  # fmt: skip
        self._watcher = Watcher(
            FileFilter.of(settings.extensions, settings.ignore_patterns),
            settings.stable_seconds, settings.scan_interval, self._found, self._root_health,
        )  # fmt: skip
        self._running: dict[int, asyncio.Task[None]] = {}
        self._running_jobs: dict[int, Job] = {}
        self._not_before: dict[int, float] = {}
        self._last_progress: dict[int, tuple[float, int]] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._keychain_poll: asyncio.Task[None] | None = None
        self.paused = False
        self.waiting_for_sign_in = False
        self._unsubscribe = bus.subscribe(self._on_event)

    # ---- lifecycle ----
    async def start(self) -> None:
        self._lock.acquire()  # before recovery: never reset another engine's uploads
        recovered = await self.store.open()
        for job in recovered:
            log.info("%s: resuming after an interruption (%d of %d parts done)", job.rel_path,
                     len(job.parts_done), len(job.parts))  # fmt: skip
        if self._auth.provider.tokens is None:
            await self._auth.provider.load()
        for root in self._roots.values():
            self._watcher.add_root(root)
        await self._watcher.start()
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule(), name="scheduler")
        self._wake.set()
        self._announce()

    async def stop(self) -> None:
        """Stop cleanly: parts in flight are abandoned, finished parts are already recorded."""
        self._unsubscribe()
        await self._watcher.stop()
        for task in (self._scheduler, self._keychain_poll):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for job_id in list(self._running):
            await self._halt(job_id, JobState.PENDING)
        await self._parts_http.aclose()
        await self.store.close()
        self._lock.release()

    # ---- what the GUI and CLI call ----
    async def jobs(self) -> list[Job]:
        return await self.store.jobs()

    async def pause_all(self) -> None:
        self.paused = True
        for job_id in list(self._running):
            await self._halt(job_id, JobState.PENDING)
        self._announce()

    async def resume_all(self) -> None:
        self.paused = False
        self._announce()
        self._wake.set()

    async def pause(self, job_id: int) -> None:
        await self._halt(job_id, JobState.PAUSED)
        await self._cas(job_id, JobState.PAUSED, (JobState.PENDING,))

    async def resume(self, job_id: int) -> None:
        if await self._cas(job_id, JobState.PENDING, (JobState.PAUSED,)):
            self._wake.set()

    async def retry(self, job_id: int) -> None:
        self._not_before.pop(job_id, None)
        expect = (JobState.FAILED, JobState.CANCELLED)
        if await self._cas(job_id, JobState.PENDING, expect, attempts=0, last_error=None):
            self._wake.set()

    async def retry_failed(self) -> None:
        for job in await self.store.jobs([JobState.FAILED]):
            await self.retry(job.id)

    async def cancel(self, job_id: int) -> None:
        """Cancelled is recorded first (so nothing restarts it), then its placeholder removed."""
        await self._halt(job_id, JobState.CANCELLED)  # a running upload stops as cancelled
        job = await self._cas(job_id, JobState.CANCELLED, UNCANCELLED) or await self.store.get(job_id)
        if job is None or job.state is not JobState.CANCELLED or not job.remote_file_id:
            return
        try:
            await self._auth.frameio.delete_file(await self._account_id(job), job.remote_file_id)
            await self.store.update(job.id, remote_file_id=None, parts=(), parts_done=frozenset())
        except PostFlowError as exc:
            log.info("%s: could not remove the unfinished upload: %s", job.rel_path, exc.message)

    def add_root(self, root: WatchRoot) -> None:
        self._roots[root.id] = root
        self._watcher.add_root(root)

    def remove_root(self, root_id: str) -> None:
        self._roots.pop(root_id, None)
        self._watcher.remove_root(root_id)

    async def scan_now(self) -> None:
        await self._watcher.scan_once()

    def settling(self) -> int:
        """Files seen but not yet stable (or not yet queued)."""
        return self._watcher.settling()

    # ---- events in and out ----
    def _announce(self) -> None:
        self.bus.publish(EngineStateChanged(True, self.paused, self.waiting_for_sign_in))

    def _on_event(self, event: Any) -> None:
        signed_in = isinstance(event, AuthStateChanged) and event.state is AuthState.SIGNED_IN
        if signed_in and self.waiting_for_sign_in:
            log.info("signed in again: uploads resume")
            self.waiting_for_sign_in = False
            self._announce()
            self._wake.set()

    async def _found(self, found: FoundFile) -> None:
        job = await self.store.add(found.root.id, found.rel_path, found.abs_path, found.size, found.mtime_ns)
        if job is not None:
            log.info("%s: queued (%d bytes)", job.rel_path, job.size)
            self.bus.publish(JobAdded(job.id, job.rel_path, job.root_id, job.size))
            self._wake.set()

    def _root_health(self, root: WatchRoot, problem: str | None) -> None:
        self.bus.publish(HealthChanged(f"watch:{root.id}", problem is None, problem))
        if problem is None:
            self._wake.set()

    def _progress(self, job_id: int, done: int) -> None:
        now = time.monotonic()
        last = self._last_progress.get(job_id)
        if last is not None and now - last[0] < PROGRESS_EVERY:
            return
        speed = (done - last[1]) / (now - last[0]) if last is not None and now > last[0] else 0.0
        self._last_progress[job_id] = (now, done)
        running = self._running_jobs.get(job_id)
        size = running.size if running is not None else 0
        self.bus.publish(JobProgress(job_id, done, size, max(0.0, speed)))

    def _publish(self, job: Job) -> None:
        self.bus.publish(
            JobStateChanged(job.id, job.rel_path, job.state.value, job.last_error, job.remote_file_id)
        )

    async def _set(self, job: Job, state: JobState, **changes: Any) -> Job:
        job = await self.store.update(job.id, state, **changes)
        self._publish(job)
        return job

    async def _cas(
        self, job_id: int, state: JobState, expect: tuple[JobState, ...], **changes: Any
    ) -> Job | None:
        """Move a job only if it is in an expected state; publish only what was stored."""
        job = await self.store.transition(job_id, state, expect, **changes)
        if job is not None:
            self._publish(job)
        return job

    async def _halt(self, job_id: int, then: JobState) -> None:
        task = self._running.pop(job_id, None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._cas(job_id, then, (JobState.UPLOADING,))

    # ---- scheduling ----
    async def _schedule(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._start_what_fits()
            except Exception:  # e.g. the disk is full: say so, keep the scheduler alive
                log.exception("could not start uploads; trying again shortly")
                await asyncio.sleep(5.0)
                self._wake.set()

    async def _start_what_fits(self) -> None:
        if self.paused or self.waiting_for_sign_in:
            return
        if self._auth.provider.tokens is None:
            self._enter_signed_out()
            return
        slots = self.settings.max_concurrent_files - len(self._running)
        now = time.monotonic()
        busy_paths = {(j.root_id, j.rel_path) for j in self._running_jobs.values()}
        for job in await self.store.jobs([JobState.PENDING]):
            if slots <= 0:
                break
            if job.id in self._running or self._not_before.get(job.id, 0) > now:
                continue
            if job.root_id not in self._roots or (job.root_id, job.rel_path) in busy_paths:
                continue  # root removed (kept, not uploaded), or another version still running
            slots -= 1
            busy_paths.add((job.root_id, job.rel_path))
            self._running_jobs[job.id] = job
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._running[job.id] = task
            task.add_done_callback(self._job_finished)

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("an upload stopped on an unexpected error", exc_info=task.exception())
            self._wake.set()

    def _enter_signed_out(self) -> None:
        if not self.waiting_for_sign_in:
            log.warning("signed out: uploads wait until you sign in again; nothing is lost")
            self.waiting_for_sign_in = True
            self._announce()
        if self._keychain_poll is None or self._keychain_poll.done():
            self._keychain_poll = asyncio.get_running_loop().create_task(self._poll_keychain())

    async def _poll_keychain(self) -> None:
        """Another process (``postflow login``) may sign in: pick its tokens up."""
        while self.waiting_for_sign_in:
            await asyncio.sleep(2.0)
            try:
                await self._auth.provider.load()
            except PostFlowError as exc:
                log.info("keychain check failed: %s", exc.message)

    async def _account_id(self, job: Job) -> str:
        root = self._roots.get(job.root_id)
        tokens = self._auth.provider.tokens
        account = root.account_id if root else ""
        account = account or (tokens.account_id if tokens else "") or self.settings.account_id
        if not account:
            account = (await self._auth.frameio.accounts())[0].id
        return account

    # ---- one job ----
    async def _run(self, job: Job) -> None:
        try:
            started_job = await self._cas(job.id, JobState.UPLOADING, (JobState.PENDING,))
            if started_job is None:
                return  # cancelled or paused since the scheduler looked
            job = started_job
            log.info("%s: upload started (attempt %d)", job.rel_path, job.attempts + 1)
            started = time.monotonic()
            account_id = await self._account_id(job)
            folder_id = await self._resolver.folder_for(account_id, self._roots[job.root_id], job.rel_dir)
            job = await self._uploader.upload(job, account_id, folder_id)
            seconds = max(time.monotonic() - started, 1e-6)
            if await self._cas(job.id, JobState.DONE, (JobState.UPLOADING,), last_error=None) is None:
                log.info("%s: delivered, but it was cancelled meanwhile", job.rel_path)
                return
            log.info("%s: delivered to Frame.io (%d bytes in %.1fs, %.1f MB/s)", job.rel_path, job.size,
                     seconds, job.size / seconds / 1e6)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except SignedOut as exc:
            await self._set(job, JobState.PENDING, last_error=exc.message)
            self._enter_signed_out()
        except SourceUnavailable as exc:  # a volume went away: wait for it, lose nothing
            log.warning("%s: %s", job.rel_path, exc.message)
            self._retry_later(job.id, 15.0)
            await self._set(job, JobState.PENDING, last_error=exc.message)
        except FileChanged as exc:
            log.info("%s: %s", job.rel_path, exc.message)
            await self._set(job, JobState.CANCELLED, last_error=exc.message)
        except PostFlowError as exc:
            await self._failed(job, exc)
        except Exception as exc:  # a bug: say so, keep the job, keep the engine alive
            log.exception("%s: unexpected error", job.rel_path)
            await self._set(job, JobState.FAILED, last_error=f"Unexpected error: {exc}")
        finally:
            self._running.pop(job.id, None)
            self._running_jobs.pop(job.id, None)
            self._last_progress.pop(job.id, None)
            self._wake.set()

    def _retry_later(self, job_id: int, wait: float) -> None:
        self._not_before[job_id] = time.monotonic() + wait
        asyncio.get_running_loop().call_later(wait, self._wake.set)

    async def _failed(self, job: Job, exc: PostFlowError) -> None:
        """Retryable trouble (network, throttling, outages) retries forever, at most 5 minutes
        apart: an overnight outage must not leave a queue of failures. Final errors stop."""
        attempts = job.attempts + 1
        if exc.retryable:
            wait = min(RETRY_CAP, 5.0 * 2 ** min(attempts - 1, 10))
            log.warning("%s: %s (retry %d in %.0fs)", job.rel_path, exc.message, attempts, wait)
            self._retry_later(job.id, wait)
            await self._set(job, JobState.PENDING, attempts=attempts, last_error=exc.message)
            return
        self._resolver.forget()  # a 404 may mean a folder was deleted: look again next time
        log.error("%s: %s: %s", job.rel_path, exc.title, exc.message)
        await self._set(job, JobState.FAILED, attempts=attempts, last_error=f"{exc.title}: {exc.message}")
