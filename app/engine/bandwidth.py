"""A global byte budget shared by every upload (``upload.bandwidth_limit`` bytes/s; 0: none)."""

from __future__ import annotations

import asyncio
import time


class BandwidthLimiter:
    def __init__(self, bytes_per_second: int) -> None:
        self.rate = bytes_per_second
        self._allowance = float(bytes_per_second)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def consume(self, amount: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._allowance = min(float(self.rate), self._allowance + (now - self._stamp) * self.rate)
            self._stamp = now
            self._allowance -= amount
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self.rate)
