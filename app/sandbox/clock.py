"""The sandbox's notion of now, shiftable so tests can expire tokens and URLs instantly."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def iso(self, ts: float | None = None) -> str:
        return datetime.fromtimestamp(self.now() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def amz_date(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")
