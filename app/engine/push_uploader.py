"""Push upload (Frame.io local upload) of one job, resumable and exactly once.

1. Placeholder: ``local_upload`` is not idempotent. Before calling it we persist
   ``create_started_at``; right after, the file id and part URLs. If the answer was lost (or we
   crashed in between), placeholders of this name and size still in ``created`` are deleted
   before creating again, so Frame.io never keeps a duplicate.
2. Resume: a job that already has a placeholder first asks Frame.io how far it got: a file whose
   last part landed before a crash is verified, not sent again; a placeholder that is gone or
   failed is replaced.
3. Parts: PUT in parallel (``parts_per_file``), each streamed from disk in 1 MiB chunks (never a
   whole part in memory) with the two signed headers and no Authorization. Each finished part is
   persisted, so a restart sends only what is missing. Part failures are retried with backoff.
   A file rewritten during the upload is caught (size and mtime of the open handle) and its
   placeholder deleted: the new version is uploaded as its own job.
4. Expired URLs (or a 403/404 from storage): delete the placeholder and start again.
5. Verify: poll the status until ``upload_complete`` and check the size Frame.io reports.
   ``upload_failed``: delete the placeholder and upload as a new file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

import httpx

from app.core.errors import PostFlowError, ServiceUnavailable
from app.core.jobs import Job
from app.engine.bandwidth import BandwidthLimiter
from app.engine.part_urls import earliest_expiry
from app.engine.queue_store import QueueStore
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound, OutcomeUnknown
from app.frameio.models import UploadStatus

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
EXPIRY_MARGIN = 600.0  # do not start parts on URLs that die within 10 minutes
PART_ATTEMPTS = 8
MAX_RECREATES = 3
LOG_EVERY = 100 * 1000 * 1000


class FileChanged(PostFlowError):
    title = "File changed"


class SourceUnavailable(PostFlowError):
    """The watched volume is not reachable: wait for it, never give up on the file."""

    title = "Watched folder unreachable"
    retryable = True


class PartUrlRejected(PostFlowError):
    """Storage refused the presigned URL (expired, not ours, or already complete)."""

    title = "Upload link refused"
    retryable = True


class UploadFailed(PostFlowError):
    title = "Upload failed"
    retryable = True


ProgressCallback = Callable[[int, int], None]  # job id, bytes done


class PushUploader:
    def __init__(
        self,
        store: QueueStore,
        client: FrameioClient,
        parts_http: httpx.AsyncClient,
        bandwidth: BandwidthLimiter,
        parts_per_file: int,
        on_progress: ProgressCallback,
    ) -> None:
        self._store = store
        self._client = client
        self._http = parts_http
        self._bandwidth = bandwidth
        self._parts_per_file = parts_per_file
        self._on_progress = on_progress
        self._rng = random.Random()
        self.outcome_wait = 30.0  # after an unconfirmed create: a 5xx asks for ≥ 30 s (BRIEF §3)

    async def upload(self, job: Job, account_id: str, folder_id: str) -> Job:
        await check_source_async(job)
        check_remote = job.remote_file_id is not None  # resuming: Frame.io may already have it all
        start_over = False
        for _ in range(MAX_RECREATES + 1):
            job = await self._ensure_placeholder(job, account_id, folder_id)
            if check_remote:
                check_remote = False
                status = await self._remote_status(job, account_id)
                if status is not None and status.complete and await self._verified(job, account_id):
                    return job
                start_over = start_over or status is None or status.failed
            expiring = job.urls_expire_at is not None and job.urls_expire_at - EXPIRY_MARGIN < time.time()
            if start_over or expiring:
                why = "upload links expired" if expiring else "the unfinished upload cannot be continued"
                log.info("%s: %s; starting the upload again", job.rel_path, why)
                job = await self._discard(job, account_id)
                start_over = False
                continue
            try:
                job = await self._send_parts(job)
                await check_source_async(job)
            except PartUrlRejected as exc:
                log.info("%s: %s", job.rel_path, exc.message)
                check_remote = start_over = True  # complete already (a lost answer)? else anew
                continue
            except FileChanged:
                await self._discard(job, account_id)
                raise
            if await self._verified(job, account_id):
                return job
            log.warning("%s: Frame.io could not assemble the upload; uploading it again", job.rel_path)
            start_over = True
        raise UploadFailed(f"Frame.io did not accept {job.name} after {MAX_RECREATES} tries.")

    async def _remote_status(self, job: Job, account_id: str) -> UploadStatus | None:
        """What Frame.io knows of our placeholder; None if it is gone."""
        assert job.remote_file_id is not None
        try:
            return await self._client.upload_status(account_id, job.remote_file_id)
        except NotFound:
            return None

    # ---- 1. placeholder ----
    async def _ensure_placeholder(self, job: Job, account_id: str, folder_id: str) -> Job:
        if job.remote_file_id and job.parts:
            return job
        if job.create_started_at is not None:
            await self._remove_lost_placeholders(job, account_id, folder_id)
        job = await self._store.update(job.id, create_started_at=time.time())
        try:
            upload = await self._client.create_local_upload(account_id, folder_id, job.name, job.size)
        except OutcomeUnknown as exc:
            log.info("%s: %s; checking before creating again", job.rel_path, exc.message)
            await asyncio.sleep(self.outcome_wait)
            await self._remove_lost_placeholders(job, account_id, folder_id)
            upload = await self._client.create_local_upload(account_id, folder_id, job.name, job.size)
        parts = tuple((p.size, p.url) for p in upload.parts)
        if sum(size for size, _ in parts) != job.size:
            await self._client.delete_file(account_id, upload.file.id)
            raise UploadFailed(f"Frame.io split {job.name} into parts that do not add up to its size.")
        log.info("%s: created on Frame.io as %s (%d parts)", job.rel_path, upload.file.id, len(parts))
        return await self._store.update(
            job.id, remote_file_id=upload.file.id, parts=parts, parts_done=frozenset(), bytes_done=0,
            urls_expire_at=earliest_expiry(url for _, url in parts), media_type=upload.file.media_type,
        )  # fmt: skip

    async def _remove_lost_placeholders(self, job: Job, account_id: str, folder_id: str) -> None:
        for remote in await self._client.files_in(account_id, folder_id):
            if (
                remote.name == job.name
                and remote.file_size == job.size
                and remote.status == "created"
                and remote.id != job.remote_file_id
            ):
                log.info(
                    "%s: removing placeholder %s left by an interrupted attempt", job.rel_path, remote.id
                )
                await self._client.delete_file(account_id, remote.id)

    async def _discard(self, job: Job, account_id: str) -> Job:
        if job.remote_file_id:
            await self._client.delete_file(account_id, job.remote_file_id)
        return await self._store.update(
            job.id, remote_file_id=None, parts=(), parts_done=frozenset(), bytes_done=0,
            urls_expire_at=None, create_started_at=None,
        )  # fmt: skip

    # ---- 3. parts ----
    async def _send_parts(self, job: Job) -> Job:
        offsets = []
        offset = 0
        for size, _ in job.parts:
            offsets.append(offset)
            offset += size
        done = sum(job.parts[i][0] for i in job.parts_done)
        in_flight: dict[int, int] = {}
        state = {"done": done, "logged": done // LOG_EVERY}
        gate = asyncio.Semaphore(self._parts_per_file)

        def sent(index: int, amount: int) -> None:
            in_flight[index] = in_flight.get(index, 0) + amount
            total = state["done"] + sum(in_flight.values())
            self._on_progress(job.id, total)
            if total // LOG_EVERY > state["logged"]:
                state["logged"] = total // LOG_EVERY
                log.info("%s: %d MB of %d MB sent", job.rel_path, total // 10**6, job.size // 10**6)

        async def one(index: int) -> None:
            async with gate:
                size, url = job.parts[index]
                await self._put_part(job, index, offsets[index], size, url, sent, in_flight)
                in_flight.pop(index, None)
                state["done"] += size
                await self._store.mark_part_done(job.id, index, size)

        pending = [i for i in range(len(job.parts)) if i not in job.parts_done]
        # Plain tasks, not a TaskGroup: on 3.11 a failing child leaves the parent's cancel
        # count raised, which would make a part's failure look like a user's cancel.
        tasks = [asyncio.ensure_future(one(index)) for index in pending]
        try:
            if tasks:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failures = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
        if failures:
            raise _most_telling([f for f in failures if f is not None])
        fresh = await self._store.get(job.id)
        assert fresh is not None
        return fresh

    async def _put_part(
        self,
        job: Job,
        index: int,
        offset: int,
        size: int,
        url: str,
        sent: Callable[[int, int], None],
        in_flight: dict[int, int],
    ) -> None:
        media_type = job.media_type or "application/octet-stream"  # signed into the URL: exact
        headers = {"x-amz-acl": "private", "Content-Type": media_type, "Content-Length": str(size)}
        for attempt in range(1, PART_ATTEMPTS + 1):
            in_flight[index] = 0
            # The PUT owns the file handle: httpx may drop the body generator unclosed on cancel.
            try:
                handle = await _open_for_reading(job.abs_path)
            except FileNotFoundError:
                await check_source_async(job)
                raise
            except OSError as exc:
                raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None
            try:
                body = self._read(handle, job, offset, size, lambda n: sent(index, n))
                response = await self._http.put(url, content=body, headers=headers)
            except (FileChanged, SourceUnavailable):
                raise
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    st = await asyncio.to_thread(os.fstat, handle.fileno())
                    if st.st_size != job.size or st.st_mtime_ns != job.mtime_ns:
                        raise FileChanged(f"{job.name} changed while it was being uploaded.")
                    return
                if response.status_code in (403, 404):
                    raise PartUrlRejected(f"storage refused part {index + 1} (HTTP {response.status_code})")
                if response.status_code in (400, 411):
                    await check_source_async(job)
                    raise UploadFailed(f"storage refused part {index + 1}: {response.text[:200]}")
                problem = f"HTTP {response.status_code}"
            finally:
                handle.close()  # read-only: closing never waits on a flush
            wait = min(60.0, 2 ** (attempt - 1)) * (1 + self._rng.random() / 2)
            log.info("%s: part %d/%d failed (%s), retry %d in %.1fs", job.rel_path, index + 1,
                     len(job.parts), problem, attempt, wait)  # fmt: skip
            await asyncio.sleep(wait)
        raise ServiceUnavailable(f"Upload storage keeps failing for {job.name}; will try again later.")

    async def _read(
        self, handle: BinaryIO, job: Job, offset: int, size: int, sent: Callable[[int], None]
    ) -> AsyncIterator[bytes]:
        try:
            await asyncio.to_thread(handle.seek, offset)
            remaining = size
            while remaining > 0:
                chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
                if not chunk:
                    raise FileChanged(f"{job.name} got shorter while it was being uploaded.")
                remaining -= len(chunk)
                await self._bandwidth.consume(len(chunk))
                sent(len(chunk))
                yield chunk
        except OSError as exc:  # the volume went away mid-read
            raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None

    # ---- 5. verify ----
    async def _verified(self, job: Job, account_id: str) -> bool:
        assert job.remote_file_id is not None
        delay = 0.25
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            status = await self._client.upload_status(account_id, job.remote_file_id)
            if status.failed:
                return False
            if status.complete:
                remote = await self._client.file(account_id, job.remote_file_id)
                if remote.file_size != job.size:
                    log.warning(
                        "%s: Frame.io reports %d bytes, expected %d", job.rel_path, remote.file_size, job.size
                    )
                    return False
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise ServiceUnavailable(f"Frame.io has not finished processing {job.name} after 30 minutes.")


def _open_rb(path: str) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115 - closed by the caller, even when cancelled


async def _open_for_reading(path: str) -> BinaryIO:
    """Open in a worker thread; if we are cancelled meanwhile, the handle is still closed."""
    opening: asyncio.Future[BinaryIO] = asyncio.get_running_loop().run_in_executor(None, _open_rb, path)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:

        def close_late(done: asyncio.Future[BinaryIO]) -> None:
            if not done.cancelled() and done.exception() is None:
                done.result().close()

        opening.add_done_callback(close_late)
        raise


async def check_source_async(job: Job) -> None:
    await asyncio.to_thread(check_source, job)


def check_source(job: Job) -> None:
    """Blocking (run it in a thread): is the file still the version this job is about?

    A missing file under an unreachable watch folder (an unmounted volume) is "unavailable":
    wait for it. A missing file under a reachable watch folder was moved or deleted."""
    try:
        st = os.stat(job.abs_path)
    except FileNotFoundError:
        if not _root_reachable(job):
            raise SourceUnavailable(f"{job.abs_path} cannot be reached right now.") from None
        raise FileChanged(f"{job.name} was moved or deleted before it was uploaded.") from None
    except OSError as exc:
        raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None
    if st.st_size != job.size or st.st_mtime_ns != job.mtime_ns:
        raise FileChanged(f"{job.name} changed before it was uploaded; the new version is queued instead.")


def _root_reachable(job: Job) -> bool:
    root = job.abs_path[: len(job.abs_path) - len(job.rel_path)] or "."
    try:
        with os.scandir(root) as entries:
            next(entries, None)
        return True
    except OSError:
        return False


def _most_telling(failures: list[BaseException]) -> BaseException:
    """One part's failure stops the others; report the failure that decides what happens next."""
    for kind in (FileChanged, SourceUnavailable, PartUrlRejected, UploadFailed, PostFlowError):
        for exc in failures:
            if isinstance(exc, kind):
                return exc
    return failures[0]
