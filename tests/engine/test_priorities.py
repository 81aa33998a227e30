"""What uploads next: files put first, then folders by priority, then oldest or smallest first."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.core.jobs import JobState
from app.engine.queue_store import NewFile, QueueStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[QueueStore]:
    s = QueueStore(tmp_path / "q.sqlite3")
    await s.open()
    yield s
    await s.close()


async def _queue(store: QueueStore, root: str, names_sizes: list[tuple[str, int]]) -> dict[str, int]:
    added = await store.add_many([NewFile(root, n, f"/{root}/{n}", size, 1) for n, size in names_sizes])
    return {a.job.rel_path: a.job.id for a in added if a.job is not None}


async def _order(
    store: QueueStore, tiers: list[list[str]], order: str = "oldest", limit: int = 20
) -> list[str]:
    return [j.rel_path for j in await store.ready_jobs(limit, time.time(), tiers, order)]


async def test_oldest_first_and_smallest_first(store: QueueStore) -> None:
    await _queue(store, "a", [("big.mov", 900), ("small.mov", 10), ("mid.mov", 300)])
    assert await _order(store, [["a"]]) == ["big.mov", "small.mov", "mid.mov"]
    assert await _order(store, [["a"]], "smallest") == ["small.mov", "mid.mov", "big.mov"]


async def test_a_higher_priority_folder_goes_first_and_upload_next_beats_everything(
    store: QueueStore,
) -> None:
    ids = await _queue(store, "dailies", [("d1.mov", 5), ("d2.mov", 5)])
    ids |= await _queue(store, "urgent", [("u1.mov", 5)])
    tiers = [["urgent"], ["dailies"]]  # the scheduler's grouping: highest folder priority first
    assert await _order(store, tiers) == ["u1.mov", "d1.mov", "d2.mov"]
    first = await store.put_first(ids["d2.mov"])
    assert first is not None and first.priority == 1
    assert await _order(store, tiers) == ["d2.mov", "u1.mov", "d1.mov"]
    await store.put_first(ids["d1.mov"])  # the latest "Upload next" goes before the earlier one
    assert await _order(store, tiers) == ["d1.mov", "d2.mov", "u1.mov"]
    assert await _order(store, tiers, limit=1) == ["d1.mov"]  # still one read of what can start


async def test_upload_next_resumes_a_paused_file_and_ignores_a_running_one(store: QueueStore) -> None:
    ids = await _queue(store, "a", [("p.mov", 5), ("r.mov", 5), ("w.mov", 5)])
    await store.update(ids["p.mov"], JobState.PAUSED)
    await store.update(ids["r.mov"], JobState.UPLOADING)
    await store.update(ids["w.mov"], None, not_before=time.time() + 300)  # waiting to retry
    resumed = await store.put_first(ids["p.mov"])
    assert resumed is not None and resumed.state is JobState.PENDING
    assert await store.put_first(ids["r.mov"]) is None  # already uploading: nothing to move
    waiting = await store.put_first(ids["w.mov"])  # "next" means now, not after its retry wait
    assert waiting is not None and await _order(store, [["a"]]) == ["w.mov", "p.mov"]


async def test_a_folder_that_cannot_be_reached_is_not_waited_for(store: QueueStore) -> None:
    await _queue(store, "away", [("x.mov", 5)])
    await _queue(store, "here", [("y.mov", 5)])
    assert await _order(store, [["here"]]) == ["y.mov"]  # the scheduler leaves unreachable folders out


async def test_the_engine_starts_a_higher_priority_folder_first(harness: Any, tmp_path: Path) -> None:
    from engine_harness import wait_for, write_random

    from app.core.events import JobStateChanged
    from app.core.settings import make_root

    engine = await harness.start()
    engine.scheduler.max_concurrent = 1
    await engine.pause_all()
    urgent_dir = tmp_path / "urgent"
    urgent_dir.mkdir()
    urgent = await engine.add_root(make_root(str(urgent_dir), "Demo Project", "Urgent"))
    await engine.set_priority(urgent.id, 10)
    write_random(harness.watch / "older_daily.mov", 50_000, seed=1)

    async def queued(n: int) -> bool:
        return len(await engine.jobs()) == n

    await wait_for(lambda: queued(1), 30, "the daily queued")
    write_random(urgent_dir / "newer_urgent.mov", 50_000, seed=2)
    await wait_for(lambda: queued(2), 30, "the urgent one queued")
    started: list[str] = []
    engine.bus.subscribe(
        lambda e: (
            started.append(e.view.job.rel_path)
            if isinstance(e, JobStateChanged) and e.view.job.state is JobState.UPLOADING
            else None
        )
    )
    await engine.resume_all()
    await wait_for(lambda: len(started) >= 2, 60, "both started")
    assert started[0] == "newer_urgent.mov" and engine.roots[-1].priority == 10
