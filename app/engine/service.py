"""EngineService: the one facade the GUI and CLI call, and the stream of typed events they hear.

It builds the engine's parts and delegates to them by role: the ``Scheduler`` decides what
runs when and runs each attempt, the ``AccountGuard`` holds uploads while signed out or signed
in to another account, the ``JobBoard`` stores every change before publishing it, the
``Watcher`` finds finished files. What is left here is what a user can do: pause, retry,
cancel, browse history, add or remove watch folders, change settings, pick a destination.
Every change is persisted before its event is published. No Qt anywhere below this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from app import __version__
from app.auth.service import AuthService
from app.core.errors import ConfigError, PostFlowError, SignedOut
from app.core.events import (
    AuthState,
    AuthStateChanged,
    EngineStateChanged,
    EventBus,
    Health,
    HealthChanged,
    JobAdded,
    JobProgress,
    JobStateChanged,
    RootsChanged,
    SettingsChanged,
    SettlingChanged,
    SettlingFile,
    Snapshot,
    SnapshotChanged,
)
from app.core.jobs import Job, JobState, JobView, WatchRoot
from app.core.naming import compile_rules, explain
from app.core.roots import check_overlaps, resolved, root_id_for
from app.core.settings import Settings, machine_name, naming_options
from app.core.units import format_bytes
from app.desktop.sleep_guard import SleepGuard, platform_backend
from app.engine.account_guard import AccountGuard
from app.engine.bandwidth import BandwidthLimiter
from app.engine.bandwidth_timetable import BandwidthTimetable
from app.engine.destination_browser import DestinationBrowser
from app.engine.destinations import DestinationResolver
from app.engine.file_filter import FileFilter
from app.engine.health_monitor import HealthMonitor, label_for
from app.engine.health_probes import HealthProbes, signin_words
from app.engine.instance_lock import InstanceLock
from app.engine.job_board import JobBoard
from app.engine.live_settings import parse_live
from app.engine.loop_lag import LoopLag
from app.engine.metrics import EngineMetrics
from app.engine.part_sender import PartSender
from app.engine.proxy_control import ProxyControl
from app.engine.pull_service import PullService
from app.engine.pull_uploader import PullUploader
from app.engine.push_uploader import PushUploader
from app.engine.queue_store import HistoryPage, HistoryQuery, NewFile, QueueStore
from app.engine.review_watch import ReviewWatch
from app.engine.root_health import RootIdentity, RootMonitor
from app.engine.root_registry import NO_LONGER_WATCHED, RootRegistry
from app.engine.scheduler import NETWORK, TOUCHED_NOTE, Scheduler
from app.engine.tree_scan import Seen
from app.engine.update_check import UpdateChecker
from app.engine.upload_router import UploadRouter
from app.engine.version_stacker import VersionStacker, describe, follow_up_fields, routed_dir
from app.engine.watcher import SEEN_ONE_BY_ONE, FoundFile, Watcher
from app.frameio.client import FrameioClient
from app.pull.cloudflared_binary import cloudflared_command

__all__ = ["TOUCHED_NOTE", "EngineService", "NO_LONGER_WATCHED"]
VERSIONS_KEY = "versions_backfilled"  # set once the pre-naming deliveries have their versions
log = logging.getLogger(__name__)
UNCANCELLED = (JobState.PENDING, JobState.PAUSED, JobState.FAILED, JobState.UPLOADING)
PAUSED_KEY = "paused"
GONE_NOTE = "Deleted from the watch folder before it was uploaded."
SNAPSHOT_EVERY = 0.5  # seconds: at most this often a SnapshotChanged, however busy the engine


def update_feed(settings: Settings) -> str:
    """The feed in the settings; in sandbox mode, the sandbox's own (the demo shows it too)."""
    if settings.update_feed_url or not settings.sandbox or not settings.sandbox_url:
        return settings.update_feed_url
    return f"{settings.sandbox_url.rstrip('/')}/_sandbox/releases/feed.json"


