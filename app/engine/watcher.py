"""Finds finished files under the watched roots, at filespace scale.

A file event makes the watcher look at just the folder it names; files still settling are
looked at one by one; a full scan, paced to a small share of one core and never more often
than its own cost allows, is the safety net for volumes that miss events (LucidLink files
written by other machines raise none). All looking happens in worker threads (``tree_scan``);
only the differences reach the event loop. Events PostFlow's own reads cause (open, close
without writing) are ignored. A root that cannot be read is a health problem, reported once,
never a reason to forget or re-upload anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.event_wait import wait_set
from app.core.events import SettlingFile
from app.core.jobs import WatchRoot
from app.core.units import format_bytes
from app.engine.file_filter import FileFilter
from app.engine.media_complete import NOT_JUDGED, MediaCheck, check_media, judged
from app.engine.root_health import RootMonitor
from app.engine.stability import Observation, StabilityTracker
from app.engine.tree_scan import Diff, FoundFile, Seen, TreeState, nfc

__all__ = ["FoundFile", "Watcher", "scan_root"]

log = logging.getLogger(__name__)


def scan_root(
    root: WatchRoot, file_filter: FileFilter, skipped: dict[str, str] | None = None
) -> list[FoundFile]:
    """Every file of one root, now (blocking: run it in a thread). Raises OSError if the root
    is unreadable. ``skipped`` collects what is left out on purpose (relative path → why)."""
    diff = TreeState(root).full_scan(file_filter)
    if skipped is not None:
        skipped.update(diff.skipped)
    return diff.changed


ReadyCallback = Callable[[list[FoundFile]], Awaitable[None]]
HealthCallback = Callable[[WatchRoot, str | None], None]
SettlingCallback = Callable[[tuple[SettlingFile, ...]], None]
MovedCallback = Callable[[WatchRoot, list[tuple[Seen, FoundFile]]], Awaitable[set[str]]]
GoneCallback = Callable[[WatchRoot, list[Seen]], Awaitable[None]]
KnownCallback = Callable[[str], Awaitable[list[tuple[str, int, int]]]]

SEEN_ONE_BY_ONE = 5  # more new files than this in one scan are logged as one line
FULL_SCAN_DUTY = 0.01  # full scans never take more than this share of the time between them
OWN_READS = frozenset({"opened", "closed_no_write"})  # what reading a file raises (inotify)
CHANGES: list[Any] = []  # the watchdog event classes that mean a change (filled on first use)
MARKER_RECHECK = 2.0  # seconds between looks for a done-marker
EMPTY = Observation(0, 0)
EVENT_DEBOUNCE = 0.2  # a burst of file events makes one look, not hundreds


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
        *,
        quiet_seconds: float = 3.0,
        check_media: bool = True,
        use_events: bool = True,
        max_reads: int = 4,
        on_moved: MovedCallback | None = None,
        on_gone: GoneCallback | None = None,
        known_versions: KnownCallback | None = None,
    ) -> None:
        self._monitor = monitor
        self._on_settling = on_settling
        self._on_moved = on_moved
        self._on_gone = on_gone
        self._known_versions = known_versions
        self._settling: tuple[SettlingFile, ...] = ()
        self._filter = file_filter
        self._scan_interval = scan_interval
        self._quiet = quiet_seconds
        self._check_media = check_media
        self.use_events = use_events
        self._reads = asyncio.Semaphore(max(1, max_reads))  # concurrent looks at the volume
        self._read_count = max(1, max_reads)
        self._held_told: set[str] = set()  # files whose unfinished container was logged
        self._on_ready = on_ready
        self._on_health = on_health
        self._roots: dict[str, WatchRoot] = {}
        self._trees: dict[str, TreeState] = {}
        self._trackers: dict[str, StabilityTracker] = {}
        self._next_full: dict[str, float] = {}  # root id → monotonic time of its next full scan
        self._full_now = True  # a full scan of every root at the next pass ("Scan now", start)
        self._dirty: dict[str, set[str]] = {}  # root id → folders an event named (filled by threads)
        self._marker_held: dict[str, set[str]] = {}
        self._stable_seconds = stable_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._observer: Any = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._root_problem: dict[str, str | None] = {}
        self._watches: dict[str, Any] = {}  # root id → its watchdog watch
        # One scan at a time: "Check now" during the periodic scan would otherwise let a scan
        # that judged the folder before it vanished report it fine after the other said gone.
        self._scanning = asyncio.Lock()
        self._skips_told: dict[str, dict[str, str]] = {}  # root id → path → why (logged once)
        self._settling_told: dict[tuple[str, str], int] = {}  # (root id, path) → size logged
        self.full_scans = 0  # for tests and the benchmark: how often the whole tree was read
        self.folder_looks = 0  # folders listed in targeted looks

    # ---- roots and settings ----
    def add_root(self, root: WatchRoot) -> None:
        self._roots[root.id] = root
        self._trees[root.id] = TreeState(root)
        self._trackers[root.id] = StabilityTracker(self._stable_seconds, self._quiet)
        self._next_full[root.id] = 0.0
        self._schedule_events(root)
        self.poke()

    def remove_root(self, root_id: str) -> None:
        self._roots.pop(root_id, None)
        self._trees.pop(root_id, None)
        self._trackers.pop(root_id, None)
        self._next_full.pop(root_id, None)
        self._root_problem.pop(root_id, None)
        self._dirty.pop(root_id, None)
        self._publish_settling()
        if self._observer is not None:  # its file events stop too
            asyncio.get_running_loop().run_in_executor(None, self._unschedule, root_id)

    def configure(self, file_filter: FileFilter, stable_seconds: float, scan_interval: float,
                  quiet_seconds: float | None = None, check_media: bool | None = None) -> None:  # fmt: skip
        """Live settings: the next scan uses them (files settling keep the time already waited)."""
        refilter = file_filter != self._filter
        self._filter = file_filter
        self._stable_seconds = stable_seconds
        self._scan_interval = scan_interval
        if quiet_seconds is not None:
            self._quiet = quiet_seconds
        if check_media is not None:
            self._check_media = check_media
        for tracker in self._trackers.values():
            tracker.window = stable_seconds
            tracker.quiet = min(self._quiet, stable_seconds)
        if refilter:  # other files are in or out now: look at everything again
            self._full_now = True
        self.poke()

    def forget(self, root_id: str, rel_path: str) -> None:
        """Look at this file afresh: its job ended without delivering it (it was moved away,
        say), so the version seen now, even an identical one, is offered again once stable."""
        tracker, tree = self._trackers.get(root_id), self._trees.get(root_id)
        if tracker is None or tree is None:
            return
        ident = tree.identity(rel_path)
        tracker.forget(ident)
        tree.forget(ident)
        self._dirty.setdefault(root_id, set()).add(rel_path.rsplit("/", 1)[0] if "/" in rel_path else "")
        self.poke()

    def poke(self) -> None:
        """Look soon (a file event)."""
        self._wake.set()

    # ---- lifecycle ----
    async def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        if self.use_events:
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
        """Look at everything now, in full ("Scan now", "Check now")."""
        async with self._scanning:
            self._full_now = True
            await self._pass()

    # ---- state others read ----
    def settling(self) -> int:
        return sum(t.pending() for t in self._trackers.values())

    def settling_files(self) -> tuple[SettlingFile, ...]:
        return self._settling

    # ---- the loop ----
    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                async with self._scanning:
                    await self._pass()
            except Exception:
                log.exception("scan failed")
            if await wait_set(self._wake, self._next_wait()):
                await asyncio.sleep(EVENT_DEBOUNCE)

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [max(0.05, due - now) for due in self._next_full.values()]
        for tracker in self._trackers.values():
            due = tracker.next_due(now)
            if due is not None:  # growth is looked at now and then too, to show it
                waits.append(max(0.05, min(due, max(0.2, self._stable_seconds / 4))))
        if any(self._marker_held.values()):
            waits.append(MARKER_RECHECK)
        return min(waits) if waits else max(self._scan_interval, 1.0)

    async def _pass(self) -> None:
        full_now, self._full_now = self._full_now, False
        for root in list(self._roots.values()):
            await self._look_at(root, full_now)
        self._publish_settling()

    async def _look_at(self, root: WatchRoot, full_now: bool) -> None:
        tree, tracker = self._trees.get(root.id), self._trackers.get(root.id)
        if tree is None or tracker is None:
            return
        problem = await asyncio.to_thread(self._monitor.check, root.id, root.path)
        if problem is not None:  # gone, or only its empty mount point: forget nothing
            self._report(root, problem)
            return
        now = time.monotonic()
        full = full_now or now >= self._next_full.get(root.id, 0.0)
        dirty = self._dirty.pop(root.id, set())
        try:
            if full:
                if tree.full_scans == 0 and self._known_versions is not None:
                    tree.expect(await self._known_versions(root.id))
                throttle = not full_now and tree.full_scans > 0  # the safety net, in the background
                async with self._reads:
                    diff = await asyncio.to_thread(tree.full_scan, self._filter, throttle)
                self.full_scans += 1
                spacing = max(self._scan_interval, tree.cpu_seconds / FULL_SCAN_DUTY)
                self._next_full[root.id] = time.monotonic() + spacing
                self._tell_skipped(root, diff.skipped, replace=True)
            elif dirty:
                async with self._reads:
                    before = tree.listed
                    diff = await asyncio.to_thread(tree.scan_dirs, dirty, self._filter)
                    self.folder_looks += tree.listed - before
                self._tell_skipped(root, diff.skipped, replace=False)
            else:
                diff = Diff()
        except OSError as exc:
            self._report(root, f"{root.path} cannot be read: {exc.strerror or exc}")
            if dirty:
                self._dirty.setdefault(root.id, set()).update(dirty)
            return
        self._report(root, None)
        if root.id not in self._roots:
            return  # removed while its scan was under way: not watched any more
        await self._apply(root, tree, tracker, diff, time.monotonic())
        settling = [k for k in tracker.settling_keys() if (tracker.observation(k) or EMPTY).size > 0]
        if settling:  # files still changing are looked at one by one, not by listing the tree
            async with self._reads:
                again = await asyncio.to_thread(tree.stat_files, settling)
            await self._apply(root, tree, tracker, again, time.monotonic())
        await self._judge(root, tree, tracker)
        await self._queue_ready(root, tree, tracker)

    async def _apply(self, root: WatchRoot, tree: TreeState, tracker: StabilityTracker, diff: Diff,
                     now: float) -> None:  # fmt: skip
        """Feed a look's differences to the stability clocks; moves and deletions first."""
        if not diff:
            return
        moved: set[str] = set()
        consumed: set[str] = set()
        if diff.removed and diff.changed and self._on_moved is not None:
            pairs = _pair_moves(diff)
            if pairs:
                moved = await self._on_moved(root, pairs)
                consumed = {tree.identity(old.rel_path) for old, new in pairs if new.rel_path in moved}
        gone = [seen for ident, seen in diff.removed.items() if ident not in consumed]
        for ident in diff.removed:
            tracker.forget(ident)
        if gone and self._on_gone is not None:
            await self._on_gone(root, gone)
        for f in diff.changed:
            ident = tree.identity(f.rel_path)
            if f.rel_path in moved:
                tracker.forget(ident)
                continue
            tracker.observe(ident, Observation(f.size, f.mtime_ns), now)

    async def _judge(self, root: WatchRoot, tree: TreeState, tracker: StabilityTracker) -> None:
        """Look inside files that have been quiet a moment: a complete container goes at once,
        an incomplete one waits; a missing done-marker holds a file too."""
        held = self._marker_held.setdefault(root.id, set())
        for key in list(held):
            tracker.recheck(key)
        held.clear()
        keys = tracker.due_for_check(time.monotonic())
        if not keys:
            return

        looked = [
            (k, seen, obs) for k in keys if (seen := tree.files.get(k)) and (obs := tracker.observation(k))
        ]
        chunks = [looked[i :: self._read_count] for i in range(self._read_count)]

        async def judge(chunk: list[tuple[str, Seen, Observation]]) -> list[tuple[MediaCheck, bool]]:
            async with self._reads:  # one thread hop per chunk, not per file (10,000 renders)
                return await asyncio.to_thread(
                    lambda: [self._judge_file(root, s.abs_path) for _, s, _ in chunk]
                )

        results = await asyncio.gather(*(judge(c) for c in chunks if c))
        for chunk, verdicts in zip([c for c in chunks if c], results, strict=True):
            for (key, seen, observation), (check, marker_missing) in zip(chunk, verdicts, strict=True):
                hold = ""
                if marker_missing:
                    hold = f"waiting for {seen.rel_path.rsplit('/', 1)[-1]}{root.done_marker}"
                    held.add(key)
                elif check.reason and key not in self._held_told:
                    self._held_told.add(key)
                    log.info("%s: %s; it waits until its render finishes", seen.rel_path, check.reason)
                tracker.checked(key, observation, check, hold)

    def _judge_file(self, root: WatchRoot, abs_path: str) -> tuple[MediaCheck, bool]:
        marker_missing = bool(root.done_marker) and not os.path.exists(abs_path + root.done_marker)
        if not self._check_media or not judged(abs_path):
            return NOT_JUDGED, marker_missing
        return check_media(abs_path), marker_missing

    async def _queue_ready(self, root: WatchRoot, tree: TreeState, tracker: StabilityTracker) -> None:
        keys = tracker.ready(time.monotonic())
        batch = [f for f in (tree.files.get(k) for k in keys) if f is not None]
        if not batch:
            return
        await self._on_ready(batch)  # raises if they could not be queued: offered again
        for key in keys:
            tracker.mark_queued(key)

    # ---- telling ----
    def _tell_skipped(self, root: WatchRoot, skipped: dict[str, str], replace: bool) -> None:
        """Files left out on purpose, at DEBUG, once each (not at every scan)."""
        told = self._skips_told.setdefault(root.id, {})
        for rel_path, why in skipped.items():
            if told.get(rel_path) != why:
                log.debug("%s/%s: not uploaded: %s", root.path, rel_path, why)
        if replace:
            self._skips_told[root.id] = skipped
        else:
            told.update(skipped)

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
        """After a look: tell listeners which files wait for their render to finish, if that
        changed (a file appeared, grew, settled, was held or vanished)."""
        wall, mono = time.time(), time.monotonic()
        files = []
        for root_id, tracker in self._trackers.items():
            tree = self._trees[root_id]
            for key, size, since, held in sorted(tracker.settling()):
                seen = tree.files.get(key)
                files.append(SettlingFile(root_id, seen.rel_path if seen else key, size,
                                          wall + (since + tracker.window - mono), held))  # fmt: skip
        settled = tuple(files)
        self._tell_settling(settled)
        if [(f.root_id, f.rel_path, f.size, f.held) for f in settled] != [
            (f.root_id, f.rel_path, f.size, f.held) for f in self._settling
        ]:
            self._settling = settled
            if self._on_settling is not None:
                self._on_settling(settled)

    def _report(self, root: WatchRoot, problem: str | None) -> None:
        before = self._root_problem.get(root.id, "")
        if before != problem:
            self._root_problem[root.id] = problem
            if problem:
                log.warning("%s", problem)
            elif before:
                log.info("%s is reachable again: waiting uploads resume", root.path)
            self._on_health(root, problem)

    # ---- watchdog: which folders to look at ----
    async def _start_observer(self) -> None:
        from watchdog.observers import Observer

        # A folder moved away and back makes watchdog's inotify warn about a callback it already
        # has; the scan is the truth either way, so the warning is only noise in the user's log.
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
        observer = Observer()
        observer.daemon = True

        def setup() -> None:  # recursive watches on a big filespace take a while: not on the loop
            for root in list(self._roots.values()):
                self._schedule_on(observer, root)
            observer.start()

        await asyncio.to_thread(setup)
        self._observer = observer

    def _event(self, root_id: str, base: str, event: Any) -> None:
        """In watchdog's thread: note the folders this event concerns and wake the loop."""
        if event.event_type in OWN_READS:
            return  # reading a file (our own upload, a player) changes nothing
        folders = set()
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if not path:
                continue
            rel = os.path.relpath(os.fsdecode(path), base)
            if rel == "." or rel.startswith(".."):
                rel = ""
            rel = nfc(rel.replace(os.sep, "/"))
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            folders.add(parent)
            if event.is_directory and rel:
                folders.add(rel)
        loop = self._loop_ref
        if loop is not None:
            loop.call_soon_threadsafe(self._mark_dirty, root_id, folders)

    def _mark_dirty(self, root_id: str, folders: set[str]) -> None:
        if root_id in self._roots:
            self._dirty.setdefault(root_id, set()).update(folders)
            self.poke()

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
        from watchdog import events
        from watchdog.events import FileSystemEventHandler

        if not CHANGES:
            CHANGES.extend([events.FileCreatedEvent, events.DirCreatedEvent, events.FileDeletedEvent,
                            events.DirDeletedEvent, events.FileMovedEvent, events.DirMovedEvent,
                            events.FileModifiedEvent, events.DirModifiedEvent,
                            events.FileClosedEvent])  # fmt: skip

        watcher = self

        class Hint(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._event(root.id, root.path, event)

        try:  # reads (ours, a scan's folder opens) are not even asked of the kernel: a full scan
            # of 5,000 folders would otherwise overflow inotify's queue, and watchdog's
            # reconciliation of an overflow walks the whole tree again, and again
            self._watches[root.id] = observer.schedule(
                Hint(), root.path, recursive=True, event_filter=CHANGES
            )
        except OSError as exc:  # unreachable now, or too many folders for inotify: the scans do it
            log.info("no file events for %s (%s): found by scanning every %gs", root.path, exc,
                     self._scan_interval)  # fmt: skip


def _pair_moves(diff: Diff) -> list[tuple[Seen, FoundFile]]:
    """A file gone from one path and the same size and mtime at a new path in the same look:
    probably moved or renamed. Same name first, then by order."""
    by_version: dict[tuple[int, int], list[Seen]] = {}
    for seen in diff.removed.values():
        by_version.setdefault((seen.size, seen.mtime_ns), []).append(seen)
    pairs = []
    for new in diff.changed:
        candidates = by_version.get((new.size, new.mtime_ns))
        if not candidates:
            continue
        name = new.rel_path.rsplit("/", 1)[-1]
        pick = next((c for c in candidates if c.rel_path.rsplit("/", 1)[-1] == name), candidates[0])
        candidates.remove(pick)
        pairs.append((pick, new))
    return pairs
