"""A global byte budget shared by every upload (``upload.bandwidth_limit`` bytes/s; 0: none)."""

from __future__ import annotations

import asyncio
import time

STEP = 0.25  # seconds: the longest a wait goes on at a rate that no longer holds


class BandwidthLimiter:
    def __init__(self, bytes_per_second: int) -> None:
        self.rate = bytes_per_second
        self._allowance = float(bytes_per_second)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def consume(self, amount: int) -> None:
        """Wait until ``amount`` bytes may go. The rate is read again at every step (a schedule
        may lift or change the limit while we wait): a lifted limit ends the wait at once."""
        if self.rate <= 0:
            return
        async with self._lock:
            rate = self.rate
            if rate <= 0:  # lifted while we queued for the lock
                return
            now = time.monotonic()
            self._allowance = min(float(rate), self._allowance + (now - self._stamp) * rate)
            self._stamp = now
            self._allowance -= amount
            while self._allowance < 0:
                rate = self.rate
                if rate <= 0:
                    self._allowance = 0.0
                    return
                await asyncio.sleep(min(STEP, -self._allowance / rate))
                now = time.monotonic()
                self._allowance += (now - self._stamp) * rate
                self._stamp = now
