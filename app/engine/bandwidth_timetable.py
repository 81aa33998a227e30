"""Applies the bandwidth schedule to the shared limiter, live, at each boundary.

The limit is worked out from the local wall clock now, then again at the next boundary the
schedule names, and at least once a minute: a laptop that slept through 09:00, or a clock that
was changed, is caught up within a minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from app.core.bandwidth_schedule import Limit, Rule, describe_rate, limit_at, next_change, parse_rules
from app.core.event_wait import wait_set
from app.engine.bandwidth import BandwidthLimiter

log = logging.getLogger(__name__)
RECHECK = 60.0


def local_now() -> datetime:
    return datetime.now().astimezone()


class BandwidthTimetable:
    def __init__(self, limiter: BandwidthLimiter, clock: Callable[[], datetime] = local_now) -> None:
        self._limiter = limiter
        self._clock = clock
        self._rules: tuple[Rule, ...] = ()
        self._default = 0
        self.current = Limit(0, None)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.on_change: Callable[[], None] = lambda: None

    def configure(self, rules: Sequence[str], default: int) -> None:
        self._rules = parse_rules(rules)
        self._default = default
        self.apply()
        self._changed.set()

    def apply(self) -> Limit:
        limit = limit_at(self._rules, self._clock(), self._default)
        if limit != self.current:
            if limit.rule is not None:
                log.info("bandwidth: %s by the schedule (%s)", describe_rate(limit.rate), limit.rule.text)
            elif self._rules:
                log.info("bandwidth: %s (no schedule rule now)", describe_rate(limit.rate))
            self.current = limit
            self._limiter.rate = limit.rate
            self.on_change()
        self._limiter.rate = limit.rate
        return limit

    def note(self) -> str | None:
        """For the tray tooltip: only while a rule is limiting."""
        rule = self.current.rule
        if rule is None or self.current.rate <= 0:
            return None
        until = self._lifts_at()
        now = self._clock()
        if until is None:
            when = ""
        elif until.date() == now.date():
            when = f" until {until:%H:%M}"
        else:
            when = f" until {until:%a %H:%M}"
        return f"Limited to {describe_rate(self.current.rate)} by the schedule{when}"

    def _lifts_at(self) -> datetime | None:
        """When the limit in force really changes: boundaries of rules that do not change it
        (a shadowed rule, a whole day followed by the next) are stepped over, a week at most."""
        now = self._clock()
        at = now
        for _ in range(64):
            boundary = next_change(self._rules, at)
            if boundary is None or (boundary - now).days > 7:
                return None
            if limit_at(self._rules, boundary, self._default) != self.current:
                return boundary
            at = boundary
        return None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bandwidth-timetable")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self.apply()
            now = self._clock()
            boundary = next_change(self._rules, now)
            wait = RECHECK
            if boundary is not None:
                wait = min(RECHECK, max(0.5, (boundary - now).total_seconds()))
            self._changed.clear()
            await wait_set(self._changed, wait)
