"""How late the event loop runs its callbacks: the number that says whether the window freezes.

A task asks to wake every ``INTERVAL`` seconds and records how much later than asked it woke.
Anything that blocks the loop (a disk read, a slow SQL write, a big JSON parse) shows up as lag
here long before a user sees a spinning cursor; the metrics report its maximum and 99th
percentile over the last few minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

INTERVAL = 0.25  # seconds between samples
WINDOW = 1200  # samples kept: the last five minutes


class LoopLag:
    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=WINDOW)

    async def run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(INTERVAL)
            self._samples.append(max(0.0, time.monotonic() - asked - INTERVAL))

    def record(self, lag: float) -> None:
        self._samples.append(lag)

    def max(self) -> float:
        return max(self._samples, default=0.0)

    def p99(self) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
