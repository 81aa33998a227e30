"""The scheduler: decides what runs when, runs one job's attempt, and removes what given-up jobs
left on Frame.io.

At most ``max_concurrent`` uploads, one job per file path at a time, none while blocked
(paused, signed out, another account). Whatever a given-up job left on Frame.io (a placeholder,
a half-sent upload) is removed one path at a time, before a newer version of that path starts.
Every change goes through the ``JobBoard`` (stored, then published).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.auth.token_provider import TokenProvider
from app.core.errors import PostFlowError, ServiceUnavailable, SignedOut
from app.core.jobs import Job, JobState, WatchRoot
from app.engine import failpoints
from app.engine.account_guard import AccountGuard
from app.engine.content_hash import BackgroundHash, is_legacy
from app.engine.destinations import DestinationResolver
from app.engine.job_board import JobBoard
from app.engine.queue_store import QueueStore
from app.engine.root_health import RootMonitor
from app.engine.upload_errors import FileChanged, NameRefused, SourceUnavailable, attempt_limit
from app.engine.upload_router import UploadRouter
from app.engine.version_stacker import follow_up_fields, routed_dir
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound
from app.frameio.names import name_problem

log = logging.getLogger(__name__)
NETWORK = "network"  # health component: Frame.io or its storage cannot be reached at all
RETRY_CAP = 300.0  # retryable failures keep retrying, never more than 5 minutes apart
TOUCHED_NOTE = "Touched, content unchanged: not uploaded again."
HealthReport = Callable[[str, str | None], None]


class Scheduler:
    def __init__(
        self,
        *,
        store: QueueStore,
        board: JobBoard,
        uploader: UploadRouter,
        resolver: DestinationResolver,
        frameio: FrameioClient,
        provider: TokenProvider,
        guard: AccountGuard,
        monitor: RootMonitor,
        roots: Mapping[str, WatchRoot],
        hash_executor: ThreadPoolExecutor,
        forget_file: Callable[[str, str], None],
        health: HealthReport,
        default_account: str,
        data_dir: str,
        max_concurrent: int,
        is_paused: Callable[[], bool],
    ) -> None:
        self._store = store
        self._board = board
        self._uploader = uploader
        self._resolver = resolver
        self._frameio = frameio
        self._provider = provider
        self._guard = guard
        self._monitor = monitor
        self._roots = roots  # the engine's live mapping: roots added or removed show at once
        self._hash_executor = hash_executor
        self._forget_file = forget_file
        self._health = health
        self._default_account = default_account
        self._data_dir = data_dir
        self._is_paused = is_paused
        self.max_concurrent = max_concurrent
        self.order = "oldest"  # or "smallest": within a priority, what starts first
        self.running: dict[int, asyncio.Task[None]] = {}
        self.running_jobs: dict[int, Job] = {}
        self.cleaning: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._stranded: set[int] = set()  # could not be put back to pending (disk full): retried
        self._not_before: dict[int, float] = {}  # clean-ups only; a pending job's next try is in SQL
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._before_each_pass: Callable[[], Any] | None = None
        self.retry_base = 5.0  # seconds before the first retry; doubles per attempt up to RETRY_CAP
        self.disk_full_wait = 30.0  # our own disk is full: look again this often

    # ---- lifecycle ----
    def start(self, before_each_pass: Callable[[], Any]) -> None:
        """``before_each_pass`` (a coroutine function) runs before every pass: saving what the
        engine must not forget, whatever woke the scheduler."""
        self._before_each_pass = before_each_pass
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="scheduler")
        self.wake()

    async def stop(self) -> None:
        cleaning = [task for _, task in self.cleaning.values()]
        for task in (self._task, *cleaning):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.halt_all(list(self.running), JobState.PENDING)

    def wake(self) -> None:
        self._wake.set()

    def blocked(self) -> bool:
        return self._is_paused() or self._guard.blocked

    # ---- halting ----
    async def halt_all(self, job_ids: list[int], then: JobState, **changes: Any) -> None:
        """Stop these uploads together (each may wait a moment for a create's answer), then
        record where they stand."""
        tasks = {job_id: self.running.pop(job_id) for job_id in job_ids if job_id in self.running}
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for job_id in tasks:
            await self._board.cas(job_id, then, (JobState.UPLOADING,), **changes)

    def cancel_cleanups(self) -> None:
        for _, task in list(self.cleaning.values()):
            task.cancel()

    def clear_retry(self, job_id: int) -> None:
        self._not_before.pop(job_id, None)
        self._board.retry_at(job_id, None)

    def retry_later(self, job_id: int, wait: float) -> float:
        """Not before ``wait`` seconds: returns that wall-clock time, which a job put back to
        pending stores with it (``not_before``) so the scheduler's query leaves it out."""
        self._not_before[job_id] = time.monotonic() + wait
        until = time.time() + wait
        self._board.retry_at(job_id, until)
        asyncio.get_running_loop().call_later(wait, self._wake.set)
        return until

    # ---- the loop ----
    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if self._before_each_pass is not None:
                    await self._before_each_pass()
                self._monitor.expect_files(await self._store.roots_with_work(self._roots))
                await self._unstrand()
                await self.start_what_fits()
                self._health("disk", None)
            except Exception as exc:  # e.g. the disk is full: say so, keep the scheduler alive
                if not self.disk_trouble(exc):
                    log.exception("could not start uploads; trying again shortly")
                await asyncio.sleep(min(5.0, self.disk_full_wait))
                self._wake.set()

    def disk_trouble(self, exc: BaseException) -> bool:
        full = isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()
        if full or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            self._health(
                "disk",
                f"The disk holding PostFlow's data ({self._data_dir}) is full. Free some "
                "space: uploads resume by themselves and nothing is lost.",
            )
            return True
        return False

    async def _unstrand(self) -> None:
        for job_id in list(self._stranded):
            await self._store.transition(job_id, JobState.PENDING, (JobState.UPLOADING,),
                                         not_before=time.time() + self.disk_full_wait)  # fmt: skip
            self._stranded.discard(job_id)

    async def start_what_fits(self) -> None:
        if self.blocked():
            return
        if self._provider.tokens is None:
            self._guard.enter_signed_out()
            return
        now = time.monotonic()
        busy = [*self.running_jobs.values(), *(job for job, _ in self.cleaning.values())]
        busy_paths = {(j.root_id, j.rel_path) for j in busy}
        await self._start_cleanups(busy_paths, now)
        slots = self.max_concurrent - len(self.running)
        if slots <= 0:
            return
        # Roots removed keep their jobs (not uploaded); a volume away holds its jobs (the health
        # says so). Enough rows are read to fill the free slots past those that must wait.
        want = slots + len(busy_paths) + len(self.running)
        for job in await self._store.ready_jobs(want, time.time(), self._tiers(), self.order):
            if slots <= 0:
                break
            if job.id in self.running or (job.root_id, job.rel_path) in busy_paths:
                continue  # just started, or another version (or its clean-up) of the path running
            slots -= 1
            busy_paths.add((job.root_id, job.rel_path))
            self.running_jobs[job.id] = job
            task = asyncio.get_running_loop().create_task(self._run(job))
            self.running[job.id] = task
            task.add_done_callback(functools.partial(self._job_finished, job.id))

    def _tiers(self) -> list[list[str]]:
        """Reachable watch folders, grouped by priority, highest first."""
        tiers: dict[int, list[str]] = {}
        for root in self._roots.values():
            if self._monitor.problem(root.id) is None:
                tiers.setdefault(root.priority, []).append(root.id)
        return [tiers[p] for p in sorted(tiers, reverse=True)]

    def _job_finished(self, job_id: int, task: asyncio.Task[None]) -> None:
        """Runs even for a task cancelled before its first step (whose ``finally`` never ran):
        the path must never stay marked busy."""
        if self.running.get(job_id) is task:
            self.running.pop(job_id)
        if job_id not in self.running:
            self.running_jobs.pop(job_id, None)
            self._board.stopped(job_id)
        if not task.cancelled() and task.exception() is not None:
            log.error("an upload stopped on an unexpected error", exc_info=task.exception())
        self._wake.set()

    # ---- removing what given-up jobs left on Frame.io ----
    async def _start_cleanups(self, busy_paths: set[tuple[str, str]], now: float) -> None:
        tokens = self._provider.tokens
        for job in await self._store.unfinished_uploads():
            key = (job.root_id, job.rel_path)
            if job.id in self.cleaning or key in busy_paths or self._not_before.get(job.id, 0) > now:
                continue
            busy_paths.add(key)  # no new version of this path starts while its leftovers go
            task = asyncio.get_running_loop().create_task(
                self._clean(job, tokens.account_id if tokens else None)
            )
            self.cleaning[job.id] = (job, task)

            def finished(t: asyncio.Task[None], job_id: int = job.id) -> None:
                self.cleaning.pop(job_id, None)
                if not t.cancelled() and t.exception() is not None:
                    log.error("clean-up stopped on an unexpected error", exc_info=t.exception())
                self._wake.set()

            task.add_done_callback(finished)

    async def _clean(self, job: Job, current_account: str | None) -> None:
        up = await self._store.upload_state(job.id)
        account = up.account_id or current_account
        if account is None or account != current_account:
            self._not_before[job.id] = time.monotonic() + RETRY_CAP  # another account's: not ours to touch
            return
        try:
            fresh = await self._store.get(job.id)  # a user's cancel may have come since
            if (
                fresh is not None
                and not fresh.cancelled_by_user
                and await self._uploader.delivered(job, up, account)
            ):
                # Complete before it was moved, changed or replaced: that version is delivered.
                log.info("%s: its upload had completed; kept on Frame.io", job.rel_path)
                note = "Delivered before the file was moved or changed."
                kept = {"remote_file_id": up.remote_file_id, "note": note,
                        "review_state": "waiting", "review_at": time.time()}  # fmt: skip
                await self._board.cas(job.id, JobState.DONE, (JobState.CANCELLED, JobState.FAILED), **kept)
                return
            if up.remote_file_id:
                log.info("%s: removing its unfinished upload from Frame.io", job.rel_path)
            await self._uploader.discard(job, up, account)
        except PostFlowError as exc:
            log.info("%s: could not remove the unfinished upload yet: %s", job.rel_path, exc.message)
            self.retry_later(job.id, 30.0)
        except Exception as exc:
            if not self.disk_trouble(exc):
                raise
            self.retry_later(job.id, self.disk_full_wait)

    async def account_for(self, job: Job) -> str:
        return await self._account_id(job)

    async def _account_id(self, job: Job) -> str:
        root = self._roots.get(job.root_id)
        tokens = self._provider.tokens
        account = root.account_id if root else ""
        account = account or (tokens.account_id if tokens else "") or self._default_account
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
            if self.disk_trouble(exc):
                self._stranded.add(job.id)  # put back to pending once the disk has room
                self.retry_later(job.id, self.disk_full_wait)
                return
            log.exception("%s: unexpected error", job.rel_path)
            await self._board.set(job, JobState.FAILED, last_error=f"Unexpected error: {exc}")
        finally:
            self._wake.set()

    async def _attempt(self, job: Job) -> None:
        self._board.retry_at(job.id, None)
        started_job = await self._board.cas(job.id, JobState.UPLOADING, (JobState.PENDING,),
                                            attempts=job.attempts + 1)  # fmt: skip
        if started_job is None:
            return  # cancelled or paused since the scheduler looked
        job = started_job
        if self.blocked():  # paused, signed out or another account since the scheduler looked
            await self._board.cas(job.id, JobState.PENDING, (JobState.UPLOADING,), attempts=job.attempts - 1)
            return
        started = time.monotonic()
        try:
            log.info("%s: upload started (attempt %d)", job.rel_path, job.attempts)
            problem = name_problem(job.rel_path)
            if problem is not None:
                raise NameRefused(problem)
            root = self._roots[job.root_id]
            account_id = await self._account_id(job)
            sha256, skipped = await self._touched_only(job, root, account_id)
            if skipped:
                return
            folder_id = await self._resolver.folder_for(account_id, root, routed_dir(root, job.rel_path))
            sha256 = await self._uploader.upload(job, root, account_id, folder_id, sha256)
            failpoints.hit("before_done")
            up = await self._store.upload_state(job.id)
            done = await self._board.cas(
                job.id, JobState.DONE, (JobState.UPLOADING,), last_error=None, sha256=sha256,
                remote_file_id=up.remote_file_id, review_state="waiting", review_at=time.time(),
                **follow_up_fields(root, job.rel_path),
            )  # fmt: skip
            if done is None:
                log.info("%s: delivered, but it was cancelled meanwhile", job.rel_path)
                return
            self._health(NETWORK, None)
            self._board.attempt_ended(job, "delivered", started)
            seconds = max(time.monotonic() - started, 1e-6)
            log.info("%s: delivered to Frame.io (%d bytes in %.1fs, %.1f MB/s)", job.rel_path, job.size,
                     seconds, job.size / seconds / 1e6)  # fmt: skip
        except SignedOut as exc:
            self._board.attempt_ended(job, "halted", started, exc)
            await self._board.set(job, JobState.PENDING, last_error=exc.message, error_title=exc.title,
                                  error_retryable=True)  # fmt: skip
            if self._provider.tokens is None:
                self._guard.enter_signed_out()
            else:  # signed in again meanwhile: just go on
                await self._store.transition(job.id, None, (JobState.PENDING,),
                                             not_before=self.retry_later(job.id, 1.0))  # fmt: skip
        except SourceUnavailable as exc:  # a volume went away: wait for it, lose nothing
            log.warning("%s: %s", job.rel_path, exc.message)
            self._board.attempt_ended(job, "retry", started, exc)
            until = self.retry_later(job.id, 15.0)
            await self._board.set(job, JobState.PENDING, last_error=exc.message, error_title=exc.title,
                                  error_retryable=True, not_before=until)  # fmt: skip
        except FileChanged as exc:
            log.info("%s: %s", job.rel_path, exc.message)
            self._board.attempt_ended(job, "cancelled", started, exc)
            await self._board.set(job, JobState.CANCELLED, last_error=exc.message, error_title=exc.title,
                                  error_retryable=False)  # fmt: skip
            self._forget_file(job.root_id, job.rel_path)
        except PostFlowError as exc:
            await self._failed(job, exc, started)

    async def _touched_only(self, job: Job, root: WatchRoot, account_id: str) -> tuple[str | None, bool]:
        """A delivered version of this path and size exists: if the bytes are the same (only the
        mtime changed: ``touch``, a copy back), record the job as done without uploading.
        Returns the file's content digest if it was computed (the upload reuses it) and whether the
        job is settled without an upload."""
        prior = await self._store.delivered_version(job.root_id, job.rel_path, job.size)
        if prior is None or prior.id == job.id:
            return None, False
        await self._uploader.check_source(job, root)
        legacy = is_legacy(prior.sha256)  # delivered by an older PostFlow: compare its way
        hashing = BackgroundHash(job.abs_path, self._hash_executor, (job.size, job.mtime_ns), legacy=legacy)
        try:  # stops when the job does
            digest = await hashing.digest()
        finally:
            hashing.stop()
        if digest is None or digest != prior.sha256 or not prior.remote_file_id:
            # not comparable (changed, unreadable) or different: upload (with a current digest)
            return (None if legacy else digest), False
        try:
            await self._frameio.file(account_id, prior.remote_file_id)
        except NotFound:
            log.info("%s: unchanged, but its upload was deleted from Frame.io; uploading again", job.rel_path)
            return digest, False
        log.info("%s: touched, content unchanged: not uploaded again", job.rel_path)
        await self._board.cas(job.id, JobState.DONE, (JobState.UPLOADING,), sha256=digest, note=TOUCHED_NOTE,
                              remote_file_id=prior.remote_file_id, remote_url=prior.remote_url,
                              last_error=None)  # fmt: skip
        return digest, True

    async def _failed(self, job: Job, exc: PostFlowError, started: float) -> None:
        """Retryable trouble (network, throttling, outages) retries forever, at most 5 minutes
        apart: an overnight outage must not leave a queue of failures. Trouble that rarely
        heals by itself (a refusal, an unreadable file) gets a few tries of its own, whatever
        else interrupted the job meanwhile; final errors stop at once."""
        if isinstance(exc, ServiceUnavailable) and exc.status is None:
            self._health(NETWORK, exc.message)
        limit = attempt_limit(exc)
        refusals = job.refusals + 1 if limit is not None else job.refusals
        if exc.retryable and (limit is None or refusals < limit):
            wait = min(RETRY_CAP, self.retry_base * 2 ** min(job.attempts - 1, 10))
            log.warning("%s: %s (attempt %d, next in %.0fs)", job.rel_path, exc.message, job.attempts, wait)
            self._board.attempt_ended(job, "retry", started, exc)
            until = self.retry_later(job.id, wait)
            await self._board.set(job, JobState.PENDING, last_error=exc.message, error_title=exc.title,
                                  error_retryable=True, refusals=refusals, not_before=until)  # fmt: skip
            return
        self._resolver.forget()  # a 404 may mean a folder was deleted: look again next time
        after = f" (after {refusals} tries)" if limit is not None else ""
        log.error("%s: %s: %s%s", job.rel_path, exc.title, exc.message, after)
        self._board.attempt_ended(job, "failed", started, exc)
        await self._board.set(job, JobState.FAILED, last_error=f"{exc.message}{after}", error_title=exc.title,
                              error_retryable=exc.retryable, refusals=refusals)  # fmt: skip
