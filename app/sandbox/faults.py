"""Injected failures: a share of requests in a scope fail in a chosen way, or a burst does.

Scopes: ``parts`` (storage PUTs), ``api`` (Frame.io /v4), ``ims`` (Adobe), ``discord``, and
``fetch`` (the remote_upload fetcher's own requests, failing on its side: ``reset``, ``stall``,
``slow``).
Kinds: ``400`` (a refusal), ``500``, ``503``, ``429``, ``reset`` (connection dropped), ``stall``
(no answer for ``stall_seconds``, then dropped), ``garbage`` (200 with a body that is not JSON), ``lost`` (the
request is carried out, then the connection drops before the answer: a lost response), ``lost_late``
(carried out, then the answer is held for ``stall_seconds`` before the connection drops: what a
client timing out on a slow answer sees, while the work goes on).
``only`` limits a scope's faults to one operation id (e.g. ``files.create_local_upload``).
A seeded RNG keeps a run reproducible.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

SCOPES = ("parts", "api", "ims", "discord", "fetch")
KINDS = ("400", "500", "503", "429", "reset", "stall", "garbage", "lost", "lost_late")
FETCH_KINDS = ("reset", "stall", "slow")


@dataclass
class ScopeFaults:
    rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: ["500"])
    burst: int = 0  # the next N requests fail regardless of rate
    burst_kind: str = "429"
    only: str = ""  # an operation id: faults hit only that operation


def _fresh() -> dict[str, ScopeFaults]:
    scopes = {s: ScopeFaults() for s in SCOPES}
    scopes["fetch"] = ScopeFaults(kinds=["reset"], burst_kind="reset")
    return scopes


class FaultInjector:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.scopes: dict[str, ScopeFaults] = _fresh()
        self.injected: dict[str, int] = {s: 0 for s in SCOPES}

    def configure(self, doc: dict[str, Any]) -> None:
        """Apply ``{"parts": {"rate": 0.2, "kinds": ["500", "reset"]}, "api": {"burst": 5}}``."""
        for scope, settings in doc.items():
            if scope == "seed":
                self._rng.seed(int(settings))
                continue
            if scope not in SCOPES or not isinstance(settings, dict):
                raise ValueError(f"unknown fault scope {scope!r}; expected one of {SCOPES}")
            current = asdict(self.scopes[scope])
            unknown = set(settings) - set(current)
            if unknown:
                raise ValueError(f"unknown fault setting(s) {sorted(unknown)}")
            current.update(settings)
            faults = ScopeFaults(**current)
            allowed = FETCH_KINDS if scope == "fetch" else KINDS
            bad = [k for k in [*faults.kinds, faults.burst_kind] if k not in allowed]
            if bad or not 0.0 <= float(faults.rate) <= 1.0:
                raise ValueError(f"{scope} fault kinds must be in {allowed} and rate in [0, 1]")
            self.scopes[scope] = faults

    def clear(self) -> None:
        self.scopes = _fresh()

    def pick(self, scope: str, operation: str = "") -> str | None:
        faults = self.scopes[scope]
        if faults.only and faults.only != operation:
            return None
        kind: str | None = None
        if faults.burst > 0:
            faults.burst -= 1
            kind = faults.burst_kind
        elif faults.rate > 0 and self._rng.random() < faults.rate:
            kind = self._rng.choice(faults.kinds)
        if kind is not None:
            self.injected[scope] += 1
        return kind

    def describe(self) -> dict[str, Any]:
        return {
            "scopes": {s: asdict(f) for s, f in self.scopes.items()},
            "injected": dict(self.injected),
        }
