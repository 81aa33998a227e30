"""History and snapshot queries at 100,000 jobs: what the queue window and the tray ask for.

    .venv/bin/python bench/history.py [--jobs 100000] [--runs 20]

Fills a fresh state database with ``--jobs`` jobs over 20 roots (most delivered, some failed,
some waiting, like a long-running filespace), then times, through the engine's own
``QueueStore`` (its SQL thread included): a first page, a deep page (keyset cursor), pages
filtered by state, by root and by text, ``job(id)``, and the snapshot's totals. The reference,
measured in the same run, is reading every job once (what a client had to do before paging):
each figure is printed with its ratio to it. Target: every page and the totals well under
50 ms at 100,000 jobs, i.e. fast enough to run on every keystroke of the search field.
Not a test: run it by hand and record the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.core.jobs import JobState  # noqa: E402
from app.engine.queue_store import HistoryQuery, QueueStore  # noqa: E402

STATES = [JobState.DONE] * 90 + [JobState.FAILED] * 3 + [JobState.CANCELLED] * 3 + [JobState.PENDING] * 4


def fill(store: QueueStore, jobs: int) -> None:
    rng = random.Random(1)
    db = store._db  # bulk load straight in one transaction: the bench times reads, not inserts
    assert db is not None
    now = time.time()
    rows = []
    for i in range(jobs):
        root = f"root{i % 20:02}"
        rel = f"SHOW_{i // 1000:03}/SC{i % 500:03}/SHOW_SC{i % 500:03}_v{i % 7:03}_{i}.mov"
        state = rng.choice(STATES)
        size = rng.randrange(10**6, 10**10)
        rows.append((root, rel, f"/Volumes/fs/{rel}", size, i, state.value, 1,
                     size if state is JobState.DONE else 0, now, now))  # fmt: skip
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO jobs (root_id, rel_path, abs_path, size, mtime_ns, state, attempts, bytes_done, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    await call()  # warm the page cache and the statement cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = QueueStore(Path(tmp) / "state.sqlite3")
        await store.open()
        await asyncio.get_running_loop().run_in_executor(store._executor, fill, store, args.jobs)
        deep = (await store.history(HistoryQuery(limit=1, before_id=args.jobs // 10))).jobs[0].id
        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "first page (100)": lambda: store.history(HistoryQuery()),
            "deep page (keyset)": lambda: store.history(HistoryQuery(before_id=deep)),
            "needs attention (failed)": lambda: store.history(HistoryQuery(states=(JobState.FAILED,))),
            "active (pending+uploading+paused)": lambda: store.history(
                HistoryQuery(states=(JobState.PENDING, JobState.UPLOADING, JobState.PAUSED))
            ),
            "one root": lambda: store.history(HistoryQuery(root_id="root07")),
            "text search": lambda: store.history(HistoryQuery(text="sc042_v003")),
            "text matching every job": lambda: store.history(HistoryQuery(text=".mov")),
            "text + state + root": lambda: store.history(
                HistoryQuery(states=(JobState.DONE,), root_id="root03", text="SC1")
            ),
            "job(id)": lambda: store.get(args.jobs // 2),
            "snapshot totals": store.totals,
        }
        reference = await timed(store.jobs, max(3, args.runs // 4))
        print(f"{args.jobs:,} jobs; reference: reading every job once = {reference * 1000:.1f} ms")
        print(f"{'query':<36} {'median ms':>10} {'÷ reference':>12}")
        for name, call in cases.items():
            median = await timed(call, args.runs)
            print(f"{name:<36} {median * 1000:>10.2f} {median / reference:>12.4f}")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
