"""Which way a file goes: push (local upload) or pull (remote upload), per watch folder.

- ``push`` (the default): always push.
- ``pull``: always pull; while the tunnel is down the job waits (retried, with the tunnel's
  reason as its message), because the user chose not to push these files.
- ``auto``: pull when the tunnel is up, push otherwise (the user allowed the fallback).
Files over Frame.io's remote upload limit (50 GB) always push. A job that switches way (a
mode changed, a fallback) first removes what its other way left on Frame.io.
"""

from __future__ import annotations

import logging

from app.core.jobs import Job, UploadState, WatchRoot
from app.engine.pull_service import PullService
from app.engine.pull_uploader import PullUploader
from app.engine.push_uploader import PushUploader
from app.engine.queue_store import QueueStore

log = logging.getLogger(__name__)
REMOTE_UPLOAD_LIMIT = 50 * 1000**3  # bytes (BRIEF §3)


class UploadRouter:
    def __init__(
        self, store: QueueStore, push: PushUploader, pull: PullUploader, service: PullService
    ) -> None:
        self._store = store
        self.push = push
        self.pull = pull
        self._service = service

    def way_for(self, job: Job, root: WatchRoot) -> str:
        """ "push" or "pull" for this attempt (``pull`` may still wait for the tunnel)."""
        if root.upload_mode == "push" or job.size > REMOTE_UPLOAD_LIMIT:
            return "push"
        if root.upload_mode == "auto" and not self._service.ready_now():
            return "push"
        return "pull"

    async def upload(
        self, job: Job, root: WatchRoot, account_id: str, folder_id: str, sha256: str | None = None
    ) -> str | None:
        way = self.way_for(job, root)
        if root.upload_mode != "push" and way == "push":
            why = (
                "it is over the 50 GB pull limit"
                if job.size > REMOTE_UPLOAD_LIMIT
                else "the tunnel is not up"
            )
            log.info("%s: pushing (%s)", job.rel_path, why)
        up = await self._store.upload_state(job.id)
        if way == "pull" and up.parts:
            if await self.push.delivered(job, up, account_id):  # every part went: finish it that way
                return await self.push.upload(job, root, account_id, folder_id, sha256)
            log.info("%s: its unfinished push upload is removed; pulling instead", job.rel_path)
            await self.push.discard(job, up, account_id)
        elif way == "push" and up.remote_file_id and not up.parts:
            if await self.pull.delivered(job, up, account_id):  # a pull completed: keep it
                return await self.pull.upload(job, root, account_id, folder_id, sha256)
            log.info("%s: its unfinished pull is removed; pushing instead", job.rel_path)
            await self.push.discard(job, up, account_id)
        if way == "pull":
            return await self.pull.upload(job, root, account_id, folder_id, sha256)
        return await self.push.upload(job, root, account_id, folder_id, sha256)

    async def delivered(self, job: Job, up: UploadState, account_id: str) -> bool:
        if up.remote_file_id and not up.parts:
            return await self.pull.delivered(job, up, account_id)
        return await self.push.delivered(job, up, account_id)

    async def discard(self, job: Job, up: UploadState, account_id: str) -> UploadState:
        return await self.push.discard(job, up, account_id)

    async def check_source(self, job: Job, root: WatchRoot) -> None:
        await self.push.check_source(job, root)
