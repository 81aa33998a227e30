"""Push upload (Frame.io local upload) of one job, resumable and exactly once.

0. Before anything is created: the file must still be this version and readable.
1. Placeholder: ``local_upload`` is not idempotent. Before calling it we persist
   ``create_started_at`` (and the folder and account); right after, the file id and part URLs.
   If the answer was lost (or we crashed in between), placeholders of this name and size still
   in ``created`` that no job knows are deleted before creating again, once listings had time
   to catch up, so Frame.io never keeps a duplicate.
2. Resume: a job that already has a placeholder first asks Frame.io how far it got: a file whose
   last part landed before a crash is verified, not sent again; a placeholder that is gone or
   failed is replaced. A placeholder in another account than the signed-in one is left alone.
3. Parts: PUT in parallel (``parts_per_file``), each streamed from disk by a worker thread in
   4 MiB chunks (``part_sender.py``: never a whole part in memory, never a byte through the
   event loop) with the two signed headers and no Authorization. Each finished part is
   persisted (one row), so a restart sends only what is missing. Part failures are retried with
   backoff. A file rewritten during the upload is caught (size and mtime of the open handle).
   Meanwhile the file's content digest is computed by a sequential read in another thread.
4. Expired URLs, a storage 403/404, or storage unreachable for ``unreachable_renew_after``
   seconds: delete the placeholder and start again with new URLs.
5. Verify: poll the status until ``upload_complete`` and check the size Frame.io reports.
   ``upload_failed``: delete the placeholder and upload as a new file.
Whatever gives up (a refusal that repeats, a bounded number of recreations) deletes its
placeholder first: no attempt leaves one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import time
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, BinaryIO

import httpx

from app.core.errors import PostFlowError, ServiceUnavailable
from app.core.jobs import Job, JobPhase, UploadState, WatchRoot
from app.core.unabandoned import made_or_released
from app.engine import failpoints
from app.engine.bandwidth import BandwidthLimiter
from app.engine.content_hash import BackgroundHash
from app.engine.part_sender import PartSender
from app.engine.part_urls import earliest_expiry
from app.engine.queue_store import QueueStore
from app.engine.root_health import RootMonitor
from app.engine.upload_errors import (
    FileChanged,
    NotReadable,
    PartUrlRejected,
    SourceUnavailable,
    UploadRejected,
)
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound, OutcomeUnknown
from app.frameio.models import LocalUpload, UploadStatus

log = logging.getLogger(__name__)
EXPIRY_MARGIN = 600.0  # do not start parts on URLs that die within 10 minutes
PART_ATTEMPTS = 8
MAX_RECREATES = 3
LOG_EVERY = 100 * 1000 * 1000
VERIFY_TIMEOUT = 1800.0
CREATE_GRACE = 10.0  # how long a halted job waits for its create's answer
UNREACHABLE_GAP = 600.0  # failures further apart than this are not one outage
TRANSIENT_S3_CODES = frozenset(
    {"RequestTimeout", "IncompleteBody", "SlowDown", "InternalError", "ServiceUnavailable"}
)

ProgressCallback = Callable[[int, int], None]  # job id, bytes done
TroubleCallback = Callable[[Job, str], Awaitable[None]]  # still trying, but the user should know why


def remote_name(name: str) -> str:
    """macOS file systems hand out decomposed (NFD) names; Frame.io shows and searches NFC."""
    return unicodedata.normalize("NFC", name)


class PushUploader:
    def __init__(
        self,
        store: QueueStore,
        client: FrameioClient,
        parts_http: PartSender,
        bandwidth: BandwidthLimiter,
        parts_per_file: int,
        on_progress: ProgressCallback,
        monitor: RootMonitor,
        hash_executor: Executor,
        on_trouble: TroubleCallback,
    ) -> None:
        self._on_trouble = on_trouble
        self._store = store
        self._client = client
        self._http = parts_http
        self._bandwidth = bandwidth
        self.parts_per_file = parts_per_file
        self._on_progress = on_progress
        self._monitor = monitor
        self._hash_executor = hash_executor
        self._rng = random.Random()
        self.outcome_wait = 30.0  # after an unconfirmed create: a 5xx asks for ≥ 30 s (BRIEF §3)
        self.listing_settle = 30.0  # a placeholder may take this long to show in a listing
        self.unreachable_renew_after = 300.0  # storage never answering: new URLs after this
        self.verify_timeout = VERIFY_TIMEOUT
        self._unreachable: dict[int, tuple[float, float]] = {}  # job id → (first, last) failure
        self._creating: dict[int, asyncio.Future[None]] = {}  # job id → its create step in flight
        self.on_phase: Callable[[int, JobPhase], None] = lambda job_id, phase: None

    async def upload(
        self, job: Job, root: WatchRoot, account_id: str, folder_id: str, sha256: str | None = None
    ) -> str | None:
        """Deliver the job's file; returns its SHA-256 (None if it could not be taken)."""
        up = await self._store.upload_state(job.id)
        if up.remote_file_id and up.account_id and up.account_id != account_id:
            log.warning("%s: an unfinished upload was left in account %s; starting in account %s",
                        job.rel_path, up.account_id, account_id)  # fmt: skip
            await self._store.clear_upload(job.id)
            up = await self._store.upload_state(job.id)
        if up.folder_id and up.folder_id != folder_id and (up.remote_file_id or up.create_started_at):
            # The watch folder's destination changed: what was begun in the old folder goes,
            # unless it had completed there (then that is where this version was delivered).
            if await self.delivered(job, up, account_id):
                return None
            log.info("%s: its destination changed; starting again in the new folder", job.rel_path)
            up = await self.discard(job, up, account_id)
        try:
            await self.check_source(job, root)
        except FileChanged:
            # Moved or rewritten after every byte went: what Frame.io holds is this version.
            if await self.delivered(job, up, account_id):
                log.info("%s: already delivered before it was moved or changed", job.rel_path)
                return None
            raise
        hashing = (
            None if sha256 else BackgroundHash(job.abs_path, self._hash_executor, (job.size, job.mtime_ns))
        )
        try:
            await self._deliver(job, root, up, account_id, folder_id)
            self._unreachable.pop(job.id, None)
            return sha256 or await hashing.digest()  # type: ignore[union-attr]
        finally:
            if hashing is not None:
                hashing.stop()

    async def delivered(self, job: Job, up: UploadState, account_id: str) -> bool:
        """Every part went out and passed its version check, and Frame.io completes the upload
        at the right size (waiting while it assembles): this version is delivered. A part
        not recorded done may hold other bytes (a rewrite caught after its PUT): not this."""
        if not up.remote_file_id or not up.parts or len(up.parts_done) != len(up.parts):
            return False
        status = await self._remote_status(up, account_id)
        return status is not None and not status.failed and await self._verified(job, up, account_id)

    async def _deliver(
        self, job: Job, root: WatchRoot, up: UploadState, account_id: str, folder_id: str
    ) -> None:
        check_remote = up.remote_file_id is not None  # resuming: Frame.io may already have it all
        start_over = False
        for _ in range(MAX_RECREATES + 1):
            self.on_phase(job.id, JobPhase.CREATING)
            up = await self._ensure_placeholder(job, up, account_id, folder_id)
            if check_remote:
                check_remote = False
                status = await self._remote_status(up, account_id)
                if status is not None and status.complete and await self._verified(job, up, account_id):
                    return
                start_over = start_over or status is None or status.failed
            expiring = up.urls_expire_at is not None and up.urls_expire_at - EXPIRY_MARGIN < time.time()
            if start_over or expiring:
                why = "upload links expired" if expiring else "the unfinished upload cannot be continued"
                log.info("%s: %s; starting the upload again", job.rel_path, why)
                up = await self.discard(job, up, account_id)
                start_over = False
                continue
            try:  # each part checks, on its open file, that the bytes it sent are this version's
                self.on_phase(job.id, JobPhase.SENDING)
                up = await self._send_parts(job, root, up)
            except PartUrlRejected as exc:
                log.info("%s: %s", job.rel_path, exc.message)
                check_remote = start_over = True  # complete already (a lost answer)? else anew
                continue
            except UploadRejected:
                await self.discard(job, up, account_id)
                raise
            failpoints.hit("before_verify")
            self.on_phase(job.id, JobPhase.VERIFYING)
            if await self._verified(job, up, account_id):
                return
            log.warning("%s: Frame.io could not assemble the upload; uploading it again", job.rel_path)
            start_over = True
        await self.discard(job, up, account_id)
        raise UploadRejected(f"Frame.io did not accept {job.name} after {MAX_RECREATES} tries.")

    async def _remote_status(self, up: UploadState, account_id: str) -> UploadStatus | None:
        """What Frame.io knows of our placeholder; None if it is gone."""
        assert up.remote_file_id is not None
        try:
            return await self._client.upload_status(account_id, up.remote_file_id)
        except NotFound:
            return None

    # ---- 1. placeholder ----
    async def _ensure_placeholder(
        self, job: Job, up: UploadState, account_id: str, folder_id: str
    ) -> UploadState:
        earlier = self._creating.get(job.id)
        if earlier is not None and not earlier.done():  # a halted attempt's create, still answering
            await asyncio.wait([earlier])
            up = await self._store.upload_state(job.id)
        if up.remote_file_id and up.parts:
            return up
        if up.create_started_at is not None:  # an earlier create may have landed unseen
            await self.remove_lost_placeholders(job, up, account_id, up.folder_id or folder_id)
        try:
            await self._create_unhalted(job, account_id, folder_id)
        except OutcomeUnknown as exc:
            log.info("%s: %s; checking before creating again", job.rel_path, exc.message)
            await asyncio.sleep(self.outcome_wait)
            fresh = await self._store.upload_state(job.id)
            await self.remove_lost_placeholders(job, fresh, account_id, folder_id)
            await self._create_unhalted(job, account_id, folder_id)
        return await self._store.upload_state(job.id)

    async def _create_unhalted(self, job: Job, account_id: str, folder_id: str) -> None:
        """Mark, create, record: one step that a halt (pause, sign-out, stop) does not cut in
        half. It waits a little for the step to finish, so a placeholder is known, never left
        for the next attempt to hunt for once listings have settled. A step still running
        after that is waited for by the job's next attempt, and records only if it is still
        the job's latest create (else it deletes what it made)."""
        step = asyncio.ensure_future(self._create_and_record(job, account_id, folder_id))
        self._creating[job.id] = step
        step.add_done_callback(functools.partial(self._create_finished, job.id))
        await run_unhalted(step)

    def _create_finished(self, job_id: int, step: asyncio.Future[None]) -> None:
        if self._creating.get(job_id) is step:
            del self._creating[job_id]

    async def _create_and_record(self, job: Job, account_id: str, folder_id: str) -> None:
        # Marked before every create (not idempotent): a lost answer is looked for from here.
        mark = time.time()
        await self._store.update(job.id, create_started_at=mark, folder_id=folder_id, account_id=account_id)
        failpoints.hit("before_create")
        upload = await self._client.create_local_upload(
            account_id, folder_id, remote_name(job.name), job.size
        )
        await self._record(job, upload, account_id, mark)

    async def _record(self, job: Job, upload: LocalUpload, account_id: str, mark: float) -> None:
        failpoints.hit("after_create")
        parts = tuple((p.size, p.url) for p in upload.parts)
        if sum(size for size, _ in parts) != job.size:
            await self._client.delete_file(account_id, upload.file.id)
            raise UploadRejected(f"Frame.io split {job.name} into parts that do not add up to its size.")
        log.info("%s: created on Frame.io as %s (%d parts)", job.rel_path, upload.file.id, len(parts))
        expiry = earliest_expiry(url for _, url in parts)
        if not await self._store.record_upload(
            job.id,
            upload.file.id,
            upload.file.media_type,
            parts,
            expiry,
            mark=mark,
            remote_url=upload.file.view_url,
        ):
            log.info(
                "%s: a late answer's placeholder %s is not needed; removing it", job.rel_path, upload.file.id
            )
            await self._client.delete_file(account_id, upload.file.id)
            return
        failpoints.hit("after_record_id")

    async def remove_lost_placeholders(
        self, job: Job, up: UploadState, account_id: str, folder_id: str, *, settle: bool = True
    ) -> None:
        """Delete placeholders an interrupted create may have left: this name and size (or size
        0: a remote upload's file before it is fetched), still ``created``, and known to no job
        (a newer version of the file may be uploading)."""
        if settle and up.create_started_at is not None:  # listings can lag behind a create
            await asyncio.sleep(max(0.0, up.create_started_at + self.listing_settle - time.time()))
        known = await self._store.known_remote_ids()
        name = remote_name(job.name)
        for remote in await self._client.files_in(account_id, folder_id):
            if (
                remote.name == name
                and remote.file_size in (job.size, 0)
                and remote.status == "created"
                and (remote.id not in known)
            ):
                log.info(
                    "%s: removing placeholder %s left by an interrupted attempt", job.rel_path, remote.id
                )
                await self._client.delete_file(account_id, remote.id)

    async def discard(self, job: Job, up: UploadState, account_id: str) -> UploadState:
        """Remove whatever this job has on Frame.io, then forget it."""
        if up.remote_file_id:
            await self._client.delete_file(account_id, up.remote_file_id)
        elif up.create_started_at is not None and up.folder_id:
            await self.remove_lost_placeholders(job, up, account_id, up.folder_id)
        await self._store.clear_upload(job.id)
        return await self._store.upload_state(job.id)

    # ---- 3. parts ----
    async def _send_parts(self, job: Job, root: WatchRoot, up: UploadState) -> UploadState:
        offsets = []
        offset = 0
        for size, _ in up.parts:
            offsets.append(offset)
            offset += size
        done = sum(up.parts[i][0] for i in up.parts_done)
        in_flight: dict[int, int] = {}
        state = {"done": done, "logged": done // LOG_EVERY}
        gate = asyncio.Semaphore(self.parts_per_file)

        def sent(index: int, amount: int) -> None:
            in_flight[index] = in_flight.get(index, 0) + amount
            total = state["done"] + sum(in_flight.values())
            self._on_progress(job.id, total)
            if total // LOG_EVERY > state["logged"]:
                state["logged"] = total // LOG_EVERY
                log.info("%s: %d MB of %d MB sent", job.rel_path, total // 10**6, job.size // 10**6)

        async def one(index: int) -> None:
            async with gate:
                size, url = up.parts[index]
                await self._put_part(job, root, up, index, offsets[index], size, url, sent, in_flight)
                in_flight.pop(index, None)
                state["done"] += size
                failpoints.hit("after_part_recorded")

        pending = [i for i in range(len(up.parts)) if i not in up.parts_done]
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
        return await self._store.upload_state(job.id)

    async def _put_part(
        self,
        job: Job,
        root: WatchRoot,
        up: UploadState,
        index: int,
        offset: int,
        size: int,
        url: str,
        sent: Callable[[int, int], None],
        in_flight: dict[int, int],
    ) -> None:
        media_type = up.media_type or "application/octet-stream"  # signed into the URL: exact
        headers = {"x-amz-acl": "private", "Content-Type": media_type, "Content-Length": str(size)}
        for attempt in range(1, PART_ATTEMPTS + 1):
            in_flight[index] = 0
            # Opened per attempt, closed only once the sender's thread has let go of it.
            try:
                handle = await _open_for_reading(job.abs_path)
            except FileNotFoundError:
                await self.check_source(job, root)  # unavailable volume, or moved away
                raise
            except PermissionError as exc:
                raise NotReadable(_not_readable(job, exc)) from None
            except OSError as exc:
                raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None
            try:
                response = await self._http.put(
                    url, headers=headers, fd=handle.fileno(), offset=offset, size=size,
                    sent=lambda n: sent(index, n), name=job.abs_path,
                )  # fmt: skip
            except (FileChanged, SourceUnavailable):
                raise
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                problem = type(exc).__name__
                await self._storage_unreachable(job, up)
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    self._unreachable.pop(job.id, None)
                    await run_unhalted(self._confirm_part(job, handle, index))
                    return
                if response.status_code in (403, 404):
                    raise PartUrlRejected(f"storage refused part {index + 1} (HTTP {response.status_code})")
                if response.status_code in (400, 411) and _s3_code(response) not in TRANSIENT_S3_CODES:
                    raise UploadRejected(
                        f"Frame.io's storage refused part {index + 1} of {job.name}: {_s3_message(response)}"
                    )
                problem = f"HTTP {response.status_code}: {_s3_message(response)}"
            finally:
                handle.close()  # read-only: closing never waits on a flush
            wait = min(60.0, 2 ** (attempt - 1)) * (1 + self._rng.random() / 2)
            log.info("%s: part %d/%d failed (%s), retry %d in %.1fs", job.rel_path, index + 1,
                     len(up.parts), problem, attempt, wait)  # fmt: skip
            if attempt >= 2:  # not a blip: say why it is slow while trying on
                await self._on_trouble(job, f"Upload storage is failing ({problem}); still trying.")
            await asyncio.sleep(wait)
        raise ServiceUnavailable(
            f"Upload storage keeps failing for {job.name} ({problem}); will try again later."
        )

    async def _confirm_part(self, job: Job, handle: BinaryIO, index: int) -> None:
        """Storage has the part: it counts once the open file shows it was this version's bytes.
        One step a halt waits for, so a part that landed is known to have landed."""
        st = await asyncio.to_thread(os.fstat, handle.fileno())
        if st.st_size != job.size or st.st_mtime_ns != job.mtime_ns:
            raise FileChanged(f"{job.name} changed while it was being uploaded.")
        failpoints.hit("after_part_sent")
        await self._store.mark_part_done(job.id, index)

    async def _storage_unreachable(self, job: Job, up: UploadState) -> None:
        """Storage does not even answer: once that lasted long enough, the URLs are stale
        (e.g. they name a server that moved) and new ones are asked for. Only an unbroken run
        of failures counts: a success, or a long quiet spell (paused, signed out, asleep),
        starts the clock again."""
        now = time.monotonic()
        first, last = self._unreachable.get(job.id, (now, now))
        if now - last > UNREACHABLE_GAP:
            first = now
        self._unreachable[job.id] = (first, now)
        if now - first >= self.unreachable_renew_after:
            self._unreachable.pop(job.id, None)
            raise PartUrlRejected(
                f"upload storage unreachable for {int(now - first)} s; asking Frame.io for new upload links"
            )

    # ---- 5. verify ----
    async def _verified(self, job: Job, up: UploadState, account_id: str) -> bool:
        assert up.remote_file_id is not None
        delay = 0.25
        deadline = time.monotonic() + self.verify_timeout
        while time.monotonic() < deadline:
            status = await self._client.upload_status(account_id, up.remote_file_id)
            if status.failed:
                return False
            if status.complete:
                remote = await self._client.file(account_id, up.remote_file_id)
                if remote.file_size != job.size:
                    log.warning(
                        "%s: Frame.io reports %d bytes, expected %d", job.rel_path, remote.file_size, job.size
                    )
                    return False
                failpoints.hit("after_verify")
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        await self.discard(job, up, account_id)
        minutes = self.verify_timeout / 60
        raise UploadRejected(f"Frame.io had not finished processing {job.name} after {minutes:.0f} minutes.")

    # ---- 0. the source ----
    async def check_source(self, job: Job, root: WatchRoot) -> None:
        await asyncio.to_thread(self._check_source, job, root)

    def _check_source(self, job: Job, root: WatchRoot) -> None:
        """Blocking: is the file still the version this job is about, and may we read it?

        A missing file under an unavailable watch folder (an unmounted volume, or only its
        empty mount point) is "unavailable": wait for it. Under an available one, it was moved
        or deleted."""
        try:
            st = os.stat(job.abs_path)
        except FileNotFoundError:
            problem = self._monitor.check(root.id, root.path)
            if problem is not None:
                raise SourceUnavailable(problem) from None
            raise FileChanged(f"{job.name} was moved or deleted before it was uploaded.") from None
        except PermissionError as exc:
            raise NotReadable(_not_readable(job, exc)) from None
        except OSError as exc:
            raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None
        if st.st_size != job.size or st.st_mtime_ns != job.mtime_ns:
            raise FileChanged(
                f"{job.name} changed before it was uploaded; the new version is queued instead."
            )
        try:
            os.close(os.open(job.abs_path, os.O_RDONLY))
        except PermissionError as exc:
            raise NotReadable(_not_readable(job, exc)) from None
        except OSError as exc:
            raise SourceUnavailable(f"{job.abs_path} cannot be read right now: {exc.strerror}") from None


def _not_readable(job: Job, exc: OSError) -> str:
    return (
        f"PostFlow may not read {job.abs_path} ({exc.strerror or 'permission denied'}). "
        "Fix the file's permissions, then choose Retry."
    )


def _s3_code(response: httpx.Response) -> str:
    text = response.text
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + len("<Code>") : end] if 0 <= start < end else ""


def _s3_message(response: httpx.Response) -> str:
    """The <Message> of an S3 XML error, or the start of the body."""
    text = response.text
    start, end = text.find("<Message>"), text.find("</Message>")
    if 0 <= start < end:
        return text[start + len("<Message>") : end]
    return text[:200] or response.reason_phrase


def _open_rb(path: str) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115 - closed by the caller, even when cancelled


async def _open_for_reading(path: str) -> BinaryIO:
    """Open in a worker thread; if we are cancelled meanwhile, the handle is still closed."""
    return await made_or_released(asyncio.to_thread(_open_rb, path), lambda handle: handle.close())


async def run_unhalted(step: Coroutine[Any, Any, None] | asyncio.Future[None]) -> None:
    """Run a short step to its end even if we are halted meanwhile (waiting CREATE_GRACE at most)."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), CREATE_GRACE)
        task.add_done_callback(_consume)
        raise


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # an abandoned step's error is not worth a warning


def _most_telling(failures: list[BaseException]) -> BaseException:
    """One part's failure stops the others; report the failure that decides what happens next."""
    kinds = (FileChanged, SourceUnavailable, NotReadable, PartUrlRejected, UploadRejected, PostFlowError)
    for kind in kinds:
        for exc in failures:
            if isinstance(exc, kind):
                return exc
    return failures[0]
