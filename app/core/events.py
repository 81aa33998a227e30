"""Typed, frozen events and the small bus that carries them from the engine to its clients.

The GUI bridges these to Qt signals; the CLI prints them; tests await them. Subscribers are
called synchronously on the engine's event loop and must not block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

log = logging.getLogger(__name__)


class AuthState(Enum):
    SIGNED_OUT = "signed_out"
    SIGNED_IN = "signed_in"


@dataclass(frozen=True)
class AuthStateChanged:
    state: AuthState
    user_name: str | None = None
    user_email: str | None = None
    account_id: str | None = None
    reason: str | None = None  # why we are signed out, in words for the user


Event = Any  # any frozen dataclass defined in app.core.events
Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken subscriber must not stop the engine
                log.exception("event subscriber failed on %s", type(event).__name__)


# ---- upload engine ----


@dataclass(frozen=True)
class JobAdded:
    job_id: int
    rel_path: str
    root_id: str
    size: int


@dataclass(frozen=True)
class JobStateChanged:
    job_id: int
    rel_path: str
    state: str  # a JobState value
    error: str | None = None
    remote_file_id: str | None = None


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    bytes_done: int
    size: int
    bytes_per_second: float


@dataclass(frozen=True)
class HealthChanged:
    component: str  # "watch:<root id>", "frameio", "auth"
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class EngineStateChanged:
    running: bool
    paused: bool
    waiting_for_sign_in: bool
