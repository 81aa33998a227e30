"""Filespace scale: the watcher and the queue on big trees, with ``find`` as the reference.

    .venv/bin/python bench/watcher.py [--files 100000] [--folders 5000] [--idle 30]

Builds its trees in a temporary folder, then measures, in one run:

1. the first scan of FILES files in FOLDERS folders, against ``find`` over the same tree
   (target ≤ 2 × find). A scan must learn every file's size and mtime, which ``find -type f``
   never asks for, so two more references are printed: ``find -printf '%s %T@'`` (the same
   stat per file) and the least Python can do (``os.scandir`` + ``DirEntry.stat``, nothing
   else); each figure is the best of three;
2. the CPU and memory of an engine watching them, idle (target < 1 % of one core, RSS ≤ 150 MB;
   the RSS includes the in-process sandbox);
3. the time to queue 10,000 finished files in 500 folders once they are stable (target ≤ 10 s);
4. new-file detection latency with file events, and with events off (targets: stability window
   + 1 s, and window + one scan interval);
5. a complete MOV's time from its last write to queued (target ≤ quiet period + 1 s).

Not a test: run it by hand and record the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def build_tree(base: Path, files: int, folders: int, ext: str) -> None:
    per = max(1, files // folders)
    n = 0
    for d in range(folders):
        folder = base / f"reel{d // 100:03d}" / f"shot{d:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(per):
            if n >= files:
                return
            (folder / f"frame{n:07d}{ext}").write_bytes(b"x")
            n += 1


def best_of(runs: int, measure: Any) -> float:
    return min(measure() for _ in range(runs))


def find_seconds(base: Path, *printf: str) -> float:
    started = time.perf_counter()
    subprocess.run(["find", str(base), "-type", "f", *printf], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def python_floor_seconds(base: Path) -> float:
    """A walk that stats every file and does nothing else: what any Python scan costs."""
    started = time.perf_counter()
    stack, seen = [str(base)], {}
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    seen[entry.path] = (st.st_size, st.st_mtime_ns)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return time.perf_counter() - started


def scan_seconds(base: Path) -> tuple[float, int]:
    from app.core.roots import make_root
    from app.core.settings import DEFAULT_IGNORE
    from app.engine.file_filter import FileFilter
    from app.engine.tree_scan import TreeState

    tree = TreeState(make_root(str(base), "Bench"))
    started = time.perf_counter()
    diff = tree.full_scan(FileFilter.of([], DEFAULT_IGNORE))
    return time.perf_counter() - started, len(diff.changed)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def engine_on(sandbox: Any, watch: Path, **env: str) -> Any:
    """A signed-in engine in this process, with its own fresh queue."""
    from engine_harness import Harness

    home = Path(tempfile.mkdtemp(prefix="engine-", dir=watch.parent))
    os.environ["POSTFLOW_CONFIG_DIR"] = str(home / "config")
    os.environ["POSTFLOW_DATA_DIR"] = str(home / "data")
    h = Harness(sandbox, watch, **env)
    await h.start()
    return h


async def idle_watch(sandbox: Any, base: Path, seconds: float) -> tuple[float, float, float]:
    """Engine watching ``base`` (non-media files: none queued). Returns (first look s, CPU % of
    one core while idle, RSS MB)."""
    from engine_harness import wait_for

    started = time.perf_counter()
    h = await engine_on(sandbox, base, POSTFLOW_STABLE_SECONDS="30", POSTFLOW_SCAN_INTERVAL="15")
    engine = h.engine
    await wait_for(lambda: engine._watcher.full_scans >= 1, 600, "first scan")
    first = time.perf_counter() - started
    await asyncio.sleep(3)  # let the start-up settle
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    rss = rss_mb()
    await h.close()
    return first, cpu, rss


async def queue_ten_thousand(sandbox: Any, base: Path) -> float:
    """10,000 finished files in 500 folders: seconds from the moment they are stable (window
    1 s) to all queued. Uploads paused, so only queueing is measured."""
    from engine_harness import wait_for

    build_tree(base, 10_000, 500, ".mov")
    h = await engine_on(sandbox, base, POSTFLOW_STABLE_SECONDS="1", POSTFLOW_SCAN_INTERVAL="15",
                        POSTFLOW_CHECK_MEDIA="0")  # fmt: skip
    await h.engine.pause_all()
    started = time.perf_counter()
    await wait_for(lambda: h.engine._watcher.full_scans >= 1, 600, "first scan")

    async def queued() -> bool:
        return (await h.engine.snapshot()).counts["pending"] >= 10_000

    await wait_for(queued, 600, "10,000 queued")
    took = time.perf_counter() - started - 1.0  # the stability window itself is not queueing
    await h.close()
    return took


async def detection(sandbox: Any, base: Path, events: bool) -> tuple[float, float, float]:
    """(seconds from a new file's last write to queued, window, scan interval)."""
    from engine_harness import wait_for

    from app.core.events import JobAdded

    window, interval = 2.0, 5.0
    build_tree(base, 5_000, 250, ".txt")  # something to watch besides the new file
    h = await engine_on(sandbox, base, POSTFLOW_STABLE_SECONDS=str(window),
                        POSTFLOW_SCAN_INTERVAL=str(interval), POSTFLOW_USE_EVENTS="1" if events else "0",
                        POSTFLOW_CHECK_MEDIA="0")  # fmt: skip
    await h.engine.pause_all()
    await wait_for(lambda: h.engine._watcher.full_scans >= 1, 600, "first scan")
    await asyncio.sleep(1)
    (base / "reel001" / "new.wav").write_bytes(os.urandom(1000))
    written = time.perf_counter()
    await wait_for(lambda: any(isinstance(e, JobAdded) for e in h.events), 120, "queued")
    took = time.perf_counter() - written
    await h.close()
    return took, window, interval


async def complete_mov(sandbox: Any, base: Path) -> tuple[float, float]:
    from engine_harness import wait_for

    from app.core.events import JobAdded

    quiet = 1.0
    made = base.parent / "made.mov"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t",
                    "5", "-c:v", "mpeg4", "-y", str(made)], check=True)  # fmt: skip
    base.mkdir(parents=True, exist_ok=True)
    h = await engine_on(sandbox, base, POSTFLOW_STABLE_SECONDS="30", POSTFLOW_QUIET_SECONDS=str(quiet))
    await h.engine.pause_all()
    await wait_for(lambda: h.engine._watcher.full_scans >= 1, 60, "first scan")
    shutil.copyfile(made, base / "render.mov")
    written = time.perf_counter()
    await wait_for(lambda: any(isinstance(e, JobAdded) for e in h.events), 60, "queued")
    took = time.perf_counter() - written
    await h.close()
    return took, quiet


