"""The content digest of the file being delivered, read in its own thread beside the parts.

Parts go out in parallel and out of order, so the digest cannot be taken from them; a second,
sequential read of a file that is being read anyway costs little (the blocks are cached) and
keeps no more than one chunk in memory. The digest lets a file that was only touched (new
mtime, same bytes) be recognised instead of uploaded twice.

The digest is XXH3-128 (``xxh128:<hex>``): it only has to tell one version of a file from
another, not resist an attacker, and it costs 0.015 CPU-seconds per GiB where SHA-256 costs
0.6 — in the process that also draws the tray and the window. Queues from before recorded a
bare SHA-256 hex; a file compared against one of those is hashed the old way for that check.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from concurrent.futures import Executor
from typing import Any

import xxhash

from app.engine.read_buffer import thread_buffer

PREFIX = "xxh128:"


def is_legacy(digest: str | None) -> bool:
    """A digest recorded by an older PostFlow (bare SHA-256 hex)."""
    return digest is not None and not digest.startswith(PREFIX)


class HashStopped(Exception):
    pass


def content_digest(
    path: str,
    stop: threading.Event | None = None,
    version: tuple[int, int] | None = None,
    *,
    legacy: bool = False,
) -> str | None:
    """Blocking: the file's digest (``legacy``: bare SHA-256 hex, to compare with an old row);
    raises HashStopped when ``stop`` is set. With ``version`` (size, mtime_ns): None unless
    the bytes read are that version's (checked on the handle, before and after), so a digest
    is never recorded for bytes that were not delivered."""
    digest: Any = hashlib.sha256() if legacy else xxhash.xxh3_128()
    buffer = thread_buffer()  # reused: a fresh 4 MiB per read would be 1,024 page faults each time
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        if version is not None and _version(fh) != version:
            return None
        while got := fh.readinto(buffer):
            if stop is not None and stop.is_set():
                raise HashStopped
            digest.update(view[:got])
        if version is not None and _version(fh) != version:
            return None
    text: str = digest.hexdigest()
    return text if legacy else PREFIX + text


def _version(fh: Any) -> tuple[int, int]:
    st = os.fstat(fh.fileno())
    return st.st_size, st.st_mtime_ns


class BackgroundHash:
    """Starts hashing at once; ``digest()`` waits for it (None: the file is not that version
    any more, or could not be read), ``stop()`` abandons it."""

    def __init__(
        self, path: str, executor: Executor, version: tuple[int, int], *, legacy: bool = False
    ) -> None:
        self._stop = threading.Event()
        stop = self._stop
        self._future = asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(content_digest, path, stop, version, legacy=legacy)
        )
        self._future.add_done_callback(_consume)

    async def digest(self) -> str | None:
        try:
            return await asyncio.shield(self._future)
        except OSError:
            return None

    def stop(self) -> None:
        self._stop.set()


def _consume(future: asyncio.Future[str | None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned hash never logs "exception never retrieved"
