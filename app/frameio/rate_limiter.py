"""Client-side pacing per endpoint: token buckets seeded with the documented limits and
corrected by the ``x-ratelimit-*`` headers of each answer, so we rarely see a 429 at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

#: operation → (calls, window seconds): the documented limits an uploader meets.
DOCUMENTED: dict[str, tuple[int, float]] = {
    "users.show": (100, 60.0),
    "accounts.index": (100, 60.0),
    "workspaces.index": (100, 60.0),
    "projects.index": (100, 60.0),
    "projects.show": (100, 60.0),
    "folders.index": (100, 60.0),
    "folders.list": (5, 1.0),
    "folders.create": (3, 1.0),
    "files.list": (5, 1.0),
    "files.show": (10, 1.0),
    "files.delete": (100, 60.0),
    "files.move": (100, 60.0),
    "files.update": (100, 60.0),
    "files.create_local_upload": (5, 1.0),
    "files.create_remote_upload": (5, 1.0),
    "files.show_file_upload_status": (5, 1.0),
    "version_stacks.create": (10, 60.0),
    "version_stacks.index": (100, 60.0),
    "comments.create": (100, 60.0),
}


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    stamp: float


class ClientRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _bucket(self, operation: str) -> _Bucket:
        if operation not in self._buckets:
            calls, window = DOCUMENTED.get(operation, (100, 60.0))
            self._buckets[operation] = _Bucket(calls, calls / window, calls, self._clock())
        return self._buckets[operation]

    def _refill(self, bucket: _Bucket) -> None:
        now = self._clock()
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.stamp) * bucket.rate)
        bucket.stamp = now

    async def acquire(self, operation: str) -> None:
        lock = self._locks.setdefault(operation, asyncio.Lock())
        async with lock:  # callers of one endpoint queue up in order
            bucket = self._bucket(operation)
            self._refill(bucket)
            if bucket.tokens < 1:
                await asyncio.sleep((1 - bucket.tokens) / bucket.rate)
                self._refill(bucket)
            bucket.tokens -= 1

    def observe(self, operation: str, response: httpx.Response) -> None:
        """Trust the server: its limit, window and remaining count replace our guesses."""
        try:
            limit = int(response.headers["x-ratelimit-limit"])
            window_ms = int(response.headers["x-ratelimit-window"])
            remaining = int(response.headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        if limit <= 0 or window_ms <= 0:
            return
        bucket = self._bucket(operation)
        self._refill(bucket)
        bucket.capacity = float(limit)
        bucket.rate = limit / (window_ms / 1000.0)
        bucket.tokens = min(bucket.tokens, float(remaining))

    def penalize(self, operation: str) -> None:
        """After a 429 the bucket is empty, whatever we believed."""
        bucket = self._bucket(operation)
        self._refill(bucket)
        bucket.tokens = min(bucket.tokens, 0.0)
