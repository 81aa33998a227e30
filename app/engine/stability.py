"""When is a file finished? Pure decision, fed by scans: size > 0 and size and mtime unchanged
for the whole stability window. LucidLink files appear empty, then grow while their writer
syncs, so any change restarts the clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    size: int
    mtime_ns: int


@dataclass
class _Seen:
    observation: Observation
    since: float
    fired: bool = False


class StabilityTracker:
    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: dict[str, _Seen] = {}

    def observe(self, key: str, observation: Observation, now: float) -> bool:
        """Record a sighting; True while this version is ready and not yet queued."""
        seen = self._seen.get(key)
        if seen is None or seen.observation != observation:
            seen = self._seen[key] = _Seen(observation, now)
        return not seen.fired and observation.size > 0 and now - seen.since >= self.window

    def mark_queued(self, key: str) -> None:
        """The ready version is safely in the queue: stop offering it."""
        seen = self._seen.get(key)
        if seen is not None:
            seen.fired = True

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Drop files that vanished from the folder."""
        for key in list(self._seen):
            if key not in keys:
                del self._seen[key]

    def settling(self) -> list[tuple[str, int, float]]:
        """(key, size, since) of files still settling, for "waiting for the render to finish"."""
        return [(k, s.observation.size, s.since) for k, s in self._seen.items() if not s.fired]

    def pending(self) -> int:
        """Files still settling (seen, not yet queued)."""
        return sum(1 for s in self._seen.values() if not s.fired)
