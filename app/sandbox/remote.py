"""remote_upload: the sandbox fetches ``source_url`` itself, as Frame.io does.

The bytes are hashed as they come; they are written to the file's blob only when the file keeps
its bytes. A failure of any kind (the source, the network, the sandbox's own disk) ends in
``upload_failed``, and the log says which.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import BinaryIO

import aiohttp

from app.sandbox.context import Sandbox
from app.sandbox.model import File
from app.sandbox.part_receive import CHUNK, storage_error_message
from app.sandbox.storage import mark_uploaded

log = logging.getLogger(__name__)


class _SourceError(Exception):
    """The source answered, but not with the whole file."""


class _StorageError(Exception):
    """The sandbox's own disk failed (full, most likely), not the source."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _write(sink: BinaryIO, chunk: bytes) -> None:
    try:
        sink.write(chunk)
        sink.flush()  # a full disk shows here, not at close
    except OSError as exc:
        raise _StorageError(exc) from None


def _open_blob(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


async def _copy(sb: Sandbox, resp: aiohttp.ClientResponse, sink: BinaryIO | None) -> tuple[int, str]:
    """Read the source to its end: its size and sha256."""
    hasher = hashlib.sha256()
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > sb.config.remote_upload_max:
            raise _SourceError("source is larger than the remote upload limit")
        hasher.update(chunk)
        if sink is not None:
            await asyncio.to_thread(_write, sink, chunk)
    if resp.content_length is not None and size != resp.content_length:
        raise _SourceError("source sent fewer bytes than announced")
    return size, hasher.hexdigest()


async def _fetch(sb: Sandbox, f: File, source_url: str, target: Path) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(source_url) as resp:
        if resp.status != 200:
            raise _SourceError(f"source answered HTTP {resp.status}")
        if not f.keep_bytes:
            return await _copy(sb, resp, None)
        try:
            sink = await asyncio.to_thread(_open_blob, target)
        except OSError as exc:
            raise _StorageError(exc) from None
        with sink:
            return await _copy(sb, resp, sink)


async def fetch_remote(sb: Sandbox, f: File, source_url: str) -> None:
    target = sb.store.blob_path(f.id, 0)
    try:
        size, sha256 = await _fetch(sb, f, source_url, target)
    except (TimeoutError, aiohttp.ClientError, _SourceError, _StorageError, OSError) as exc:
        _fail(sb, f, exc, target)
        return
    if f.id not in sb.store.files:
        return
    f.file_size = size
    f.part_sizes = [size]
    f.parts_received = [0]
    f.sha256 = sha256
    mark_uploaded(sb, f)


def _fail(sb: Sandbox, f: File, exc: Exception, target: Path) -> None:
    if isinstance(exc, _StorageError):
        log.error("remote upload of %s failed: %s", f.name, storage_error_message(exc.exc, target))
    else:
        log.info("remote upload of %s failed: %s", f.name, exc)
    f.upload_failed = True
    f.updated_at = sb.clock.iso()
    sb.store.changed()
