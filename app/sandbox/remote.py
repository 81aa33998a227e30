"""remote_upload: the sandbox fetches ``source_url`` itself, as Frame.io does."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import aiohttp

from app.sandbox.context import Sandbox
from app.sandbox.model import File
from app.sandbox.storage import CHUNK, mark_uploaded

log = logging.getLogger(__name__)


async def fetch_remote(sb: Sandbox, f: File, source_url: str) -> None:
    target = sb.store.blob_path(f.id, 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    size = 0
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(source_url) as resp,
        ):
            if resp.status != 200:
                raise ValueError(f"source answered HTTP {resp.status}")
            with target.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > sb.config.remote_upload_max:
                        raise ValueError("source is larger than the remote upload limit")
                    hasher.update(chunk)
                    await asyncio.to_thread(fh.write, chunk)
            if resp.content_length is not None and size != resp.content_length:
                raise ValueError("source sent fewer bytes than announced")
    except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as exc:
        log.info("remote upload of %s failed: %s", f.name, exc)
        f.upload_failed = True
        f.updated_at = sb.clock.iso()
        sb.store.changed()
        return
    if f.id not in sb.store.files:
        return
    f.file_size = size
    f.part_sizes = [size]
    f.parts_received = [0]
    f.sha256 = hasher.hexdigest()
    mark_uploaded(sb, f)
