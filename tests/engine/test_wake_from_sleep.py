"""A laptop that sleeps mid-upload and wakes the next day finishes the file, once.

The engine runs in its own process, as on an editor's machine; SIGSTOP freezes it exactly where
it is (as a closed lid does: sockets half-way through a part, timers pending), the sandbox's
clock then moves two days on (the part URLs and the access token have expired, as after a
night), and SIGCONT wakes it. Nothing special is wired for waking: parts in flight fail or are
refused (403, an expired URL) and the engine renews what expired, token and placeholder alike.
"""

from __future__ import annotations

import signal
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
    return SandboxConfig(state_dir=tmp_path / "sandbox-state", transcode_delay=0.05, part_size=1 * MiB)


async def test_a_machine_that_slept_mid_upload_finishes_the_file_once_on_waking(
    sandbox: Any, engine_home: Path
) -> None:
    watch = engine_home / "watch"
    write_random(watch / "overnight_render.mov", 6 * MiB, seed=11)
    expected = expected_from_disk(watch)
    keyring_file = engine_home / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    engine = EngineProcess(
        sandbox,
        engine_home,
        watch,
        keyring_file,
        POSTFLOW_STABLE_SECONDS="0.5",
        POSTFLOW_BANDWIDTH_LIMIT=str(1_000_000),
    )  # 6 s of upload: time to fall asleep
    engine.start()
    try:
        await wait_for(engine.ready, timeout=60, what="engine started")
        await wait_for(lambda: any(f["status"] == "created" for f in sandbox.files()), timeout=60,
                       what="the upload under way")  # fmt: skip
        assert engine.proc is not None
        engine.proc.send_signal(signal.SIGSTOP)  # the lid closes
        sandbox.control("/_sandbox/clock", {"advance_seconds": 2 * 86400})  # the night (and a day)
        engine.proc.send_signal(signal.SIGCONT)  # the lid opens
        await wait_for(lambda: any(f["status"] != "created" for f in sandbox.files()), timeout=120,
                       what="the file delivered after waking")  # fmt: skip
        await wait_for(lambda: not [f for f in sandbox.files() if f["status"] == "created"], timeout=30,
                       what="no placeholder left")  # fmt: skip
        assert engine.stop() == 0, engine.log()[-3000:]
        check_exactly_once(sandbox, expected)
    finally:
        if engine.proc is not None and engine.proc.poll() is None:
            engine.proc.send_signal(signal.SIGCONT)
        assert engine.stop() == 0, engine.log()[-3000:]
    log = engine.log()
    assert "Traceback" not in log
    assert "(HTTP 403)" in log and "access token refreshed" in log  # what had expired was renewed
