"""EngineService: the one facade the GUI and CLI call, and the stream of typed events they hear.

It owns the watcher, the queue store and the uploader, and decides what runs when: at most
``max_concurrent_files`` uploads, one job per file path at a time, none while paused, signed
out, or signed in to another account than the queue was meant for. Every state change is
persisted before its event is published; user actions and the scheduler move jobs with
compare-and-set transitions, so a cancel can never be overwritten by an upload that was about
to start. Whatever a given-up job left on Frame.io (a placeholder, a half-sent upload) is
removed by the same scheduler, one path at a time, until nothing is left.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx

from app.auth.service import AuthService
from app.core.errors import ConfigError, PostFlowError, SignedOut
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
from app.core.roots import check_overlaps, resolved, root_id_for
from app.core.settings import Settings
from app.engine import failpoints
from app.engine.bandwidth import BandwidthLimiter
from app.engine.content_hash import BackgroundHash
from app.engine.destinations import DestinationResolver
from app.engine.file_filter import FileFilter
from app.engine.instance_lock import InstanceLock
from app.engine.maintenance import ACCOUNT_KEY, account_identity
from app.engine.push_uploader import PushUploader
from app.engine.queue_store import QueueStore
from app.engine.root_health import RootIdentity, RootMonitor
from app.engine.upload_errors import FileChanged, SourceUnavailable, attempt_limit
from app.engine.watcher import FoundFile, Watcher
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound

log = logging.getLogger(__name__)
RETRY_CAP = 300.0  # retryable failures keep retrying, never more than 5 minutes apart
PROGRESS_EVERY = 0.25  # seconds between progress events of one job
UNCANCELLED = (JobState.PENDING, JobState.PAUSED, JobState.FAILED, JobState.UPLOADING)
TOUCHED_NOTE = "Touched, content unchanged: not uploaded again."


class EngineService:
    def __init__(
        self,
        settings: Settings,
        auth: AuthService,
        frameio: FrameioClient,
        bus: EventBus,
        roots: Sequence[WatchRoot] = (),
        *,
        lock: InstanceLock | None = None,
        persist_roots: bool = False,
    ) -> None:
        check_overlaps(roots)
        self.settings = settings
        self.bus = bus
        self._auth = auth
        self._frameio = frameio
        self._persist_roots = persist_roots
        self.store = QueueStore(settings.paths.state_db)
        self._own_lock = lock is None  # a lock handed in is held (and released) by its giver
        self._lock = lock or self.lock_holder(settings)
        self._roots: dict[str, WatchRoot] = {r.id: r for r in roots}
        self._resolver = DestinationResolver(frameio)
        self._parts_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.part_timeout, connect=15.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._monitor = RootMonitor()
        self._hash_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash")
        self._uploader = PushUploader(
            self.store, frameio, self._parts_http, BandwidthLimiter(settings.bandwidth_limit),
            settings.parts_per_file, self._progress, self._monitor, self._hash_executor, self._trouble,
        )  # fmt: skip
        self._uploader.listing_settle = settings.listing_settle
        self._watcher = Watcher(
            FileFilter.of(settings.extensions, settings.ignore_patterns),
            settings.stable_seconds, settings.scan_interval, self._found, self._root_health, self._monitor,
        )  # fmt: skip
        self._running: dict[int, asyncio.Task[None]] = {}
        self._running_jobs: dict[int, Job] = {}
        self._cleaning: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._health_problems: dict[str, str | None] = {}
        self._stranded: set[int] = set()  # could not be put back to pending (disk full): retried
        self._not_before: dict[int, float] = {}
        self._last_progress: dict[int, tuple[float, int]] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._keychain_poll: asyncio.Task[None] | None = None
        self._account_poll: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.retry_base = 5.0  # seconds before the first retry; doubles per attempt up to RETRY_CAP
        self.disk_full_wait = 30.0  # our own disk is full: look again this often
        self.paused = False
        self.waiting_for_sign_in = False
        self.account_mismatch: str | None = None  # signed in to another account than the queue's
        self._locked = False
        self._started = False
        self._unsubscribe = bus.subscribe(self._on_event)

    # ---- lifecycle ----
    @staticmethod
    def lock_holder(settings: Settings) -> InstanceLock:
        """One engine per data folder: two on one queue would upload everything twice."""
        return InstanceLock(settings.paths.data_dir / "engine.lock")

    async def start(self) -> None:
        if self._own_lock and not self._locked:  # before recovery: never reset another engine's uploads
            self._lock.acquire()
            self._locked = True
        recovered = await self.store.open()
        for job in recovered:
            log.info("%s: resuming after an interruption (%d of %d bytes sent)", job.rel_path, job.bytes_done,
                     job.size)  # fmt: skip
        for root in self._roots.values():
            await self._adopt_root_history(root)
        if self._auth.provider.tokens is None:
            await self._auth.provider.load()
        await self._check_account()
        for root in self._roots.values():
            self._watcher.add_root(root)
        await self._watcher.start()
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule(), name="scheduler")
        self._started = True
        self._wake.set()
        self._announce()

    async def stop(self) -> None:
        """Stop cleanly: parts in flight are abandoned, finished parts are already recorded."""
        self._unsubscribe()
        await self._watcher.stop()
        cleaning = [task for _, task in self._cleaning.values()]
        for task in (self._scheduler, self._keychain_poll, self._account_poll, *self._tasks, *cleaning):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._halt_all(list(self._running), JobState.PENDING)
        await self._parts_http.aclose()
        if self._started:
            await self._save_root_identities()
        await self.store.close()
        self._hash_executor.shutdown(wait=False, cancel_futures=True)
        if self._locked:
            self._lock.release()
            self._locked = False

    # ---- what the GUI and CLI call ----
    async def jobs(self) -> list[Job]:
        return await self.store.jobs()

    async def pause_all(self) -> None:
        self.paused = True
        await self._halt_all(list(self._running), JobState.PENDING)
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
        if await self._cas(
            job_id, JobState.PENDING, expect, attempts=0, refusals=0, last_error=None, cancelled_by_user=False
        ):
            self._wake.set()

    async def retry_failed(self) -> None:
        for job in await self.store.jobs([JobState.FAILED]):
            await self.retry(job.id)

    async def cancel(self, job_id: int) -> None:
        """Cancelled is recorded first (so nothing restarts it, nor queues this version again),
        then whatever it has on Frame.io is removed by the scheduler."""
        await self._halt(job_id, JobState.CANCELLED, cancelled_by_user=True)  # a running upload stops
        await self._cas(job_id, JobState.CANCELLED, UNCANCELLED, cancelled_by_user=True)
        self._wake.set()

    def add_root(self, root: WatchRoot) -> None:
        check_overlaps([*self._roots.values(), root])
        self._roots[root.id] = root
        self._watcher.add_root(root)

    def remove_root(self, root_id: str) -> None:
        self._roots.pop(root_id, None)
        self._watcher.remove_root(root_id)

    async def move_root(self, root_id: str, new_path: str) -> WatchRoot:
        """ "This folder moved": the same files now live at ``new_path`` (a filespace mounted
        elsewhere). The root keeps its history, so nothing delivered is uploaded again."""
        old = self._roots.get(root_id)
        if old is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        moved = await asyncio.to_thread(moved_root, old, new_path)  # resolving asks the disk
        check_overlaps([*(r for r in self._roots.values() if r.id != root_id), moved])
        await self._halt_all(
            [j for j, job in self._running_jobs.items() if job.root_id == root_id], JobState.PENDING
        )
        self.remove_root(root_id)
        self._monitor.forget(root_id)
        count = await self.store.rekey_root([root_id], moved.id, moved.path)
        log.info("watch folder %s moved to %s: %d jobs keep their history", old.path, moved.path, count)
        self._roots[moved.id] = moved
        self._watcher.add_root(moved)
        self._wake.set()
        return moved

    def accept_empty_root(self, root_id: str) -> None:
        """The user emptied the folder on purpose (it is not an unmounted volume)."""
        self._monitor.accept_empty(root_id)
        self._watcher.poke()

    async def confirm_account(self) -> None:
        """The user confirmed: the queue now goes to the account signed in at present."""
        tokens = self._auth.provider.tokens
        if tokens is None:
            return
        await self.store.set_meta(ACCOUNT_KEY, account_identity(tokens.account_id, tokens.user_email))
        await self._check_account()
        self._wake.set()

    async def scan_now(self) -> None:
        await self._watcher.scan_once()

    def settling(self) -> int:
        """Files seen but not yet stable (or not yet queued)."""
        return self._watcher.settling()

    # ---- events in and out ----
    def _announce(self) -> None:
        self.bus.publish(EngineStateChanged(True, self.paused, self.waiting_for_sign_in))

    def _on_event(self, event: Any) -> None:
        if not isinstance(event, AuthStateChanged) or not self._started:
            return
        if event.state is AuthState.SIGNED_OUT:
            self._spawn(self._signed_out())
        else:
            self._spawn(self._signed_in())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _signed_out(self) -> None:
        """Part PUTs need no token: without this, bytes would keep flowing into the account
        the user just left."""
        self._enter_signed_out()
        await self._halt_all(
            list(self._running), JobState.PENDING, last_error="Waiting for you to sign in again."
        )
        for _, task in list(self._cleaning.values()):
            task.cancel()

    async def _signed_in(self) -> None:
        await self._check_account()
        if self.waiting_for_sign_in:
            log.info("signed in again: uploads resume")
            self.waiting_for_sign_in = False
            self._announce()
        self._wake.set()

    async def _check_account(self) -> None:
        """A sign-in into another account holds the queue until the user confirms where it goes."""
        tokens = self._auth.provider.tokens
        if tokens is None:
            return
        current = account_identity(tokens.account_id, tokens.user_email)
        meant = await self.store.meta(ACCOUNT_KEY)
        if meant is None:
            await self.store.set_meta(ACCOUNT_KEY, current)
            meant = current
        before = self.account_mismatch
        if json.loads(meant).get("account_id") == tokens.account_id:
            self.account_mismatch = None
        else:
            was = json.loads(meant)
            self.account_mismatch = (
                f"You are signed in as {tokens.user_email} (account {tokens.account_id}), but the queued "
                f"files were meant for {was.get('email')} (account {was.get('account_id')}). Confirm the "
                "destination to upload them into this account, or sign in to the other one."
            )
            await self._halt_all(list(self._running), JobState.PENDING)
            for _, task in list(self._cleaning.values()):  # never the other account's leftovers
                task.cancel()
            if self._account_poll is None or self._account_poll.done():
                self._account_poll = asyncio.get_running_loop().create_task(self._poll_account())
        if self.account_mismatch != before:
            if self.account_mismatch:
                log.warning("%s", self.account_mismatch)
            self.bus.publish(HealthChanged("account", self.account_mismatch is None, self.account_mismatch))
            self._announce()

    async def _poll_account(self) -> None:
        """``postflow confirm-account`` (another process) may settle it: look every 2 s."""
        while self.account_mismatch is not None:
            await asyncio.sleep(2.0)
            await self._check_account()
        self._wake.set()

    async def _found(self, found: FoundFile) -> None:
        added = await self.store.add(
            found.root.id, found.rel_path, found.abs_path, found.size, found.mtime_ns
        )
        for old in added.replaced:
            log.info("%s: replaced by a newer version before it was uploaded", old.rel_path)
            self._publish(old)
        job = added.job
        if job is not None:
            log.info("%s: queued (%d bytes)", job.rel_path, job.size)
            self.bus.publish(JobAdded(job.id, job.rel_path, job.root_id, job.size))
            self._wake.set()

    def _root_health(self, root: WatchRoot, problem: str | None) -> None:
        self.bus.publish(HealthChanged(f"watch:{root.id}", problem is None, problem))
        if problem is None:
            self._wake.set()
        self._spawn(self._save_root_identities())

    async def _save_root_identities(self) -> None:
        for root_id, identity in self._monitor.take_changes().items():
            await self.store.set_meta(f"root:{root_id}", identity.to_json() if identity else None)

    async def _adopt_root_history(self, root: WatchRoot) -> None:
        """Jobs recorded under an older id of this root are its own; and what the root looked
        like when last seen (its device) tells an unmounted volume from an empty folder."""
        moved = await self.store.rekey_root(root.legacy_ids, root.id)
        if moved:
            log.info("%s: %d jobs adopted from the previous id scheme", root.path, moved)
        saved = await self.store.meta(f"root:{root.id}")
        self._monitor.load(root.id, RootIdentity.from_json(saved) if saved else None)

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

    async def _trouble(self, job: Job, message: str) -> None:
        """A running upload is struggling: the job shows why, and keeps going."""
        stored = await self.store.transition(job.id, None, (JobState.UPLOADING,), last_error=message)
        if stored is not None:
            self._publish(stored)

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

    async def _halt(self, job_id: int, then: JobState, **changes: Any) -> None:
        await self._halt_all([job_id], then, **changes)

    async def _halt_all(self, job_ids: list[int], then: JobState, **changes: Any) -> None:
        """Stop these uploads together (each may wait a moment for a create's answer), then
        record where they stand."""
        tasks = {job_id: self._running.pop(job_id) for job_id in job_ids if job_id in self._running}
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for job_id in tasks:
            await self._cas(job_id, then, (JobState.UPLOADING,), **changes)

    # ---- scheduling ----
    async def _schedule(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._save_root_identities()  # promptly: a kill -9 must not forget them
                self._monitor.expect_files(await self.store.roots_with_work())
                await self._unstrand()
                await self._start_what_fits()
                self._health("disk", None)
            except Exception as exc:  # e.g. the disk is full: say so, keep the scheduler alive
                if not self._disk_trouble(exc):
                    log.exception("could not start uploads; trying again shortly")
                await asyncio.sleep(min(5.0, self.disk_full_wait))
                self._wake.set()

    def _disk_trouble(self, exc: BaseException) -> bool:
        full = isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()
        if full or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            self._health(
                "disk",
                f"The disk holding PostFlow's data ({self.settings.paths.data_dir}) is full. Free some "
                "space: uploads resume by themselves and nothing is lost.",
            )
            return True
        return False

    def _health(self, component: str, problem: str | None) -> None:
        if self._health_problems.get(component) != problem:
            self._health_problems[component] = problem
            if problem:
                log.error("%s", problem)
            self.bus.publish(HealthChanged(component, problem is None, problem))

    async def _unstrand(self) -> None:
        for job_id in list(self._stranded):
            await self.store.transition(job_id, JobState.PENDING, (JobState.UPLOADING,))
            self._stranded.discard(job_id)

    def _blocked(self) -> bool:
        return self.paused or self.waiting_for_sign_in or self.account_mismatch is not None

    async def _start_what_fits(self) -> None:
        if self._blocked():
            return
        if self._auth.provider.tokens is None:
            self._enter_signed_out()
            return
        now = time.monotonic()
        busy = [*self._running_jobs.values(), *(job for job, _ in self._cleaning.values())]
        busy_paths = {(j.root_id, j.rel_path) for j in busy}
        await self._start_cleanups(busy_paths, now)
        slots = self.settings.max_concurrent_files - len(self._running)
        for job in await self.store.jobs([JobState.PENDING]):
            if slots <= 0:
                break
            if job.id in self._running or self._not_before.get(job.id, 0) > now:
                continue
            if job.root_id not in self._roots or (job.root_id, job.rel_path) in busy_paths:
                continue  # root removed (kept, not uploaded), or another version (or clean-up) running
            if self._monitor.problem(job.root_id) is not None:
                continue  # its volume is away: the health says so, the job waits
            slots -= 1
            busy_paths.add((job.root_id, job.rel_path))
            self._running_jobs[job.id] = job
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._job_finished, job.id))

    def _job_finished(self, job_id: int, task: asyncio.Task[None]) -> None:
        """Runs even for a task cancelled before its first step (whose ``finally`` never ran):
        the path must never stay marked busy."""
        if self._running.get(job_id) is task:
            self._running.pop(job_id)
        if job_id not in self._running:
            self._running_jobs.pop(job_id, None)
            self._last_progress.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("an upload stopped on an unexpected error", exc_info=task.exception())
        self._wake.set()

    # ---- removing what given-up jobs left on Frame.io ----
    async def _start_cleanups(self, busy_paths: set[tuple[str, str]], now: float) -> None:
        tokens = self._auth.provider.tokens
        for job in await self.store.unfinished_uploads():
            key = (job.root_id, job.rel_path)
            if job.id in self._cleaning or key in busy_paths or self._not_before.get(job.id, 0) > now:
                continue
            busy_paths.add(key)  # no new version of this path starts while its leftovers go
            task = asyncio.get_running_loop().create_task(
                self._clean(job, tokens.account_id if tokens else None)
            )
            self._cleaning[job.id] = (job, task)

            def finished(t: asyncio.Task[None], job_id: int = job.id) -> None:
                self._cleaning.pop(job_id, None)
                if not t.cancelled() and t.exception() is not None:
                    log.error("clean-up stopped on an unexpected error", exc_info=t.exception())
                self._wake.set()

            task.add_done_callback(finished)

    async def _clean(self, job: Job, current_account: str | None) -> None:
        up = await self.store.upload_state(job.id)
        account = up.account_id or current_account
        if account is None or account != current_account:
            self._not_before[job.id] = time.monotonic() + RETRY_CAP  # another account's: not ours to touch
            return
        try:
            fresh = await self.store.get(job.id)  # a user's cancel may have come since
            if (
                fresh is not None
                and not fresh.cancelled_by_user
                and await self._uploader.delivered(job, up, account)
            ):
                # Complete before it was moved, changed or replaced: that version is delivered.
                log.info("%s: its upload had completed; kept on Frame.io", job.rel_path)
                note = "Delivered before the file was moved or changed."
                kept = {"remote_file_id": up.remote_file_id, "note": note}
                await self._cas(job.id, JobState.DONE, (JobState.CANCELLED, JobState.FAILED), **kept)
                return
            if up.remote_file_id:
                log.info("%s: removing its unfinished upload from Frame.io", job.rel_path)
            await self._uploader.discard(job, up, account)
        except PostFlowError as exc:
            log.info("%s: could not remove the unfinished upload yet: %s", job.rel_path, exc.message)
            self._retry_later(job.id, 30.0)
        except Exception as exc:
            if not self._disk_trouble(exc):
                raise
            self._retry_later(job.id, self.disk_full_wait)

    def _enter_signed_out(self) -> None:
        if not self.waiting_for_sign_in:
            log.warning("signed out: uploads wait until you sign in again; nothing is lost")
            self.waiting_for_sign_in = True
            self._announce()
        if self._keychain_poll is None or self._keychain_poll.done():
            self._keychain_poll = asyncio.get_running_loop().create_task(self._poll_keychain())

    async def _poll_keychain(self) -> None:
        """Another process (``postflow login``) may sign in: pick its tokens up. A sign-in that
        happened while a refresh was in flight is noticed here too."""
        while self.waiting_for_sign_in:
            if self._auth.provider.tokens is not None:
                await self._signed_in()
                return
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
            account = (await self._frameio.accounts())[0].id
        return account

    # ---- one job ----
    async def _run(self, job: Job) -> None:
        try:
            await self._attempt(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, or our own disk is full (even while recording an error)
            if self._disk_trouble(exc):
                self._stranded.add(job.id)  # put back to pending once the disk has room
                self._retry_later(job.id, self.disk_full_wait)
                return
            log.exception("%s: unexpected error", job.rel_path)
            await self._set(job, JobState.FAILED, last_error=f"Unexpected error: {exc}")
        finally:
            self._last_progress.pop(job.id, None)
            self._wake.set()

    async def _attempt(self, job: Job) -> None:
        started_job = await self._cas(job.id, JobState.UPLOADING, (JobState.PENDING,),
                                      attempts=job.attempts + 1)  # fmt: skip
        if started_job is None:
            return  # cancelled or paused since the scheduler looked
        job = started_job
        if self._blocked():  # paused, signed out or another account since the scheduler looked
            await self._cas(job.id, JobState.PENDING, (JobState.UPLOADING,), attempts=job.attempts - 1)
            return
        try:
            log.info("%s: upload started (attempt %d)", job.rel_path, job.attempts)
            started = time.monotonic()
            root = self._roots[job.root_id]
            account_id = await self._account_id(job)
            sha256, skipped = await self._touched_only(job, root, account_id)
            if skipped:
                return
            folder_id = await self._resolver.folder_for(account_id, root, job.rel_dir)
            sha256 = await self._uploader.upload(job, root, account_id, folder_id, sha256)
            failpoints.hit("before_done")
            up = await self.store.upload_state(job.id)
            done = await self._cas(
                job.id, JobState.DONE, (JobState.UPLOADING,), last_error=None, sha256=sha256,
                remote_file_id=up.remote_file_id,
            )  # fmt: skip
            if done is None:
                log.info("%s: delivered, but it was cancelled meanwhile", job.rel_path)
                return
            seconds = max(time.monotonic() - started, 1e-6)
            log.info("%s: delivered to Frame.io (%d bytes in %.1fs, %.1f MB/s)", job.rel_path, job.size,
                     seconds, job.size / seconds / 1e6)  # fmt: skip
        except SignedOut as exc:
            await self._set(job, JobState.PENDING, last_error=exc.message)
            if self._auth.provider.tokens is None:
                self._enter_signed_out()
            else:  # signed in again meanwhile: just go on
                self._retry_later(job.id, 1.0)
        except SourceUnavailable as exc:  # a volume went away: wait for it, lose nothing
            log.warning("%s: %s", job.rel_path, exc.message)
            self._retry_later(job.id, 15.0)
            await self._set(job, JobState.PENDING, last_error=exc.message)
        except FileChanged as exc:
            log.info("%s: %s", job.rel_path, exc.message)
            await self._set(job, JobState.CANCELLED, last_error=exc.message)
            self._watcher.forget(job.root_id, job.rel_path)
        except PostFlowError as exc:
            await self._failed(job, exc)

    async def _touched_only(self, job: Job, root: WatchRoot, account_id: str) -> tuple[str | None, bool]:
        """A delivered version of this path and size exists: if the bytes are the same (only the
        mtime changed: ``touch``, a copy back), record the job as done without uploading.
        Returns the file's SHA-256 if it was computed (the upload reuses it) and whether the
        job is settled without an upload."""
        prior = await self.store.delivered_version(job.root_id, job.rel_path, job.size)
        if prior is None or prior.id == job.id:
            return None, False
        await self._uploader.check_source(job, root)
        hashing = BackgroundHash(job.abs_path, self._hash_executor, (job.size, job.mtime_ns))
        try:  # stops when the job does
            digest = await hashing.digest()
        finally:
            hashing.stop()
        if digest is None or digest != prior.sha256 or not prior.remote_file_id:
            return digest, False  # not comparable (changed, unreadable) or different: upload
        try:
            await self._frameio.file(account_id, prior.remote_file_id)
        except NotFound:
            log.info("%s: unchanged, but its upload was deleted from Frame.io; uploading again", job.rel_path)
            return digest, False
        log.info("%s: touched, content unchanged: not uploaded again", job.rel_path)
        await self._cas(job.id, JobState.DONE, (JobState.UPLOADING,), sha256=digest, note=TOUCHED_NOTE,
                        remote_file_id=prior.remote_file_id, last_error=None)  # fmt: skip
        return digest, True

    def _retry_later(self, job_id: int, wait: float) -> None:
        self._not_before[job_id] = time.monotonic() + wait
        asyncio.get_running_loop().call_later(wait, self._wake.set)

    async def _failed(self, job: Job, exc: PostFlowError) -> None:
        """Retryable trouble (network, throttling, outages) retries forever, at most 5 minutes
        apart: an overnight outage must not leave a queue of failures. Trouble that rarely
        heals by itself (a refusal, an unreadable file) gets a few tries of its own, whatever
        else interrupted the job meanwhile; final errors stop at once."""
        limit = attempt_limit(exc)
        refusals = job.refusals + 1 if limit is not None else job.refusals
        if exc.retryable and (limit is None or refusals < limit):
            wait = min(RETRY_CAP, self.retry_base * 2 ** min(job.attempts - 1, 10))
            log.warning("%s: %s (attempt %d, next in %.0fs)", job.rel_path, exc.message, job.attempts, wait)
            self._retry_later(job.id, wait)
            await self._set(job, JobState.PENDING, last_error=exc.message, refusals=refusals)
            return
        self._resolver.forget()  # a 404 may mean a folder was deleted: look again next time
        after = f" (after {refusals} tries)" if limit is not None else ""
        log.error("%s: %s: %s%s", job.rel_path, exc.title, exc.message, after)
        await self._set(
            job, JobState.FAILED, last_error=f"{exc.title}: {exc.message}{after}", refusals=refusals
        )


def moved_root(root: WatchRoot, new_path: str) -> WatchRoot:
    real = resolved(new_path)
    return replace(root, id=root_id_for(real), path=real, legacy_ids=())
