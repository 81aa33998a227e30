"""How long to wait before trying again, per class of failure (BRIEF §3). Pure: no I/O.

| failure                         | wait                                  | attempts |
|---------------------------------|---------------------------------------|----------|
| 429 rate limited                | Retry-After if given, else 1 s × 2^n, | 8        |
|                                 | at most 60 s (a leaky bucket drains)  |          |
| 5xx                             | ≥ 30 s × 2^n with jitter, capped      | 5        |
| network error / timeout         | 2 s × 2^n with jitter, capped         | 8        |
| 401, 403, 404, 400, 422         | never (the caller handles or reports) | 1        |
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Failure(Enum):
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    NETWORK = "network"
    FINAL = "final"


@dataclass(frozen=True)
class RetryPolicy:
    rate_base: float = 1.0
    rate_cap: float = 60.0
    server_base: float = 30.0
    network_base: float = 2.0
    cap: float = 300.0
    rate_attempts: int = 8
    server_attempts: int = 5
    network_attempts: int = 8

    def delay(
        self,
        failure: Failure,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1), or None."""
        rng = rng or random.Random()
        if failure is Failure.FINAL:
            return None
        if failure is Failure.RATE_LIMITED:
            if attempt >= self.rate_attempts:
                return None
            base = self.rate_base * 2 ** (attempt - 1)
            return float(min(self.cap, max(min(base, self.rate_cap), retry_after or 0.0, 1.0)))
        if failure is Failure.SERVER:
            if attempt >= self.server_attempts:
                return None
            base = self.server_base * 2 ** (attempt - 1)
            return float(min(self.cap, base + rng.uniform(0, base / 2)))
        if attempt >= self.network_attempts:
            return None
        base = self.network_base * 2 ** (attempt - 1)
        return float(min(self.cap, base + rng.uniform(0, base / 2)))
