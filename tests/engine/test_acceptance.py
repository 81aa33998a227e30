"""Issue acceptance, with the engine in its own process as a user runs it:
end to end (50 files, a growing file, an empty file that fills), kill -9 crashes, faults."""

from __future__ import annotations

import asyncio
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from engine_harness import (
    EngineProcess,
    check_exactly_once,
    expected_from_disk,
    sign_in_into_file_keyring,
    wait_for,
    write_random,
)

from app.sandbox.config import SandboxConfig

MiB = 1024 * 1024


@pytest.fixture
def sandbox_config(tmp_path: Path) -> SandboxConfig:
    return SandboxConfig(state_dir=tmp_path / "sandbox-state", transcode_delay=0.05, part_size=8 * MiB)


def done_count(sandbox: Any) -> int:
    return sum(1 for f in sandbox.files() if f["status"] != "created")


async def test_end_to_end_fifty_files_growing_and_empty(sandbox: Any, engine_home: Path) -> None:
    watch = engine_home / "watch"
    rng = random.Random(42)
    sizes = [1, 10, 100, 1000, 4096, 65_536, 300 * 1000 * 1000, 8 * MiB, 8 * MiB + 1, 20 * MiB]
    sizes += [rng.randint(1, 3 * MiB) for _ in range(40)]
    for i, size in enumerate(sizes):
        folder = ["", "A001", "A001/Day 01", "A001/Day 02/Cam B", "VFX/SH010/v003"][i % 5]
        name = f"clip_{i:02d}.mov" if i % 3 else f"still_{i:02d}.png"
        write_random(watch / folder / name, size, seed=i)
    empty = watch / "Late" / "later_filled.mov"
    empty.parent.mkdir(parents=True)
    empty.touch()
    keyring_file = engine_home / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    engine = EngineProcess(sandbox, engine_home, watch, keyring_file, POSTFLOW_STABLE_SECONDS="2")
    engine.start()
    try:
        growing = watch / "Growing" / "render_in_progress.mov"
        growing.parent.mkdir()
        started = time.monotonic()
        with growing.open("wb") as fh:  # grows for 20 s, like a render syncing through LucidLink
            while time.monotonic() - started < 20:
                fh.write(random.Random(int(time.monotonic() * 1000)).randbytes(256 * 1024))
                fh.flush()
                await asyncio.sleep(0.4)
        await asyncio.sleep(1)
        empty.write_bytes(b"content arrived later" * 1000)
        expected = expected_from_disk(watch)
        assert len(expected) == 52
        await wait_for(lambda: done_count(sandbox) >= 52, timeout=420, what="52 files delivered")
        assert engine.stop() == 0, engine.log()[-3000:]  # stopped: no late duplicate can appear
        check_exactly_once(sandbox, expected)
        grown = [f for f in sandbox.files() if f["name"] == "render_in_progress.mov"]
        assert len(grown) == 1 and grown[0]["file_size"] == growing.stat().st_size
    finally:
        assert engine.stop() == 0, engine.log()[-3000:]
    log = engine.log()
    assert "stopping" in log and "Traceback" not in log


async def test_kill_nine_five_times_still_exactly_once(sandbox: Any, engine_home: Path) -> None:
    watch = engine_home / "watch"
    write_random(watch / "Masters" / "feature_master.mov", 1024 * MiB, seed=1)
    for i in range(20):
        write_random(watch / "Dailies" / f"d{i:02d}.mov", random.Random(i).randint(1, 2 * MiB), seed=100 + i)
    expected = expected_from_disk(watch)
    keyring_file = engine_home / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    rng = random.Random(7)
    engine = EngineProcess(sandbox, engine_home, watch, keyring_file, POSTFLOW_STABLE_SECONDS="0.5")
    for _round in range(5):
        engine.start()
        await asyncio.sleep(rng.uniform(1.5, 5.0))
        engine.kill9()
    engine.start()
    try:
        await wait_for(engine.ready, timeout=60, what="engine started")
        await wait_for(lambda: done_count(sandbox) >= len(expected), timeout=300, what="all delivered")
        await wait_for(lambda: not [f for f in sandbox.files() if f["status"] == "created"], timeout=30,
                       what="no placeholder left")  # fmt: skip
        assert engine.stop() == 0, engine.log()[-3000:]
        check_exactly_once(sandbox, expected)
    finally:
        assert engine.stop() == 0, engine.log()[-3000:]
    assert engine.log().count("resuming after an interruption") >= 1


async def test_faults_are_survived_with_backoff(sandbox: Any, engine_home: Path) -> None:
    watch = engine_home / "watch"
    for i in range(30):
        write_random(
            watch / f"Reel {i % 3}" / f"shot_{i:02d}.mov", random.Random(i).randint(1, 6 * MiB), seed=500 + i
        )
    expected = expected_from_disk(watch)
    sandbox.control("/_sandbox/settings", {"part_size": 1 * MiB, "stall_seconds": 5})
    keyring_file = engine_home / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    sandbox.control("/_sandbox/faults", {
        "parts": {"rate": 0.2, "kinds": ["500", "reset", "stall"]},
        "api": {"rate": 0.1, "kinds": ["429"], "burst": 4, "burst_kind": "429"},
    })  # fmt: skip
    engine = EngineProcess(sandbox, engine_home, watch, keyring_file, POSTFLOW_STABLE_SECONDS="0.5",
                           POSTFLOW_PART_TIMEOUT="2")  # fmt: skip
    engine.start()
    try:
        await wait_for(lambda: done_count(sandbox) >= 30, timeout=400, what="30 files delivered")
        assert engine.stop() == 0, engine.log()[-3000:]  # stopped: no late duplicate can appear
        check_exactly_once(sandbox, expected)
    finally:
        assert engine.stop() == 0, engine.log()[-3000:]
    injected = sandbox.control("/_sandbox/faults")["injected"]
    assert injected["parts"] >= 10 and injected["api"] >= 4
    log = engine.log()
    part_retries = re.findall(r"part \d+/\d+ failed \(.+?\), retry (\d+) in ([\d.]+)s", log)
    api_backoffs = re.findall(r"rate limited \(429\), backing off ([\d.]+)s \(attempt (\d+)\)", log)
    assert part_retries and api_backoffs
    # Backoff, not a hot loop: every retry waits at least a second, and waits grow with attempts.
    assert all(float(wait) >= 1.0 for _, wait in part_retries)
    assert all(float(wait) >= 1.0 for wait, _ in api_backoffs)
    second_tries = [float(w) for n, w in part_retries if n == "2"]
    assert not second_tries or min(second_tries) >= 2.0