class EngineService:
    def __init__(
        self,
        settings: Settings,
        auth: AuthService,
        frameio: FrameioClient,
        bus: EventBus,
        roots: Sequence[WatchRoot] = (),
        *,
        lock: InstanceLock | None = None,
        persist: bool = False,
    ) -> None:
        """``persist``: run-time changes (watch folders, live settings) are saved to the
        config file. Off when the roots came from the command line (``--watch``)."""
        check_overlaps(roots)
        self.settings = settings
        self.bus = bus
        self._auth = auth
        self._frameio = frameio
        self.store = QueueStore(settings.paths.state_db)
        self._own_lock = lock is None  # a lock handed in is held (and released) by its giver
        self._lock = lock or self.lock_holder(settings)
        self._roots: dict[str, WatchRoot] = {r.id: r for r in roots}
        self._resolver = DestinationResolver(frameio)
        self.browser = DestinationBrowser(frameio)

        self._monitor = RootMonitor()
        self._hash_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash")
        self._board = JobBoard(self.store, bus)
        self._board.describe = lambda job: describe(self._roots.get(job.root_id), job.rel_path)
        self._limiter = BandwidthLimiter(settings.bandwidth_limit)
        self.timetable = BandwidthTimetable(self._limiter)
        self.updates = UpdateChecker(
            self.store, bus, update_feed(settings), __version__, proxies=frameio.proxies
        )
        self.sleep_guard = SleepGuard(platform_backend())
        self.sleep_guard.enabled = settings.prevent_sleep
        self.timetable.configure(settings.bandwidth_schedule, settings.bandwidth_limit)
        self._parts_http = PartSender(settings.part_timeout, self._limiter, proxies=frameio.proxies)
        self._uploader = PushUploader(
            self.store, frameio, self._parts_http, self._limiter, settings.parts_per_file,
            self._board.progress, self._monitor, self._hash_executor, self._trouble,
        )  # fmt: skip
        self._uploader.listing_settle = settings.listing_settle
        self._uploader.on_phase = self._board.phase
        self.pull = PullService(
            state_dir=settings.paths.data_dir,
            command=cloudflared_command(settings.cloudflared_path, settings.sandbox),
            health=self._set_health, ready_timeout=settings.pull_ready_timeout,
            pacer=self._limiter,
        )  # fmt: skip
        self.pull.proxies = frameio.proxies
        self.pull.proxy_set = lambda: bool(self.settings.proxy_url)
        self.proxy = ProxyControl(frameio.proxies, auth.store, lambda: self.settings, frameio.base_url)
        self._puller = PullUploader(
            self.store, frameio, self._uploader, self.pull.server, self.pull.ready, self.pull.status,
            self._board.progress, self._hash_executor,
        )  # fmt: skip
        self._puller.link_lifetime = self._puller.verify_timeout = settings.pull_link_lifetime
        self._puller.stall_seconds = settings.pull_stall_seconds
        self._puller.on_phase = self._board.phase
        self.pull.on_status = lambda status: self._wake()  # a tunnel back up: waiting pulls go
        self._router = UploadRouter(self.store, self._uploader, self._puller, self.pull)
        self._watcher = Watcher(
            FileFilter.of(settings.extensions, settings.ignore_patterns),
            settings.stable_seconds, settings.scan_interval, self._found, self._root_health, self._monitor,
            self._settling_changed, quiet_seconds=settings.quiet_seconds, check_media=settings.check_media,
            use_events=settings.use_events, max_reads=settings.max_volume_reads, on_moved=self._moved,
            on_gone=self._gone, known_versions=self.store.known_versions,
        )  # fmt: skip
        self._guard = AccountGuard(
            self.store, auth.provider, bus, halt_everything=self._halt_everything, changed=self._announce,
            wake=self._wake,
        )  # fmt: skip
        self.scheduler = Scheduler(
            store=self.store, board=self._board, uploader=self._router, resolver=self._resolver,
            frameio=frameio, provider=auth.provider, guard=self._guard, monitor=self._monitor,
            roots=self._roots, hash_executor=self._hash_executor, forget_file=self._watcher.forget,
            health=self._health, default_account=settings.account_id, data_dir=str(settings.paths.data_dir),
            max_concurrent=settings.max_concurrent_files, is_paused=lambda: self.paused,
        )  # fmt: skip
        self.scheduler.order = settings.upload_order
        self._registry = RootRegistry(
            self._roots, resolver=self._resolver, provider=auth.provider,
            config_file=settings.paths.config_file, persist=persist, default_account=settings.account_id,
        )  # fmt: skip
        self._persist = persist
        self.review_watch = ReviewWatch(self.store, frameio, bus, self._review_account)
        self.version_stacker = VersionStacker(
            self.store, frameio, bus, lambda: self._roots, self._review_account,
            self._board.publish, self._facts,
        )  # fmt: skip
        self.health_monitor = HealthMonitor(bus)
        self.loop_lag = LoopLag()
        self.metrics = EngineMetrics(bus, self.loop_lag, lambda: auth.provider.refresh_count)
        self._red: set[str] = set()
        self._probes = HealthProbes(
            self.health_monitor, frameio, auth.provider,
            {"data": settings.paths.data_dir, "logs": settings.paths.log_dir}, settings.min_free_mb,
        )  # fmt: skip
        self._tasks: set[asyncio.Task[Any]] = set()
        self._snapshot_due = asyncio.Event()
        self._snapshot_task: asyncio.Task[None] | None = None
        self._health_task: asyncio.Task[None] | None = None
        self.paused = False
        self._locked = False
        self._started = False
        self._unsubscribe = bus.subscribe(self._on_event)
        frameio.on_reachability = self._reachability

    # ---- lifecycle ----
    @staticmethod
    def lock_holder(settings: Settings) -> InstanceLock:
        """One engine per data folder: two on one queue would upload everything twice."""
        return InstanceLock(settings.paths.data_dir / "engine.lock")

    async def start(self) -> None:
        if self._own_lock and not self._locked:  # before recovery: never reset another engine's uploads
            self._lock.acquire()
            self._locked = True
        recovered = await self.store.open()
        for job in recovered:
            log.info("%s: resuming after an interruption (%d of %d bytes sent)", job.rel_path, job.bytes_done,
                     job.size)  # fmt: skip
        for root in self._roots.values():
            await self._adopt_root_history(root)
        if await self.store.meta(VERSIONS_KEY) is None:
            filled = await self.store.backfill_versions(self._version_fields)
            await self.store.set_meta(VERSIONS_KEY, "1")
            if filled:
                log.info("%d files delivered before naming rules existed now have their version", filled)
        self.paused = await self.store.meta(PAUSED_KEY) == "1"
        if self.paused:
            log.info("uploads are paused (as they were when PostFlow stopped); resume to continue")
        if self._auth.provider.tokens is None:
            await self._auth.provider.load()
        await self._guard.check_account()
        for root in self._roots.values():
            self._watcher.add_root(root)
        await self._watcher.start()
        await self.pull.follow_roots(self._roots.values())
        self.scheduler.start(self._save_root_identities)
        self.review_watch.start()
        self.version_stacker.start()
        self._snapshot_task = asyncio.get_running_loop().create_task(self._publish_snapshots())
        self._health_task = asyncio.get_running_loop().create_task(self._check_health_regularly())
        self._spawn(self.loop_lag.run())
        self.timetable.on_change = self._snapshot_due.set
        self.timetable.start()
        self.updates.start()
        self._started = True
        self._announce()

    async def stop(self) -> None:
        """Stop cleanly: parts in flight are abandoned, finished parts are already recorded."""
        self._unsubscribe()
        self.metrics.close()
        self._frameio.on_reachability = None
        await self._watcher.stop()
        for task in (self._snapshot_task, self._health_task, *self._tasks):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._guard.stop()
        await self.timetable.stop()
        await self.updates.stop()
        await self.sleep_guard.close()
        await self.review_watch.stop()
        await self.version_stacker.stop()
        await self.scheduler.stop()
        await self.pull.stop()
        await self._parts_http.aclose()
        if self._started:
            await self._save_root_identities()
        await self.store.close()
        self._hash_executor.shutdown(wait=False, cancel_futures=True)
        if self._locked:
            self._lock.release()
            self._locked = False

    # ---- state the GUI reads ----
    @property
    def waiting_for_sign_in(self) -> bool:
        return self._guard.waiting_for_sign_in

    @property
    def roots(self) -> tuple[WatchRoot, ...]:
        return tuple(self._roots.values())

    @property
    def account_mismatch(self) -> str | None:
        return self._guard.account_mismatch

    async def jobs(self) -> list[Job]:
        return await self.store.jobs()

    async def job(self, job_id: int) -> JobView | None:
        job = await self.store.get(job_id)
        return None if job is None else self._board.view(job)

    async def history(self, query: HistoryQuery | None = None) -> HistoryPage:
        """A page of the queue and history, newest first, filtered by state, root and text."""
        return await self.store.history(query or HistoryQuery())

    def view(self, job: Job) -> JobView:
        """A stored job with its live phase, next retry and speed."""
        return self._board.view(job)

    async def snapshot(self) -> Snapshot:
        totals = await self.store.totals(self._board.live_bytes())
        speed = self._board.overall_speed()
        tokens = self._auth.provider.tokens
        moving = totals.counts[JobState.UPLOADING] > 0 and speed > 0
        left = totals.bytes_left
        return Snapshot(
            counts={state.value: n for state, n in totals.counts.items()},
            bytes_left=left, bytes_total=totals.bytes_total, bytes_per_second=speed,
            eta_seconds=left / speed if moving else None,
            uploading=totals.counts[JobState.UPLOADING], settling=self._watcher.settling(),
            paused=self.paused, waiting_for_sign_in=self._guard.waiting_for_sign_in,
            account_problem=self._guard.account_mismatch, auth=self._auth.provider.state,
            user_email=tokens.user_email if tokens else None,
            account_id=tokens.account_id if tokens else None,
            health=self.health_monitor.items(self._roots.values()), roots=tuple(self._roots.values()),
            bandwidth_note=self.timetable.note(), update=self.updates.available,
            update_unannounced=self.updates.unannounced,
        )  # fmt: skip

    async def check_health(self) -> tuple[Health, ...]:
        """Run every check now ("Check now", ``postflow doctor``) and return them all."""
        await self._watcher.scan_once()  # the watch folders judged afresh too
        await self._probes.run()
        return self.health_monitor.items(self._roots.values())

    def health(self) -> tuple[Health, ...]:
        return self.health_monitor.items(self._roots.values())

    def add_health_check(self, name: str, probe: Any) -> None:
        """Another part's check (the Discord webhook), run with the engine's own."""
        self._probes.add(name, probe)

    async def _check_health_regularly(self) -> None:
        while True:
            try:
                await self._probes.run()
            except Exception:
                log.exception("health checks failed")
            await asyncio.sleep(self.settings.health_interval)

    def settling(self) -> int:
        """Files seen but not yet stable (or not yet queued)."""
        return self._watcher.settling()

    def settling_files(self) -> tuple[SettlingFile, ...]:
        return self._watcher.settling_files()

    # ---- what the user does ----
    async def pause_all(self) -> None:
        """Pause everything; remembered across restarts until resumed."""
        self.paused = True
        await self.store.set_meta(PAUSED_KEY, "1")
        await self.scheduler.halt_all(list(self.scheduler.running), JobState.PENDING)
        self._announce()

    async def resume_all(self) -> None:
        self.paused = False
        await self.store.set_meta(PAUSED_KEY, None)
        self._announce()
        self._wake()

    async def pause(self, job_id: int) -> None:
        await self.scheduler.halt_all([job_id], JobState.PAUSED)
        await self._board.cas(job_id, JobState.PAUSED, (JobState.PENDING,))

    async def resume(self, job_id: int) -> None:
        if await self._board.cas(job_id, JobState.PENDING, (JobState.PAUSED,)):
            self._wake()

    async def retry(self, job_id: int) -> None:
        self.scheduler.clear_retry(job_id)
        expect = (JobState.FAILED, JobState.CANCELLED)
        if await self._board.cas(
            job_id, JobState.PENDING, expect, attempts=0, refusals=0, last_error=None,
            cancelled_by_user=False, not_before=0, priority=0,
        ):  # fmt: skip
            self._wake()

    async def upload_next(self, job_id: int) -> bool:
        """Ahead of every waiting file (a paused one is resumed); uploads already running go on.
        False if the job is no longer waiting."""
        job = await self.store.put_first(job_id)
        if job is None:
            return False
        log.info("%s: put first in the queue", job.rel_path)
        self._board.publish(job)
        self._wake()
        return True

    async def set_priority(self, root_id: str, priority: int) -> WatchRoot:
        """A folder's priority: higher ones upload first. Saved."""
        root = self._roots.get(root_id)
        if root is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        edited = replace(root, **naming_options({"priority": priority}, f"The watch folder {root.path}"))
        await self._registry.save([edited if r.id == root_id else r for r in self._roots.values()])
        self._roots[root_id] = edited
        self._roots_changed()
        self._wake()
        return edited

    async def retry_failed(self) -> None:
        for job in await self.store.jobs([JobState.FAILED]):
            await self.retry(job.id)

    async def cancel(self, job_id: int) -> None:
        """Cancelled is recorded first (so nothing restarts it, nor queues this version again),
        then whatever it has on Frame.io is removed by the scheduler."""
        await self.scheduler.halt_all([job_id], JobState.CANCELLED, cancelled_by_user=True)
        await self._board.cas(job_id, JobState.CANCELLED, UNCANCELLED, cancelled_by_user=True)
        self._wake()

    async def remove_finished(self, job_ids: Sequence[int]) -> int:
        """Remove these entries from the history (finished ones only; a delivered version is
        still remembered, so it is never uploaded again)."""
        removed = await self.store.hide_finished(job_ids)
        self._snapshot_due.set()
        return removed

    async def clear_finished(self, root_id: str | None = None) -> int:
        removed = await self.store.hide_finished(None, root_id)
        self._snapshot_due.set()
        return removed

    async def scan_now(self) -> None:
        await self._watcher.scan_once()

    async def confirm_account(self) -> None:
        await self._guard.confirm_account()

    # ---- watch folders ----
    async def add_root(self, root: WatchRoot, *, upload_existing: bool = True) -> WatchRoot:
        """Watch a folder from now on. Validated (exists, readable, not overlapping another, the
        destination found on Frame.io), saved to the config file, then watched. With
        ``upload_existing=False`` the files already there are never uploaded (a changed one is)."""
        root = await self._registry.validate_new(root)
        await self._registry.save([*self._roots.values(), root])
        files = await self._registry.current_files(root, self._filter()) if not upload_existing else []
        count = await self.store.set_baseline(root.id, files)  # an empty one: everything uploads
        if count:
            log.info("%s: %d files already there are left alone (only new files upload)", root.path, count)
        await self._adopt_root_history(root)
        self._roots[root.id] = root
        self._watcher.add_root(root)
        self._roots_changed()
        return root

    async def edit_root(self, root_id: str, **destination: str) -> WatchRoot:
        """Change where a folder's files go (project, folder, workspace, account_id). Running
        uploads of it stop and start again into the new destination."""
        edited = await self._registry.validate_edit(root_id, destination)
        await self._registry.save([edited if r.id == root_id else r for r in self._roots.values()])
        self._roots[root_id] = edited  # first: an upload restarting meanwhile goes to the new place
        await self._halt_root(root_id)
        self._roots_changed()
        self._wake()
        return edited

    def preview_naming(
        self, rules: Sequence[str], samples: Sequence[str], stacking: bool = True
    ) -> list[str]:
        """ "Test your pattern": how these rules read these names. Raises ``ConfigError`` for a
        rule that cannot work, with the reason."""
        compiled = compile_rules([r for r in rules if r.strip()] or ["versioned"])
        return [explain(name.strip(), compiled, stacking) for name in samples if name.strip()]

    async def set_naming(
        self,
        root_id: str,
        *,
        naming: Sequence[str],
        stack_versions: bool,
        route_by: str = "",
        comment: str = "",
    ) -> WatchRoot:
        """A folder's naming rules, version stacking, routing field and comment template,
        checked as config.toml is (a bad value changes nothing) and saved."""
        root = self._roots.get(root_id)
        if root is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        rules = [r for r in naming if r.strip()] or ["versioned"]
        entry = {"naming": rules, "stack_versions": stack_versions, "route_by": route_by.strip(),
                 "comment": comment.strip()}  # fmt: skip
        edited = replace(root, **naming_options(entry, f"The watch folder {root.path}"))
        await self._registry.save([edited if r.id == root_id else r for r in self._roots.values()])
        self._roots[root_id] = edited
        self._roots_changed()
        return edited

    async def set_upload_mode(self, root_id: str, mode: str) -> WatchRoot:
        """push, pull or auto for one folder, saved. Uploads under way finish the way they began;
        the tunnel starts when a folder first wants it and stops when none does."""
        root = self._roots.get(root_id)
        if root is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        edited = replace(root, **naming_options({"upload_mode": mode}, f"The watch folder {root.path}"))
        await self._registry.save([edited if r.id == root_id else r for r in self._roots.values()])
        self._roots[root_id] = edited  # first: an upload restarting meanwhile goes the new way
        log.info("%s: uploads by %s from now on", root.path, mode)
        await self._halt_root(root_id)
        self._roots_changed()
        self._wake()
        return edited

    async def test_tunnel(self) -> str:
        """ "Test tunnel" (health): a probe file fetched back through the public URL."""
        return await self.pull.test(self.settings.paths.data_dir)

    async def remove_root(self, root_id: str) -> list[Job]:
        """Stop watching a folder: its transfers stop and its waiting jobs end with "folder no
        longer watched" (what they left on Frame.io is removed). Its history is kept."""
        if root_id not in self._roots:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        await self._registry.save([r for r in self._roots.values() if r.id != root_id])
        self._roots.pop(root_id)  # first: nothing of it starts again while its uploads stop
        self._watcher.remove_root(root_id)
        await self._halt_root(root_id)
        self._monitor.forget(root_id)
        ended = await self.store.end_root_jobs(root_id, NO_LONGER_WATCHED)
        for job in ended:
            self._board.publish(job)
        if self.health_monitor.get(f"watch:{root_id}") is not None:
            self.bus.publish(HealthChanged(f"watch:{root_id}", True, None))
            self.health_monitor.forget(f"watch:{root_id}")
        self._roots_changed()
        self._wake()
        return ended

    async def move_root(self, root_id: str, new_path: str) -> WatchRoot:
        """ "This folder moved": the same files now live at ``new_path`` (a filespace mounted
        elsewhere). The root keeps its history, so nothing delivered is uploaded again."""
        old = self._roots.get(root_id)
        if old is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        moved = await asyncio.to_thread(moved_root, old, new_path)  # resolving asks the disk
        others = [r for r in self._roots.values() if r.id != root_id]
        check_overlaps([*others, moved])
        await self._registry.save([*others, moved])
        self._roots.pop(root_id, None)  # first: nothing of it starts again while its uploads stop
        self._watcher.remove_root(root_id)
        await self._halt_root(root_id)
        self._monitor.forget(root_id)
        count = await self.store.rekey_root([root_id], moved.id, moved.path)
        log.info("watch folder %s moved to %s: %d jobs keep their history", old.path, moved.path, count)
        self._roots[moved.id] = moved
        self._watcher.add_root(moved)
        self._roots_changed()
        self._wake()
        return moved

    async def project_link(self, root_id: str) -> str:
        """The Frame.io page of a watched folder's project ("Open project in Frame.io")."""
        root = self._roots.get(root_id)
        if root is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        tokens = self._auth.provider.tokens
        account_id = root.account_id or self.settings.account_id or (tokens.account_id if tokens else "")
        if not account_id:
            raise SignedOut("Sign in with Adobe to open the project.")
        project = await self._resolver.project(account_id, root)
        if not project.view_url:
            raise ConfigError(f"Frame.io gave no web address for project {project.name!r}.")
        return project.view_url

    def destination_of(self, root_id: str, rel_path: str) -> str:
        """Where a file of a watched folder goes on Frame.io, in words: "Project / Folder / sub"."""
        root = self._roots.get(root_id)
        if root is None:
            return ""
        parts = [root.project, *root.folder.split("/"), *rel_path.split("/")[:-1]]
        return " / ".join(p for p in parts if p)

    def _version_fields(self, root_id: str, rel_path: str) -> dict[str, Any]:
        root = self._roots.get(root_id)
        return follow_up_fields(root, rel_path) if root is not None else {}

    def _facts(self, job: Job) -> dict[str, str]:
        """What a comment template can say about a delivered file besides its name's fields."""
        rendered = datetime.fromtimestamp(job.mtime_ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M")
        return {
            "name": job.name, "path": job.abs_path, "size": format_bytes(job.size), "rendered_at": rendered,
            "machine": machine_name(self.settings),
        }  # fmt: skip

    def _review_account(self, job: Job, used: str | None) -> str | None:
        root = self._roots.get(job.root_id)
        tokens = self._auth.provider.tokens
        if tokens is None:
            return None
        return used or (root.account_id if root else "") or self.settings.account_id or tokens.account_id

    def accept_empty_root(self, root_id: str) -> None:
        """The user emptied the folder on purpose (it is not an unmounted volume)."""
        self._monitor.accept_empty(root_id)
        self._watcher.poke()

    async def _halt_root(self, root_id: str) -> None:
        running = [j for j, job in self.scheduler.running_jobs.items() if job.root_id == root_id]
        await self.scheduler.halt_all(running, JobState.PENDING)

    def _roots_changed(self) -> None:
        self.bus.publish(RootsChanged(tuple(self._roots.values())))
        if self._started:
            self._spawn(self.pull.follow_roots(tuple(self._roots.values())))

    def _set_health(self, component: str, problem: str | None, ok_message: str | None,
                    action: str | None) -> None:  # fmt: skip
        self.health_monitor.set(component, problem, ok_message, action)

    # ---- live settings ----
    async def update_settings(self, changes: Mapping[str, Any]) -> Settings:
        """Apply settings at once, without a restart: concurrency, parts per file, bandwidth,
        stability window, scan interval, extensions, ignore patterns. Keys are Settings
        attribute names; every value is checked first (one bad value changes nothing)."""
        parsed = parse_live(changes)
        if self._persist:
            await self._registry.save_settings(parsed)
        self.settings = replace(self.settings, **parsed)
        s = self.settings
        self.scheduler.max_concurrent = s.max_concurrent_files
        self._uploader.parts_per_file = s.parts_per_file
        self.timetable.configure(s.bandwidth_schedule, s.bandwidth_limit)
        self.scheduler.order = s.upload_order
        self.sleep_guard.enabled = s.prevent_sleep
        if {"proxy_url", "pac_url"} & parsed.keys():
            await self.proxy.follow_settings()
        self._snapshot_due.set()  # a lock taken or let go by the next snapshot
        self._watcher.configure(
            self._filter(), s.stable_seconds, s.scan_interval, s.quiet_seconds, s.check_media
        )
        log.info("settings changed: %s", ", ".join(f"{k} = {v!r}" for k, v in parsed.items()))
        self.bus.publish(SettingsChanged(tuple(parsed)))
        self._wake()
        return self.settings

    def _filter(self) -> FileFilter:
        return FileFilter.of(self.settings.extensions, self.settings.ignore_patterns)

    # ---- events in and out ----
    def _announce(self) -> None:
        self.bus.publish(EngineStateChanged(True, self.paused, self._guard.waiting_for_sign_in))

    def _wake(self) -> None:
        self.scheduler.wake()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, SnapshotChanged):
            return
        if isinstance(event, (JobStateChanged, JobAdded, JobProgress, HealthChanged, EngineStateChanged,
                              AuthStateChanged, RootsChanged, SettlingChanged)):  # fmt: skip
            self._snapshot_due.set()
        if isinstance(event, HealthChanged):
            self.health_monitor.record(event)
            self._log_health(event)
        if not isinstance(event, AuthStateChanged):
            return
        self.health_monitor.set("signin", *signin_words(self._auth.provider, time.time()))
        if not self._started:
            return
        if event.state is AuthState.SIGNED_OUT:
            self._spawn(self._guard.signed_out())
        else:
            self._spawn(self._guard.signed_in())

    async def _publish_snapshots(self) -> None:
        """Coalesced: a burst of 40 job events makes one snapshot, not 40 queries."""
        while True:
            await self._snapshot_due.wait()
            await asyncio.sleep(SNAPSHOT_EVERY)
            self._snapshot_due.clear()
            try:
                snap = await self.snapshot()
                self.bus.publish(SnapshotChanged(snap))
                await self.sleep_guard.want(snap.uploading > 0 and not snap.paused)
            except Exception:  # e.g. our disk is full: the health says so; try on the next change
                log.debug("snapshot not published", exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _halt_everything(self, reason: str | None) -> None:
        changes = {} if reason is None else {"last_error": reason}
        await self.scheduler.halt_all(list(self.scheduler.running), JobState.PENDING, **changes)
        self.scheduler.cancel_cleanups()

    def _reachability(self, problem: str | None) -> None:
        self._health(NETWORK, problem)

    def _health(self, component: str, problem: str | None) -> None:
        before = self.health_monitor.get(component)
        if before is not None and not before.ok and before.message == problem:
            return
        if before is None and problem is None:
            return  # nothing was wrong: nothing to say
        self.health_monitor.set(component, problem)

    async def _found(self, batch: list[FoundFile]) -> None:
        """Finished files, queued in one transaction (10,000 renders are one write)."""
        files = [
            NewFile(f.root.id, f.rel_path, f.abs_path, f.size, f.mtime_ns)
            for f in batch
            if f.root.id in self._roots
        ]  # fmt: skip  (a root removed meanwhile: not watched)
        added_any = False
        for added in await self.store.add_many(files):
            for old in added.replaced:
                log.info("%s: replaced by a newer version before it was uploaded", old.rel_path)
                self._board.publish(old)
            job = added.job
            if job is not None:
                added_any = True
                if len(files) <= SEEN_ONE_BY_ONE:
                    log.info("%s: queued (%d bytes)", job.rel_path, job.size)
                self.bus.publish(JobAdded(job.id, job.rel_path, job.root_id, job.size))
        if added_any:
            if len(files) > SEEN_ONE_BY_ONE:
                log.info("%d files queued", len(files))
            self._wake()

    async def _moved(self, root: WatchRoot, pairs: list[tuple[Seen, FoundFile]]) -> set[str]:
        """Files found at a new path with the size and mtime they had at an old one: a delivered
        version is recorded as moved (not uploaded again), a waiting one follows its file."""
        moves = [(old.rel_path, new.rel_path, new.abs_path, new.size, new.mtime_ns) for old, new in pairs]
        recorded = await self.store.record_moves(root.id, moves)
        for job, old_path in recorded:
            if job.state is JobState.DONE:
                log.info("%s: moved from %s; already on Frame.io, not uploaded again", job.rel_path, old_path)
                if self.settings.mirror_moves:
                    self._spawn(self._mirror_move(root, job, old_path))
            else:
                log.info("%s: moved from %s before it was uploaded", job.rel_path, old_path)
            self._board.publish(job)
        return {job.rel_path for job, _ in recorded}

    async def _mirror_move(self, root: WatchRoot, job: Job, old_path: str) -> None:
        """The user asked for moves on disk to be moves on Frame.io too (``watch.mirror_moves``)."""
        try:
            account_id = await self.scheduler.account_for(job)
            if job.remote_file_id is None:
                return
            new_dir = routed_dir(root, job.rel_path)
            if routed_dir(root, old_path) != new_dir:
                folder_id = await self._resolver.folder_for(account_id, root, new_dir)
                await self._frameio.move_file(account_id, job.remote_file_id, folder_id)
            if old_path.rsplit("/", 1)[-1] != job.name:
                await self._frameio.rename_file(account_id, job.remote_file_id, job.name)
            log.info("%s: moved on Frame.io too", job.rel_path)
        except PostFlowError as exc:
            log.warning("%s: moved on disk, but not on Frame.io: %s", job.rel_path, exc.message)
            note = f"Moved from {old_path}; not moved on Frame.io: {exc.message}"
            stored = await self.store.transition(job.id, None, (JobState.DONE,), note=note)
            if stored is not None:
                self._board.publish(stored)

    async def _gone(self, root: WatchRoot, files: list[Seen]) -> None:
        """Files deleted (or moved away) from the folder: their waiting jobs leave the queue."""
        ended = await self.store.end_missing(root.id, [f.rel_path for f in files], GONE_NOTE)
        for job in ended:
            log.info("%s: %s", job.rel_path, GONE_NOTE)
            self._board.publish(job)

    def _log_health(self, event: HealthChanged) -> None:
        """Every change of a check is in the log, its recovery too (not only its failure)."""
        label = label_for(event.component, self._roots)
        if not event.ok:
            self._red.add(event.component)
            log.error("health: %s: %s", label, event.message)
        elif event.component in self._red:
            self._red.discard(event.component)
            log.info("health: %s: OK again%s", label, f" ({event.message})" if event.message else "")

    def _settling_changed(self, files: tuple[SettlingFile, ...]) -> None:
        self.bus.publish(SettlingChanged(files))

    def _root_health(self, root: WatchRoot, problem: str | None) -> None:
        if root.id not in self._roots:
            return  # a scan that finished after the folder was removed
        self.bus.publish(HealthChanged(f"watch:{root.id}", problem is None, problem))
        if problem is None:
            self._wake()
        self._spawn(self._save_root_identities())

    async def _save_root_identities(self) -> None:
        for root_id, identity in self._monitor.take_changes().items():
            await self.store.set_meta(f"root:{root_id}", identity.to_json() if identity else None)

    async def _adopt_root_history(self, root: WatchRoot) -> None:
        """Jobs recorded under an older id of this root are its own; and what the root looked
        like when last seen (its device) tells an unmounted volume from an empty folder."""
        moved = await self.store.rekey_root(root.legacy_ids, root.id)
        if moved:
            log.info("%s: %d jobs adopted from the previous id scheme", root.path, moved)
        saved = await self.store.meta(f"root:{root.id}")
        self._monitor.load(root.id, RootIdentity.from_json(saved) if saved else None)

    async def _trouble(self, job: Job, message: str) -> None:
        """A running upload is struggling: the job shows why, and keeps going."""
        await self._board.cas(job.id, None, (JobState.UPLOADING,), last_error=message,
                              error_title="Still trying", error_retryable=True)  # fmt: skip


def moved_root(root: WatchRoot, new_path: str) -> WatchRoot:
    real = resolved(new_path)
    return replace(root, id=root_id_for(real), path=real, legacy_ids=())