async def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=5_000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle watching measured")
    args = parser.parse_args()
    os.environ.setdefault("POSTFLOW_LOG_LEVEL", "WARNING")

    import keyring
    from support_keyrings import MemoryKeyring
    from support_sandbox import RunningSandbox

    from app.sandbox.config import SandboxConfig

    keyring.set_keyring(MemoryKeyring())  # never the user's real keychain
    work = Path(tempfile.mkdtemp(prefix="postflow-bench-"))
    sandbox = RunningSandbox(SandboxConfig(state_dir=work / "sandbox")).start()
    try:
        big = work / "big"
        build_tree(big, args.files, args.folders, ".txt")
        find_s = best_of(3, lambda: find_seconds(big))
        stat_s = best_of(3, lambda: find_seconds(big, "-printf", "%s %T@\\n"))
        floor_s = best_of(3, lambda: python_floor_seconds(big))
        count = scan_seconds(big)[1]
        scan_s = best_of(3, lambda: scan_seconds(big)[0])
        print(f"1. first scan of {count:,} files in {args.folders:,} folders: {scan_s:.2f} s; "
              f"find: {find_s:.2f} s, ratio {scan_s / find_s:.1f} (target <= 2); "
              f"find with stat: {stat_s:.2f} s, ratio {scan_s / stat_s:.1f}; "
              f"Python's floor: {floor_s:.2f} s, ratio {scan_s / floor_s:.1f}")  # fmt: skip
        first, cpu, rss = await idle_watch(sandbox, big, args.idle)
        print(
            f"2. engine watching them: first look {first:.1f} s; idle CPU {cpu:.2f} % of one core "
            f"(target < 1 %); RSS {rss:.0f} MB (target <= 150 MB)"
        )
        took = await queue_ten_thousand(sandbox, work / "ten")
        print(
            f"3. 10,000 finished files in 500 folders queued {took:.1f} s after they are stable "
            "(target <= 10 s)"
        )
        for events in (True, False):
            took, window, interval = await detection(sandbox, work / f"detect-{events}", events)
            target = window + (1.0 if events else interval)
            extra = "1 s" if events else "one scan interval"
            print(f"4. new file with events {'on' if events else 'off'}: queued {took:.1f} s after its last "
                  f"write (target <= {target:.0f} s: window {window:.0f} s + {extra})")  # fmt: skip
        if shutil.which("ffmpeg"):
            took, quiet = await complete_mov(sandbox, work / "mov")
            print(f"5. complete MOV: queued {took:.1f} s after its last write (target <= quiet "
                  f"{quiet:.0f} s + 1 s; the stability window is 30 s)")  # fmt: skip
        else:
            print("5. complete MOV: skipped (ffmpeg is not installed)")
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
