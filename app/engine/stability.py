"""When is a file finished? Pure decisions, fed by looks at the disk.

LucidLink files appear empty, then grow while their writer syncs, so any change of size or
mtime restarts the clock. A file is finished when it is not empty and unchanged for the whole
stability window, or, when its container shows it is complete (``media_complete``), for the
short quiet period. A file whose container shows it is *not* complete waits however long it
stays unchanged: a stalled render must not be uploaded half-written.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.media_complete import MediaCheck, Verdict


@dataclass(frozen=True)
class Observation:
    size: int
    mtime_ns: int


@dataclass
class _Seen:
    observation: Observation
    since: float
    fired: bool = False
    check: MediaCheck | None = None  # the container's verdict on this observation
    held: str = ""  # why it waits although unchanged


class StabilityTracker:
    def __init__(self, window: float, quiet: float | None = None) -> None:
        self.window = window
        self.quiet = window if quiet is None else min(quiet, window)
        self._seen: dict[str, _Seen] = {}

    def observe(self, key: str, observation: Observation, now: float) -> bool:
        """Record a sighting; True while this version is ready by stability alone (no
        container check) and not yet queued."""
        seen = self._seen.get(key)
        if seen is None or seen.observation != observation:
            seen = self._seen[key] = _Seen(observation, now)
        return not seen.fired and observation.size > 0 and now - seen.since >= self.window

    def due_for_check(self, now: float) -> list[str]:
        """Files quiet long enough that their container should be looked at (once per version)."""
        return [k for k, s in self._seen.items() if not s.fired and s.check is None
                and s.observation.size > 0 and now - s.since >= self.quiet]  # fmt: skip

    def checked(self, key: str, observation: Observation, check: MediaCheck, held: str = "") -> None:
        """The container's verdict (and any other hold, such as a missing done-marker) for the
        version that was looked at; ignored if the file changed meanwhile."""
        seen = self._seen.get(key)
        if seen is not None and seen.observation == observation:
            seen.check = check
            seen.held = held or (check.reason if check.verdict is Verdict.INCOMPLETE else "")

    def recheck(self, key: str) -> None:
        seen = self._seen.get(key)
        if seen is not None:
            seen.check = None

    def ready(self, now: float) -> list[str]:
        """Files to queue now: complete containers after the quiet period, the others (not
        judged) after the whole window; never one held."""
        out = []
        for key, s in self._seen.items():
            if s.fired or s.observation.size <= 0 or s.check is None or s.held:
                continue
            age = now - s.since
            if age >= self.window or (s.check.verdict is Verdict.COMPLETE and age >= self.quiet):
                out.append(key)
        return out

    def next_due(self, now: float) -> float | None:
        """Seconds until the next non-empty file could be checked or ready (None: no such file).
        Empty files and held ones never make the watcher look sooner."""
        waits = []
        for s in self._seen.values():
            if s.fired or s.observation.size <= 0 or s.held:
                continue
            target = (
                self.quiet
                if s.check is None
                else (self.quiet if s.check.verdict is Verdict.COMPLETE else self.window)
            )
            waits.append(max(0.0, s.since + target - now))
        return min(waits) if waits else None

    def mark_queued(self, key: str) -> None:
        """The ready version is safely in the queue: stop offering it (and stop holding it in
        memory: a later change is reported as a new version by the scan)."""
        self._seen.pop(key, None)

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Drop files that vanished from the folder."""
        for key in list(self._seen):
            if key not in keys:
                del self._seen[key]

    def observation(self, key: str) -> Observation | None:
        seen = self._seen.get(key)
        return None if seen is None else seen.observation

    def settling_keys(self) -> list[str]:
        return [k for k, s in self._seen.items() if not s.fired]

    def settling(self) -> list[tuple[str, int, float, str]]:
        """(key, size, since, held) of files still settling, for "waiting for the render"."""
        return [(k, s.observation.size, s.since, s.held) for k, s in self._seen.items() if not s.fired]

    def pending(self) -> int:
        """Files still settling (seen, not yet queued)."""
        return sum(1 for s in self._seen.values() if not s.fired)
