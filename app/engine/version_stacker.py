"""After delivery: versions of one render become one Frame.io version stack, and a comment is
posted when the watch folder has a template.

A delivered file whose name carries a version (the root's naming rules) is marked at delivery
(``jobs.stack_state = 'waiting'``, with its ``version`` and ``stack_key``: its folder and its
name without the version). This follows each such file, one at a time (two versions finishing
together cannot race), and asks Frame.io, not a cache, where every version is, so a restart or
a stack changed by hand on Frame.io is handled as it is:

- no other version delivered: nothing to do ("alone"); the next version will find it;
- other versions loose in the folder: one ``version_stacks.create`` with all of them, lowest
  version first (at most 10 per call, the rest moved in one by one);
- a stack already holding some: the file is moved in (``files.move`` makes it the head); if
  that leaves the versions out of order (v003 delivered before v002), the versions above it are
  moved out and back in, lowest first, so the highest is on top again.

Only documented calls are used, and each is safe to repeat: a version already where it should
be is not moved again, and a create whose answer was lost is checked before it is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any

from app.core.errors import AuthError, PostFlowError, RateLimited, ServiceUnavailable
from app.core.event_wait import wait_set
from app.core.events import AuthStateChanged, EventBus, JobStateChanged, RootsChanged
from app.core.jobs import Job, JobState, WatchRoot
from app.core.naming import NamingRule, Parsed, compile_rules, parse_name, render_comment
from app.engine.queue_store import QueueStore
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound, OutcomeUnknown, Rejected

log = logging.getLogger(__name__)
MAX_CREATE = 10  # version_stacks.create takes 2 to 10 files
WAITING, STACKED, ALONE, FAILED = "waiting", "stacked", "alone", "failed"


@lru_cache(maxsize=64)
def _rules(texts: tuple[str, ...]) -> tuple[NamingRule, ...]:
    return compile_rules(texts)


def parsed_name(root: WatchRoot, rel_path: str) -> Parsed | None:
    return parse_name(rel_path.rsplit("/", 1)[-1], _rules(root.naming))


def routed_dir(root: WatchRoot, rel_path: str) -> str:
    """The folder (relative to the root's destination) a file goes to: its own folder, mirrored,
    and inside it a sub-folder named by the root's ``route_by`` field when its name gives one."""
    rel_dir = rel_path.rsplit("/", 1)[0] if "/" in rel_path else ""
    if not root.route_by:
        return rel_dir
    parsed = parsed_name(root, rel_path)
    value = parsed.fields.get(root.route_by, "").strip() if parsed is not None else ""
    if not value or value in (".", "..") or "/" in value:
        return rel_dir
    return f"{rel_dir}/{value}" if rel_dir else value


def describe(root: WatchRoot | None, rel_path: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """For the queue window: the fields a name gives (version last) and its routed folder."""
    if root is None:
        return (), None
    parsed = parsed_name(root, rel_path)
    fields: tuple[tuple[str, str], ...] = ()
    if parsed is not None:
        fields = tuple(parsed.fields.items())
        if parsed.version is not None:
            fields += (("version", parsed.version_label),)
    return fields, routed_dir(root, rel_path)


def follow_up_fields(root: WatchRoot, rel_path: str) -> dict[str, Any]:
    """What a delivered job is to carry: its version, what its versions share, and whether it
    still has a stack to join and a comment to get (set with the job's ``done``)."""
    parsed = parsed_name(root, rel_path)
    out: dict[str, Any] = {}
    if parsed is not None and parsed.stack_key is not None:
        folder = routed_dir(root, rel_path)
        out.update(version=parsed.version, stack_key=f"{folder}\x00{parsed.stack_key}")
        out["stack_state"] = WAITING if root.stack_versions else None
    if root.comment:
        out["comment_state"] = WAITING
    return out


def version_label(job: Job) -> str:
    return f"v{job.version:03d}" if job.version is not None else job.name


class VersionStacker:
    def __init__(
        self,
        store: QueueStore,
        frameio: FrameioClient,
        bus: EventBus,
        roots: Callable[[], dict[str, WatchRoot]],
        account_for: Callable[[Job, str | None], str | None],
        publish: Callable[[Job], None],
        facts: Callable[[Job], dict[str, str]],
    ) -> None:
        self._store = store
        self._frameio = frameio
        self._bus = bus
        self._roots = roots
        self._account_for = account_for
        self._publish = publish
        self._facts = facts
        self.retry_wait = 30.0
        self._due = asyncio.Event()
        self._later: dict[int, float] = {}  # job id → monotonic time of its next try
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._due.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _on_event(self, event: Any) -> None:
        delivered = isinstance(event, JobStateChanged) and event.view.job.state is JobState.DONE
        if delivered or isinstance(event, AuthStateChanged | RootsChanged):  # what it waited for
            self._due.set()

    async def _run(self) -> None:
        while True:
            self._due.clear()
            try:
                await self._pass()
            except Exception:
                log.exception("version stacks: unexpected error")
            now = time.monotonic()
            wait = min((at - now for at in self._later.values() if at > now), default=3600.0)
            await wait_set(self._due, max(0.05, wait))

    async def _pass(self) -> None:
        rows = await self._store.follow_ups()
        for stale in set(self._later) - {row.job.id for row in rows}:
            del self._later[stale]  # settled, or not delivered any more
        for row in rows:
            if self._later.get(row.job.id, 0.0) > time.monotonic():
                continue
            self._later.pop(row.job.id, None)
            try:
                await self._follow(row.job.id)
            except Exception:  # a bug: this job waits, the others go on
                log.exception("%s: version stack or comment failed unexpectedly", row.job.rel_path)
                self._later[row.job.id] = time.monotonic() + self.retry_wait * 10

    async def _follow(self, job_id: int) -> None:
        fresh = await self._store.follow_ups(job_id)  # an earlier job of this pass may have settled it
        if not fresh:
            return
        row = fresh[0]
        job = row.job
        root = self._roots().get(job.root_id)
        account_id = self._account_for(job, row.account_id)
        if root is None or account_id is None or row.folder_id is None or job.remote_file_id is None:
            return  # not watched, or signed out: a sign-in or a root change wakes it again
        if job.stack_state == WAITING:
            if row.stack_key is None:
                await self._settle(job, stack_state=ALONE)
            elif not await self._step(
                job, "stack", self._stack(job, account_id, row.folder_id, row.stack_key)
            ):
                return
        if row.comment_state == WAITING:
            await self._step(job, "comment", self._comment(job, root, account_id))

    async def _step(self, job: Job, what: str, step: Coroutine[Any, Any, None]) -> bool:
        """Run one step; False when it is to be tried again later."""
        try:
            await step
        except PostFlowError as exc:
            waits = isinstance(exc, AuthError | RateLimited | ServiceUnavailable | OutcomeUnknown)
            if waits or exc.retryable:
                log.info("%s: %s on Frame.io not done yet: %s", job.rel_path, what, exc.message)
                self._later[job.id] = time.monotonic() + self.retry_wait
                return False
            log.warning("%s: %s: %s", job.rel_path, what, exc.message)
            if what == "stack":
                await self._settle(job, stack_state=FAILED, note=f"Not stacked on Frame.io: {exc.message}")
            else:
                await self._settle(job, comment_state=FAILED, note=f"Comment not posted: {exc.message}")
        return True

    async def _settle(self, job: Job, **changes: Any) -> None:
        await self._store.settle_follow_up(job.id, **changes)
        stored = await self._store.get(job.id)
        if stored is not None:
            self._publish(stored)

    # ---- the stack ----
    async def _stack(self, job: Job, account_id: str, folder_id: str, key: str) -> None:
        versions = await self._store.versions_of(job.root_id, key, folder_id)
        if len(versions) < 2:
            await self._settle(job, stack_state=ALONE)
            return
        where = await self._locate(account_id, versions)
        if job.remote_file_id not in where:
            await self._settle(job, stack_state=FAILED, note="Not stacked: it was deleted from Frame.io.")
            return
        versions = [v for v in versions if v.remote_file_id in where]  # deleted on Frame.io: left out
        stacks = {parent for parent in where.values() if parent != folder_id}
        stack_id = await self._stack_among(account_id, stacks)
        if stack_id is None:
            loose = [v for v in versions if where[v.remote_file_id or ""] == folder_id]
            if len(loose) < 2:  # the others were moved elsewhere on Frame.io
                await self._settle(job, stack_state=ALONE)
                return
            await self._create(account_id, folder_id, loose)
            versions = loose
        else:
            versions = [v for v in versions if where[v.remote_file_id or ""] in (folder_id, stack_id)]
            await self._order(account_id, folder_id, stack_id, versions, job)
        for other in versions:
            if other.id != job.id and other.stack_state != STACKED:
                await self._settle(other, stack_state=STACKED)  # found alone before: not any more
        await self._settle(job, stack_state=STACKED, note=_stacked_note(job, versions))
        labels = ", ".join(map(version_label, versions))
        log.info("%s: in its version stack on Frame.io (%s)", job.rel_path, labels)

    async def _locate(self, account_id: str, versions: list[Job]) -> dict[str, str | None]:
        """Each version's parent on Frame.io now (a folder or a stack); deleted ones left out."""
        where: dict[str, str | None] = {}
        for v in versions:
            assert v.remote_file_id is not None
            try:
                where[v.remote_file_id] = (await self._frameio.file(account_id, v.remote_file_id)).parent_id
            except NotFound:
                continue
        return where

    async def _stack_among(self, account_id: str, parents: set[str | None]) -> str | None:
        """Which of these parents is a version stack (the others are folders: the spec allows a
        404 or a 422 for an id that is not a stack)."""
        for parent in sorted(p for p in parents if p):
            try:
                await self._frameio.version_stack_files(account_id, parent)
            except (NotFound, Rejected):
                continue
            return parent
        return None

    async def _create(self, account_id: str, folder_id: str, versions: list[Job]) -> str:
        ids = [v.remote_file_id for v in versions if v.remote_file_id]
        stack_id = await self._frameio.create_version_stack(account_id, folder_id, ids[:MAX_CREATE])
        for file_id in ids[MAX_CREATE:]:
            await self._frameio.move_file(account_id, file_id, stack_id)
        return stack_id

    async def _order(
        self, account_id: str, folder_id: str, stack_id: str, versions: list[Job], job: Job
    ) -> None:
        """Every version in the stack, lowest first and the highest on top: a version not in it
        joins as the head, then the versions above the new one are re-headed, lowest first (out
        and back in), never leaving the stack with fewer than two files. Files in the stack that
        are not PostFlow's stay below, as they are."""
        current = [f.id for f in await self._frameio.version_stack_files(account_id, stack_id)]
        for v in versions:
            if v.remote_file_id and v.remote_file_id not in current:
                await self._frameio.move_file(account_id, v.remote_file_id, stack_id)  # joins as the head
                current.append(v.remote_file_id)
        ours = [v.remote_file_id for v in versions if v.remote_file_id]
        if [f for f in current if f in ours] == ours:
            return
        if len(current) < 3:
            log.warning("%s: its version stack is out of order and too small to reorder safely", job.rel_path)
            return
        above = [
            v.remote_file_id for v in versions if v.remote_file_id and (v.version or 0) > (job.version or 0)
        ]
        for file_id in above:  # each becomes the head in turn: the highest ends on top
            await self._frameio.move_file(account_id, file_id, folder_id)
            await self._frameio.move_file(account_id, file_id, stack_id)

    # ---- the comment ----
    async def _comment(self, job: Job, root: WatchRoot, account_id: str) -> None:
        assert job.remote_file_id is not None
        text = render_comment(root.comment, parsed_name(root, job.rel_path), self._facts(job))
        if not text:
            await self._settle(job, comment_state="posted")
            return
        await self._settle(job, comment_state="posting")  # from here on, never posted twice
        try:
            await self._frameio.create_comment(account_id, job.remote_file_id, text)
        except OutcomeUnknown:
            note = "Frame.io did not confirm the comment; it is not posted again."
            await self._settle(job, comment_state="unconfirmed", note=note)
            return
        except PostFlowError:
            await self._settle(job, comment_state=WAITING)  # not sent: tried again
            raise
        await self._settle(job, comment_state="posted")


def _stacked_note(job: Job, versions: list[Job]) -> str:
    labels = [version_label(v) for v in versions]
    index = next((i for i, v in enumerate(versions) if v.id == job.id), len(versions) - 1)
    if index == 0:
        return f"First version of its stack ({labels[-1]} on top)."
    if index == len(labels) - 1:
        return f"Stacked on {labels[index - 1]}."
    return f"Stacked on {labels[index - 1]}, below {labels[index + 1]}."
