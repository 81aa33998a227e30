"""Per-endpoint leaky buckets with the documented limits and ``x-ratelimit-*`` headers."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: operationId → (calls, window in ms), from the spec's "Rate Limits:" notes.
DOCUMENTED_LIMITS: dict[str, tuple[int, int]] = {
    "users.show": (100, 60_000),
    "accounts.index": (100, 60_000),
    "workspaces.index": (100, 60_000),
    "projects.index": (100, 60_000),
    "projects.create": (10, 60_000),
    "projects.show": (100, 60_000),
    "folders.show": (100, 60_000),
    "folders.index": (100, 60_000),
    "folders.list": (5, 1_000),
    "folders.create": (3, 1_000),
    "files.list": (5, 1_000),
    "files.show": (10, 1_000),
    "files.delete": (100, 60_000),
    "files.move": (100, 60_000),
    "files.update": (100, 60_000),
    "files.create_local_upload": (5, 1_000),
    "files.create_remote_upload": (5, 1_000),
    "files.show_file_upload_status": (5, 1_000),
    "version_stacks.create": (10, 60_000),
    "comments.create": (100, 60_000),
    "version_stacks.list": (5, 1_000),
    "version_stacks.show": (100, 60_000),
    "version_stacks.index": (100, 60_000),
    "version_stacks.move": (10, 60_000),
    "comments.index": (100, 60_000),
    "comments.show": (100, 60_000),
    "comments.update": (10, 60_000),
    "comments.delete": (60, 60_000),
}


@dataclass
class _Bucket:
    level: float
    updated: float


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    window_ms: int
    retry_after: float

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-window": str(self.window_ms),
        }


class RateLimiter:
    """A bucket per (user, operation) that drains at limit/window and holds at most limit."""

    def __init__(self, scale: float = 1.0, window_scale: float = 1.0) -> None:
        self.scale = scale
        #: shrinks every window (tests: "10 a minute" kept in seconds, headers saying so)
        self.window_scale = window_scale
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def limit_for(self, operation: str) -> tuple[int, int]:
        calls, window = DOCUMENTED_LIMITS.get(operation, (100, 60_000))
        if self.scale > 0:
            calls = max(1, round(calls * self.scale))
        return calls, max(1, round(window * self.window_scale))

    def nominal_headers(self, operation: str, remaining: int | None = None) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers of an operation without spending from its bucket."""
        limit, window_ms = self.limit_for(operation)
        left = limit if remaining is None else remaining
        return RateDecision(True, limit, left, window_ms, 0.0).headers()

    def check(self, key: str, operation: str, now: float) -> RateDecision:
        limit, window_ms = self.limit_for(operation)
        if self.scale <= 0:
            return RateDecision(True, limit, limit, window_ms, 0.0)
        rate = limit / (window_ms / 1000.0)
        bucket = self._buckets.setdefault((key, operation), _Bucket(0.0, now))
        bucket.level = max(0.0, bucket.level - (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.level + 1 > limit:
            wait = (bucket.level + 1 - limit) / rate
            return RateDecision(False, limit, 0, window_ms, wait)
        bucket.level += 1
        return RateDecision(True, limit, max(0, math.floor(limit - bucket.level)), window_ms, 0.0)

    def reset(self) -> None:
        self._buckets.clear()
