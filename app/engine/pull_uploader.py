"""Pull upload (Frame.io remote upload) of one job: Frame.io fetches the file from this machine.

1. The file is published on the range server under a new random path, and that path's public
   URL through the tunnel is handed to ``files/remote_upload``. As for a local upload, the
   create is not idempotent: ``create_started_at`` is persisted before it, the file id right
   after, and a lost answer's file is found and deleted (its fetch fails anyway: the path it
   was given is unpublished first).
2. Follow: the status is polled until ``upload_complete`` or ``upload_failed``. Meanwhile the
   bytes Frame.io has read are the job's progress. The pull is issued again (the unfinished
   file deleted first) when the tunnel restarted (a new hostname: the old URL is dead), when
   Frame.io has read nothing for ``stall_seconds``, or when it failed. A file that changes
   while published is never served again, and the job ends as changed.
3. Verify the size Frame.io reports, then unpublish. Whatever happens, the path is unpublished
   when the attempt ends: nothing stays reachable from the internet.
A job resumed after a restart cannot continue a pull (the path it gave died with the old range
server): a complete one is verified and kept, anything else is deleted and pulled again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from app.core.jobs import Job, JobPhase, UploadState, WatchRoot
from app.core.unabandoned import made_or_released
from app.engine import failpoints
from app.engine.content_hash import BackgroundHash
from app.engine.push_uploader import PushUploader, remote_name, run_unhalted
from app.engine.queue_store import QueueStore
from app.engine.upload_errors import FileChanged, UploadRejected
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound, OutcomeUnknown
from app.pull.range_server import Publication, RangeServer
from app.pull.tunnel import TunnelStatus

log = logging.getLogger(__name__)
MAX_ISSUES = 4  # pulls of one file per attempt before giving up on it for now
POLL_FIRST = 0.25
POLL_MAX = 2.0  # the status endpoint allows 5/s per account: a few pulls polling every 2 s are far under


class _Reissue(Exception):
    """This pull cannot finish (tunnel restarted, stalled, failed on Frame.io): issue it again."""


class PullUploader:
    def __init__(
        self,
        store: QueueStore,
        client: FrameioClient,
        push: PushUploader,
        server: Callable[[], RangeServer],
        tunnel_ready: Callable[[], Awaitable[TunnelStatus]],
        tunnel_status: Callable[[], TunnelStatus],
        on_progress: Callable[[int, int], None],
        hash_executor: Executor,
    ) -> None:
        self._store = store
        self._client = client
        self._push = push  # shares the source checks, lost-placeholder clean-up and discard
        self._server = server
        self._tunnel_ready = tunnel_ready
        self._tunnel_status = tunnel_status
        self._on_progress = on_progress
        self._hash_executor = hash_executor
        self.link_lifetime = 24 * 3600.0  # 50 GB at 15 Mbit/s takes 7.4 h
        self.stall_seconds = 300.0
        self.verify_timeout = 24 * 3600.0
        self.on_phase: Callable[[int, JobPhase], None] = lambda job_id, phase: None
        self._creating: dict[int, asyncio.Future[None]] = {}  # job id → its pull request in flight

    async def upload(
        self, job: Job, root: WatchRoot, account_id: str, folder_id: str, sha256: str | None = None
    ) -> str | None:
        """Deliver the job's file by pull; returns its SHA-256 (None if it could not be taken)."""
        up = await self._store.upload_state(job.id)
        if up.remote_file_id or up.create_started_at is not None:
            if await self.delivered(job, up, account_id):
                log.info("%s: its pull had completed before the interruption", job.rel_path)
                return sha256 or await self._digest(job)
            if up.remote_file_id:
                log.info("%s: an interrupted pull cannot continue; removing its unfinished file and "
                         "pulling again", job.rel_path)  # fmt: skip
            up = await self._push.discard(job, up, account_id)  # its link died with the old server
        await self._push.check_source(job, root)
        hashing = (
            None if sha256 else BackgroundHash(job.abs_path, self._hash_executor, (job.size, job.mtime_ns))
        )
        try:
            for issue in range(1, MAX_ISSUES + 1):
                try:
                    await self._pull_once(job, account_id, folder_id)
                    return sha256 or await hashing.digest()  # type: ignore[union-attr]
                except _Reissue as exc:
                    log.info("%s: %s; pulling again (%d of %d)", job.rel_path, exc, issue, MAX_ISSUES)
                    up = await self._store.upload_state(job.id)
                    await self._push.discard(job, up, account_id)
            raise UploadRejected(f"Frame.io could not pull {job.name} after {MAX_ISSUES} tries.")
        finally:
            if hashing is not None:
                hashing.stop()

    async def delivered(self, job: Job, up: UploadState, account_id: str) -> bool:
        """A pull that Frame.io completed at the right size (nothing else is worth keeping)."""
        if not up.remote_file_id or up.parts:
            return False
        try:
            status = await self._client.upload_status(account_id, up.remote_file_id)
            if not status.complete or status.failed:
                return False
            remote = await self._client.file(account_id, up.remote_file_id)
        except NotFound:
            return False
        return remote.file_size == job.size

    async def _digest(self, job: Job) -> str | None:
        hashing = BackgroundHash(job.abs_path, self._hash_executor, (job.size, job.mtime_ns))
        try:
            return await hashing.digest()
        finally:
            hashing.stop()

    async def _pull_once(self, job: Job, account_id: str, folder_id: str) -> None:
        self.on_phase(job.id, JobPhase.CREATING)
        earlier = self._creating.get(job.id)
        if earlier is not None and not earlier.done():  # a halted attempt's request, still answering
            await asyncio.wait([earlier])
            up = await self._store.upload_state(job.id)
            if up.remote_file_id:
                await self._push.discard(job, up, account_id)  # its link is gone: it cannot finish
        tunnel = await self._tunnel_ready()
        server = self._server()
        publication = await _publish(server, job.abs_path, self.link_lifetime)
        try:
            if (publication.size, publication.mtime_ns) != (job.size, job.mtime_ns):
                raise FileChanged(
                    f"{job.name} changed before it was uploaded; the new version is queued instead."
                )
            url = tunnel.url + server.url_path(publication)  # type: ignore[operator]
            step = asyncio.ensure_future(self._create(job, account_id, folder_id, url, publication))
            self._creating[job.id] = step
            step.add_done_callback(functools.partial(self._created, job.id))
            await run_unhalted(step)  # mark, ask, record: never cut in half by a pause or a stop
            self.on_phase(job.id, JobPhase.SENDING)
            await self._follow(job, account_id, publication, tunnel.generation)
        finally:
            server.forget(publication.token)  # never reachable past this attempt

    def _created(self, job_id: int, step: asyncio.Future[None]) -> None:
        if self._creating.get(job_id) is step:
            del self._creating[job_id]

    async def _create(
        self, job: Job, account_id: str, folder_id: str, url: str, publication: Publication
    ) -> None:
        mark = time.time()
        await self._store.update(job.id, create_started_at=mark, folder_id=folder_id, account_id=account_id)
        failpoints.hit("before_create")
        try:
            created = await self._client.create_remote_upload(
                account_id, folder_id, remote_name(job.name), url
            )
        except OutcomeUnknown as exc:
            log.info("%s: %s; checking before pulling again", job.rel_path, exc.message)
            await self._after_lost_answer(job, account_id, folder_id, publication, mark)
            return
        failpoints.hit("after_create")
        if not await self._store.record_upload(job.id, created.id, created.media_type, (), None, mark=mark,
                                               remote_url=created.view_url):  # fmt: skip
            await self._client.delete_file(account_id, created.id)
            raise _Reissue("a late answer's file is not needed")
        log.info("%s: Frame.io is pulling it as %s", job.rel_path, created.id)

    async def _after_lost_answer(
        self, job: Job, account_id: str, folder_id: str, publication: Publication, mark: float
    ) -> None:
        """The request may have been carried out. If Frame.io never asked for the link, it was
        not: cut the link (a late fetch then fails) and look for a file to delete. If it did, the
        file Frame.io made is found by name among the files no job knows: complete at the right
        size, with every byte served by us, it is adopted (recorded, then followed as usual);
        unfinished, it is deleted. Either way, never a second copy."""
        server = self._server()
        served = server.served.get(publication.token)
        asked = served is not None and served.requests > 0
        if not asked:
            server.unpublish(publication.token)
        await asyncio.sleep(max(self._push.outcome_wait, mark + self._push.listing_settle - time.time()))
        served = server.served.get(publication.token)
        whole = served is not None and served.covered >= job.size
        known = await self._store.known_remote_ids()
        name = remote_name(job.name)
        for remote in await self._client.files_in(account_id, folder_id):
            if remote.name != name or remote.id in known:
                continue
            adoptable = asked and whole and remote.status != "created" and remote.file_size == job.size
            if adoptable and await self._store.record_upload(
                job.id, remote.id, remote.media_type, (), None, mark=mark, remote_url=remote.view_url
            ):
                log.info(
                    "%s: the unanswered pull request was carried out (%s); keeping it",
                    job.rel_path,
                    remote.id,
                )
                return
            if remote.status == "created" and remote.file_size in (0, job.size):
                log.info("%s: removing %s left by an unanswered pull request", job.rel_path, remote.id)
                await self._client.delete_file(account_id, remote.id)
        raise _Reissue("the pull request's answer was lost")

    async def _follow(self, job: Job, account_id: str, publication: Publication, generation: int) -> None:
        up = await self._store.upload_state(job.id)
        assert up.remote_file_id is not None
        server = self._server()
        delay = POLL_FIRST
        deadline = time.monotonic() + self.verify_timeout
        while time.monotonic() < deadline:
            served = server.served.get(publication.token)
            if served is None:  # the range server was restarted: this link is gone
                raise _Reissue("pull mode was restarted")
            if served.changed:
                raise FileChanged(f"{job.name} changed while Frame.io was fetching it.")
            status = await self._client.upload_status(account_id, up.remote_file_id)
            if status.complete:
                self.on_phase(job.id, JobPhase.VERIFYING)
                remote = await self._client.file(account_id, up.remote_file_id)
                if remote.file_size != job.size:
                    raise _Reissue(f"Frame.io reports {remote.file_size} bytes, expected {job.size}")
                self._on_progress(job.id, job.size)
                failpoints.hit("after_verify")
                return
            if status.failed:
                raise _Reissue("Frame.io could not fetch it")
            # Every byte read: Frame.io is assembling it, whatever the tunnel does now.
            all_read = served.covered >= job.size
            if self._tunnel_status().generation != generation and not all_read:
                raise _Reissue("the tunnel restarted with a new address")
            if not all_read:
                self._on_progress(job.id, served.covered)
                if time.monotonic() - served.last_request > self.stall_seconds:
                    raise _Reissue(f"Frame.io read nothing for {self.stall_seconds:.0f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
        raise _Reissue(f"Frame.io had not finished pulling after {self.verify_timeout / 3600:g} h")


async def _publish(server: RangeServer, path: str, lifetime: float) -> Publication:
    """Published in a worker thread (a stat on a network volume can be slow); if we are
    cancelled meanwhile, the link is withdrawn as soon as it exists."""
    return await made_or_released(
        asyncio.to_thread(server.publish, path, lifetime),
        lambda publication: server.forget(publication.token),
    )
