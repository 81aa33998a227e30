"""Finds finished files under the watched roots.

The periodic scan is the truth (network volumes miss events); watchdog events only make the
next scan come sooner. Scans walk the disk in a worker thread. A root that cannot be read is a
health problem, reported once, never a reason to forget or re-upload anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.events import SettlingFile
from app.core.jobs import WatchRoot
from app.core.units import format_bytes
from app.engine.file_filter import FileFilter
from app.engine.root_health import RootMonitor
from app.engine.stability import Observation, StabilityTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFile:
    root: WatchRoot
    rel_path: str
    abs_path: str
    size: int
    mtime_ns: int


def scan_root(
    root: WatchRoot, file_filter: FileFilter, skipped: dict[str, str] | None = None
) -> list[FoundFile]:
    """Walk one root (blocking: run it in a thread). Raises OSError if the root is unreadable.
    ``skipped`` collects what is left out on purpose (relative path → why), for the log."""
    base = Path(root.path)
    if not base.is_dir():
        raise FileNotFoundError(f"watched folder {root.path} is not reachable")
    found: list[FoundFile] = []
    stack = [base]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        why: str | None = None
                        if entry.is_symlink():
                            why = "it is a symbolic link (only real files are uploaded)"
                        elif entry.is_dir(follow_symlinks=False):
                            if not file_filter.ignores_dir(entry.name):
                                stack.append(Path(entry.path))
                            else:
                                why = "a hidden or ignored folder"
                        elif not entry.is_file(follow_symlinks=False):
                            why = "it is not a regular file (a pipe, socket or device)"
                        else:
                            why = file_filter.why_skipped(entry.name)
                            if why is None:
                                st = entry.stat(follow_symlinks=False)
                                rel = Path(entry.path).relative_to(base).as_posix()
                                found.append(FoundFile(root, rel, entry.path, st.st_size, st.st_mtime_ns))
                        if why is not None and skipped is not None:
                            skipped[Path(entry.path).relative_to(base).as_posix()] = why
                    except OSError:
                        continue  # vanished or unreadable mid-scan: the next scan decides
        except OSError:
            if current == base:
                raise
    return found


ReadyCallback = Callable[[FoundFile], Awaitable[None]]
HealthCallback = Callable[[WatchRoot, str | None], None]
SettlingCallback = Callable[[tuple[SettlingFile, ...]], None]


SEEN_ONE_BY_ONE = 5  # more new files than this in one scan are logged as one line


class Watcher:
    def __init__(
        self,
        file_filter: FileFilter,
        stable_seconds: float,
        scan_interval: float,
        on_ready: ReadyCallback,
        on_health: HealthCallback,
        monitor: RootMonitor,
        on_settling: SettlingCallback | None = None,
    ) -> None:
        self._monitor = monitor
        self._on_settling = on_settling
        self._settling: tuple[SettlingFile, ...] = ()
        self._filter = file_filter
        self._scan_interval = scan_interval
        self._on_ready = on_ready
        self._on_health = on_health
        self._roots: dict[str, WatchRoot] = {}
        self._trackers: dict[str, StabilityTracker] = {}
        self._stable_seconds = stable_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observer: Any = None
        self._root_problem: dict[str, str | None] = {}
        self._watches: dict[str, Any] = {}  # root id → its watchdog watch
        # One scan at a time: "Check now" during the periodic scan would otherwise let a scan
        # that judged the folder before it vanished report it fine after the other said gone.
        self._scanning = asyncio.Lock()
        self._skips_told: dict[str, dict[str, str]] = {}  # root id → path → why (logged once)
        self._settling_told: dict[tuple[str, str], int] = {}  # (root id, path) → size logged

    def add_root(self, root: WatchRoot) -> None:
        self._roots[root.id] = root
        self._trackers[root.id] = StabilityTracker(self._stable_seconds)
        self._schedule_events(root)
        self.poke()

    def remove_root(self, root_id: str) -> None:
        self._roots.pop(root_id, None)
        self._trackers.pop(root_id, None)
        self._root_problem.pop(root_id, None)
        self._publish_settling()
        if self._observer is not None:  # its file events stop too
            asyncio.get_running_loop().run_in_executor(None, self._unschedule, root_id)

    def configure(self, file_filter: FileFilter, stable_seconds: float, scan_interval: float) -> None:
        """Live settings: the next scan uses them (files settling keep the time already waited)."""
        self._filter = file_filter
        self._stable_seconds = stable_seconds
        self._scan_interval = scan_interval
        for tracker in self._trackers.values():
            tracker.window = stable_seconds
        self.poke()

    def forget(self, root_id: str, rel_path: str) -> None:
        """Look at this file afresh: its job ended without delivering it (it was moved away,
        say), so the version seen now, even an identical one, is offered again once stable."""
        tracker = self._trackers.get(root_id)
        if tracker is not None:
            tracker.forget(rel_path)

    def poke(self) -> None:
        """Scan soon (a watchdog event, a user action)."""
        self._wake.set()

    async def start(self) -> None:
        await self._start_observer()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 5)

    async def scan_once(self) -> None:
        async with self._scanning:
            await self._scan_roots()

    async def _scan_roots(self) -> None:
        for root in list(self._roots.values()):
            problem = await asyncio.to_thread(self._monitor.check, root.id, root.path)
            if problem is not None:  # gone, or only its empty mount point: forget nothing
                self._report(root, problem)
                continue
            skipped: dict[str, str] = {}
            try:
                found = await asyncio.to_thread(scan_root, root, self._filter, skipped)
            except OSError as exc:
                self._report(root, f"{root.path} cannot be read: {exc.strerror or exc}")
                continue
            self._report(root, None)
            self._tell_skipped(root, skipped)
            tracker = self._trackers.get(root.id)
            if tracker is None:
                continue
            now = time.monotonic()
            tracker.keep_only({f.rel_path for f in found})
            for f in found:
                if tracker.observe(f.rel_path, Observation(f.size, f.mtime_ns), now):
                    await self._on_ready(f)  # raises if it could not be queued: offered again
                    tracker.mark_queued(f.rel_path)
        self._publish_settling()

    def settling(self) -> int:
        return sum(t.pending() for t in self._trackers.values())

    def settling_files(self) -> tuple[SettlingFile, ...]:
        return self._settling

    def _tell_skipped(self, root: WatchRoot, skipped: dict[str, str]) -> None:
        """Files left out on purpose, at DEBUG, once each (not at every scan)."""
        told = self._skips_told.setdefault(root.id, {})
        for rel_path, why in skipped.items():
            if told.get(rel_path) != why:
                log.debug("%s/%s: not uploaded: %s", root.path, rel_path, why)
        self._skips_told[root.id] = skipped

    def _tell_settling(self, files: tuple[SettlingFile, ...]) -> None:
        """A file seen but still changing is said once (and at DEBUG as it grows), so the log
        shows why it is not uploading yet."""
        current = {(f.root_id, f.rel_path): f.size for f in files}
        new = [key for key in current if key not in self._settling_told]
        many = len(new) > SEEN_ONE_BY_ONE  # an image sequence: one line, not one per frame
        for key, size in current.items():
            before = self._settling_told.get(key)
            if before is None:
                what = "empty for now" if size == 0 else format_bytes(size)
                log.log(logging.DEBUG if many else logging.INFO, "%s: seen (%s); uploads once it has not "
                        "changed for %gs", key[1], what, self._stable_seconds)  # fmt: skip
            elif before != size:
                log.debug("%s: still changing (%s)", key[1], format_bytes(size))
        if many:
            names = ", ".join(key[1] for key in new[:3])
            log.info("%d files seen (%s and %d more); they upload once unchanged for %gs", len(new), names,
                     len(new) - 3, self._stable_seconds)  # fmt: skip
        self._settling_told = current

    def _publish_settling(self) -> None:
        """After a scan: tell listeners which files wait for their render to finish, if that
        changed (a file appeared, grew, settled or vanished)."""
        wall, mono = time.time(), time.monotonic()
        files = tuple(
            SettlingFile(root_id, key, size, wall + (since + tracker.window - mono))
            for root_id, tracker in self._trackers.items()
            for key, size, since in sorted(tracker.settling())
        )
        self._tell_settling(files)
        if [(f.root_id, f.rel_path, f.size) for f in files] != [
            (f.root_id, f.rel_path, f.size) for f in self._settling
        ] or len(files) != len(self._settling):
            self._settling = files
            if self._on_settling is not None:
                self._on_settling(files)

    def _report(self, root: WatchRoot, problem: str | None) -> None:
        before = self._root_problem.get(root.id, "")
        if before != problem:
            self._root_problem[root.id] = problem
            if problem:
                log.warning("%s", problem)
            elif before:
                log.info("%s is reachable again: waiting uploads resume", root.path)
            self._on_health(root, problem)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.scan_once()
            except Exception:
                log.exception("scan failed")
            interval = self._scan_interval
            if any(t.pending() for t in self._trackers.values()):
                interval = min(interval, max(0.2, self._stable_seconds / 4))  # settle files promptly
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
                await asyncio.sleep(0.2)  # a burst of file events makes one scan, not hundreds
            except TimeoutError:
                pass

    # ---- watchdog: a hint only ----
    async def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        # A folder moved away and back makes watchdog's inotify warn about a callback it already
        # has; the scan is the truth either way, so the warning is only noise in the user's log.
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)

        loop = asyncio.get_running_loop()
        watcher = self

        class Hint(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                loop.call_soon_threadsafe(watcher.poke)

        self._hint = Hint()
        observer = Observer()
        observer.daemon = True

        def setup() -> None:  # recursive watches on a big filespace take a while: not on the loop
            for root in list(self._roots.values()):
                self._schedule_on(observer, root)
            observer.start()

        await asyncio.to_thread(setup)
        self._observer = observer

    def _schedule_events(self, root: WatchRoot) -> None:
        """A root added while running: its watch is set up in a worker thread."""
        if self._observer is not None:
            asyncio.get_running_loop().run_in_executor(None, self._schedule_on, self._observer, root)

    def _unschedule(self, root_id: str) -> None:
        watch = self._watches.pop(root_id, None)
        if watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError, OSError):  # already gone with its volume
                self._observer.unschedule(watch)

    def _schedule_on(self, observer: Any, root: WatchRoot) -> None:
        try:
            self._watches[root.id] = observer.schedule(self._hint, root.path, recursive=True)
        except OSError as exc:  # unreachable now; the scan reports it
            log.info("no file events for %s: %s", root.path, exc)
