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
        """Record a sighting; True once, when this version of the file becomes ready."""
        seen = self._seen.get(key)
        if seen is None or seen.observation != observation:
            seen = self._seen[key] = _Seen(observation, now)
        if seen.fired or observation.size <= 0 or now - seen.since < self.window:
            return False
        seen.fired = True
        return True

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Drop files that vanished from the folder."""
        for key in list(self._seen):
            if key not in keys:
                del self._seen[key]

    def pending(self) -> int:
        """Files still settling (seen, not yet ready)."""
        return sum(1 for s in self._seen.values() if not s.fired)
