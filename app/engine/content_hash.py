"""SHA-256 of the file being delivered, read in its own thread beside the part uploads.

Parts go out in parallel and out of order, so the digest cannot be taken from them; a second,
sequential read of a file that is being read anyway costs little (the blocks are cached) and
keeps no more than one chunk in memory. The digest lets a file that was only touched (new
mtime, same bytes) be recognised instead of uploaded twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from concurrent.futures import Executor
from typing import BinaryIO

CHUNK = 4 * 1024 * 1024


class HashStopped(Exception):
    pass


def sha256_of(
    path: str, stop: threading.Event | None = None, version: tuple[int, int] | None = None
) -> str | None:
    """Blocking: the file's SHA-256; raises HashStopped when ``stop`` is set. With ``version``
    (size, mtime_ns): None unless the bytes read are that version's (checked on the handle,
    before and after), so a checksum is never recorded for bytes that were not delivered."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if version is not None and _version(fh) != version:
            return None
        while chunk := fh.read(CHUNK):
            if stop is not None and stop.is_set():
                raise HashStopped
            digest.update(chunk)
        if version is not None and _version(fh) != version:
            return None
    return digest.hexdigest()


def _version(fh: BinaryIO) -> tuple[int, int]:
    st = os.fstat(fh.fileno())
    return st.st_size, st.st_mtime_ns


class BackgroundHash:
    """Starts hashing at once; ``digest()`` waits for it (None: the file is not that version
    any more, or could not be read), ``stop()`` abandons it."""

    def __init__(self, path: str, executor: Executor, version: tuple[int, int]) -> None:
        self._stop = threading.Event()
        self._future = asyncio.get_running_loop().run_in_executor(
            executor, sha256_of, path, self._stop, version
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
