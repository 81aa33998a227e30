"""Engine events as Qt signals, and engine calls started from Qt slots.

Under qasync the engine's event loop is the Qt main loop, so bus callbacks already run on the
GUI thread: the bridge only re-emits them as typed signals. User actions are coroutines on
the engine; ``run`` starts one and turns a failure into a ``failed`` signal with the error's
own words, so no click can crash the app or fail silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.errors import PostFlowError
from app.core.events import (
    AuthStateChanged,
    EventBus,
    HealthChanged,
    JobAdded,
    JobProgress,
    JobStateChanged,
    RootsChanged,
    SettingsChanged,
    SettlingChanged,
    Snapshot,
    SnapshotChanged,
    UpdateAvailable,
)

log = logging.getLogger(__name__)


class EngineBridge(QObject):
    snapshot_changed = Signal(object)  # Snapshot
    job_added = Signal(object)  # JobAdded
    job_changed = Signal(object)  # JobStateChanged
    job_progress = Signal(object)  # JobProgress
    health_changed = Signal(object)  # HealthChanged
    auth_changed = Signal(object)  # AuthStateChanged
    roots_changed = Signal(object)  # RootsChanged
    settings_changed = Signal(object)  # SettingsChanged
    settling_changed = Signal(object)  # SettlingChanged
    update_available = Signal(object)  # UpdateAvailable
    failed = Signal(str, str)  # title, message: an action the user asked for did not work

    _ROUTES: dict[type, str] = {
        SnapshotChanged: "snapshot_changed",
        JobAdded: "job_added",
        JobStateChanged: "job_changed",
        JobProgress: "job_progress",
        HealthChanged: "health_changed",
        AuthStateChanged: "auth_changed",
        RootsChanged: "roots_changed",
        SettingsChanged: "settings_changed",
        SettlingChanged: "settling_changed",
        UpdateAvailable: "update_available",
    }

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, SnapshotChanged):
            self.snapshot = event.snapshot
        name = self._ROUTES.get(type(event))
        if name is not None:
            getattr(self, name).emit(event.snapshot if isinstance(event, SnapshotChanged) else event)

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """A snapshot read directly (at start-up, or right after an action)."""
        self.snapshot = snapshot
        self.snapshot_changed.emit(snapshot)

    def run(
        self, action: Callable[[], Awaitable[Any]], *, done: Callable[[Any], None] | None = None
    ) -> asyncio.Task[Any]:
        """Start an engine call from a slot; its error is shown, never raised into Qt."""

        async def guarded() -> Any:
            try:
                result = await action()
                if done is not None:
                    done(result)  # its own errors are told the same way
            except asyncio.CancelledError:
                raise
            except PostFlowError as exc:
                self.failed.emit(exc.title, exc.message)
                return None
            except Exception as exc:  # a bug: logged with its traceback, told plainly
                log.exception("action failed")
                self.failed.emit("Something went wrong", f"{type(exc).__name__}: {exc}. See the log tab.")
                return None
            return result

        task = asyncio.get_event_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float = 10.0) -> None:
        """At quit: let actions in flight finish (a click just made is not lost), then cancel
        what is left (a page of history still loading) before the windows go away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - loop.time()))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
