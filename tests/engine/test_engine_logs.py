"""What the log says: files left out on purpose (at DEBUG, once each, with the reason), files
waiting to become stable, and transfer progress at most every 100 MB or 10 s per file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from engine_harness import Harness, wait_for, write

from app.engine import job_board


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_skipped_files_are_said_once_at_debug_with_the_reason(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="app.engine.watcher")
    watch = harness.watch
    write(watch / "cut.mov", b"m" * 1000)
    write(watch / "render.mov.tmp", b"t" * 10)
    write(watch / ".hidden.mov", b"h" * 10)
    write(watch / "notes.txt", b"n" * 10)
    write(watch / ".cache" / "x.mov", b"c" * 10)
    (watch / "empty.mov").touch()
    (tmp_path / "elsewhere.mov").write_bytes(b"e" * 10)
    (watch / "link.mov").symlink_to(tmp_path / "elsewhere.mov")
    os.mkfifo(watch / "pipe.mov")
    harness.env["POSTFLOW_EXTENSIONS"] = ".mov"
    engine = await harness.start()
    await wait_for(lambda: "Demo Project/Incoming/cut.mov" in harness.delivered(), 60, "cut.mov")
    for _ in range(3):
        await engine.scan_now()
    expected = {
        "render.mov.tmp": "ignore pattern '*.tmp'",
        ".hidden.mov": "ignore pattern '.*'",
        "notes.txt": "not in watch.extensions",
        ".cache": "hidden or ignored folder",
        "link.mov": "symbolic link",
        "pipe.mov": "not a regular file",
    }
    for name, why in expected.items():
        said = lines(caplog, f"{watch}/{name}: not uploaded:")
        assert len(said) == 1 and why in said[0], (name, said)
    assert [r.levelno for r in caplog.records if "not uploaded" in r.getMessage()] == [logging.DEBUG] * 6
    assert len(lines(caplog, "empty.mov: seen (empty for now)")) == 1
    assert not lines(caplog, "cut.mov: not uploaded")
    assert {f["path"] for f in harness.remote_files()} == {"Demo Project/Incoming/cut.mov"}


async def test_a_file_still_being_written_is_said_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness.env["POSTFLOW_STABLE_SECONDS"] = "60"
    engine = await harness.start()
    write(harness.watch / "growing.mov", b"g" * 5000)
    await wait_for(lambda: engine.settling() == 1, 30, "seen")
    for _ in range(3):
        await engine.scan_now()
    said = lines(caplog, "growing.mov: seen (")
    assert len(said) == 1 and "uploads once it has not changed for 60s" in said[0], said


async def test_progress_is_logged_at_most_every_step_or_ten_seconds(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_board, "LOG_EVERY_BYTES", 400_000)  # 100 MB in production
    monkeypatch.setattr(job_board, "LOG_GAP_SECONDS", 0.0)  # 5 s in production
    caplog.set_level(logging.INFO)
    size = 3_000_000
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = "2000000"  # 1.5 s: several progress reports
    write(harness.watch / "big.mov", os.urandom(size))
    await harness.start()
    await wait_for(lambda: "Demo Project/Incoming/big.mov" in harness.delivered(), 60, "big.mov")
    await wait_for(lambda: lines(caplog, "big.mov: delivered"), 30, "the delivery line")
    progress = [m for m in lines(caplog, "big.mov: ") if " sent (" in m]
    assert 1 <= len(progress) <= size // 400_000, progress
    assert all(" of 3 MB sent (" in m for m in progress), progress


async def test_an_image_sequence_is_one_line_not_one_per_frame(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness.env["POSTFLOW_STABLE_SECONDS"] = "60"
    harness.env["POSTFLOW_EXTENSIONS"] = ".exr"
    engine = await harness.start()
    staging = harness.watch.parent / "staging"
    for n in range(50):
        write(staging / "SC010" / f"SC010.{n:04d}.exr", b"f" * 100)
    (staging / "SC010").rename(harness.watch / "SC010")  # all 50 frames appear at once
    await wait_for(lambda: engine.settling() == 50, 30, "seen")
    await engine.scan_now()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "seen" in r.getMessage()]
    assert len(info) <= 3 and any("files seen (SC010/SC010." in m for m in info), info
