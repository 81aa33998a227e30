"""SHA-256 of the file being delivered, read in its own thread beside the part uploads.

Parts go out in parallel and out of order, so the digest cannot be taken from them; a second,
sequential read of a file that is being read anyway costs little (the blocks are cached) and
keeps no more than one chunk in memory. The digest lets a file that was only touched (new
mtime, same bytes) be recognised instead of uploaded twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import Executor

CHUNK = 4 * 1024 * 1024


class HashStopped(Exception):
    pass


def sha256_of(path: str, stop: threading.Event | None = None) -> str:
    """Blocking: the file's SHA-256; raises HashStopped when ``stop`` is set."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if stop is not None and stop.is_set():
                raise HashStopped
            digest.update(chunk)
    return digest.hexdigest()


class BackgroundHash:
    """Starts hashing at once; ``digest()`` waits for it, ``stop()`` abandons it."""

    def __init__(self, path: str, executor: Executor) -> None:
        self._stop = threading.Event()
        self._future = asyncio.get_running_loop().run_in_executor(executor, sha256_of, path, self._stop)
        self._future.add_done_callback(_consume)

    async def digest(self) -> str:
        return await asyncio.shield(self._future)

    def stop(self) -> None:
        self._stop.set()


def _consume(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned hash never logs "exception never retrieved"
