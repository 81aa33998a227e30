"""Exhaustive crash testing: ``kill -9`` at every step boundary of an upload, one at a time.

Each case runs ``postflow run --headless`` with one failpoint armed; the process kills itself
with SIGKILL the moment it reaches that point. Then a clean engine starts on the same state and
the file must end on Frame.io exactly once, byte for byte, with no placeholder left.
"""

from __future__ import annotations

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

from app.engine.failpoints import POINTS
from app.engine.status_report import read_jobs
from app.sandbox.config import SandboxConfig

MiB = 1024 * 1024

CASES = [(point, 1) for point in POINTS] + [("after_part_sent", 3), ("after_part_recorded", 3)]


@pytest.fixture
def sandbox_config(tmp_path: Path) -> SandboxConfig:
    return SandboxConfig(state_dir=tmp_path / "sandbox-state", transcode_delay=0.05, part_size=1 * MiB)


@pytest.mark.parametrize(("point", "nth"), CASES, ids=[f"{p}@{n}" for p, n in CASES])
async def test_kill_at_each_failpoint_still_delivers_exactly_once(
    sandbox: Any, tmp_path: Path, point: str, nth: int
) -> None:
    home = tmp_path / "engine"
    watch = home / "watch"
    write_random(watch / "Reel 1" / "A001_C003.mov", 3 * MiB + 12345, seed=3)  # 4 parts
    expected = expected_from_disk(watch)
    keyring_file = home / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    common = {
        "POSTFLOW_STABLE_SECONDS": "0.3",
        "POSTFLOW_LISTING_SETTLE": "0.5",
        "POSTFLOW_PARTS_PER_FILE": "1",
    }
    doomed = EngineProcess(sandbox, home, watch, keyring_file, POSTFLOW_FAILPOINTS=f"{point}@{nth}", **common)
    doomed.start()
    assert doomed.proc is not None
    proc = doomed.proc
    await wait_for(lambda: proc.poll() is not None, timeout=120, what=f"the kill at {point}")
    assert doomed.proc.returncode == -9, doomed.log()[-3000:]
    assert f"failpoint {point} reached" in doomed.log()
    survivor = EngineProcess(sandbox, home, watch, keyring_file, **common)
    survivor.start()
    try:
        db = home / "data" / "state.sqlite3"
        await wait_for(lambda: _settled(sandbox, expected, db), timeout=120, what="delivered once, clean")
        assert survivor.stop() == 0, survivor.log()[-3000:]
        check_exactly_once(sandbox, expected)
    finally:
        survivor.stop()


def _settled(sandbox: Any, expected: dict[str, str], db: Path) -> bool:
    """Frame.io has the file, nothing half-made is left, and the engine knows it is delivered."""
    if not all(j["state"] == "done" for j in read_jobs(db)):
        return False
    files = sandbox.files()
    done = [f for f in files if f["status"] != "created"]
    return len(done) >= len(expected) and not [f for f in files if f["status"] == "created"]
