"""Sleep prevention: one logind inhibitor while uploads run (a stand-in logind on a private
D-Bus), released when the queue drains or is paused; the macOS and Windows calls at their boundary."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, wait_for, write_random

from app.desktop.sleep_guard import (
    ES_CONTINUOUS,
    ES_SYSTEM_REQUIRED,
    Caffeinate,
    ExecutionState,
    LogindInhibitor,
    SleepGuard,
)

needs_dbus = pytest.mark.skipif(
    shutil.which("dbus-run-session") is None and not os.environ.get("POSTFLOW_REQUIRE_DESKTOP"),
    reason="dbus-run-session (Debian package dbus) is not installed",
)


@pytest.fixture
def logind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``dbus-run-session -- python -m app.sandbox.logind``: its private bus stands for the system bus."""
    with subprocess.Popen(
        ["dbus-run-session", "--", sys.executable, "-m", "app.sandbox.logind"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            address = proc.stdout.readline().strip()
            assert address.startswith("unix:"), address
            monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
            yield address
        finally:  # the session's bus and the stand-in too, not only dbus-run-session
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
            proc.stdout.close()


async def inhibitors(address: str) -> list[Any]:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()
    try:
        reply = await bus.call(Message(
            destination="org.freedesktop.login1", path="/org/freedesktop/login1",
            interface="org.freedesktop.login1.Manager", member="ListInhibitors",
        ))  # fmt: skip
    finally:
        bus.disconnect()
    assert reply is not None
    return [tuple(i) for i in reply.body[0]]


@pytest.fixture
async def slow(sandbox: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    sandbox.control("/_sandbox/settings", {"part_size": 256 * 1024})
    h = Harness(sandbox, tmp_path / "watch", POSTFLOW_BANDWIDTH_LIMIT="500000")  # a 2 MB file takes 4 s
    h.watch.mkdir()
    yield h
    await h.close()


@needs_dbus
async def test_one_inhibitor_while_uploading_released_when_the_queue_drains(
    logind: str, slow: Harness
) -> None:
    write_random(slow.watch / "long.mov", 2_000_000, seed=1)
    engine = await slow.start()

    async def held() -> bool:
        return len(await inhibitors(logind)) == 1

    await wait_for(held, 60, "the inhibitor taken as the upload started")
    (what, who, why, mode, _uid, _pid) = (await inhibitors(logind))[0]
    assert (what, who, mode) == ("sleep", "PostFlow", "block") and "Uploading" in why

    async def released() -> bool:
        jobs = await engine.jobs()
        return bool(jobs) and all(j.state.value == "done" for j in jobs) and await inhibitors(logind) == []

    await wait_for(released, 60, "the inhibitor let go once the queue drained")
    assert engine.sleep_guard.changes == 2  # one taken, one released: never a pile of locks


@needs_dbus
async def test_pausing_lets_the_computer_sleep_and_resuming_holds_it_again(
    logind: str, slow: Harness
) -> None:
    write_random(slow.watch / "long.mov", 2_000_000, seed=2)
    engine = await slow.start()

    async def count(n: int) -> bool:
        return len(await inhibitors(logind)) == n

    await wait_for(lambda: count(1), 60, "held while uploading")
    await engine.pause_all()
    await wait_for(lambda: count(0), 30, "released on pause")
    await engine.resume_all()
    await wait_for(lambda: count(1), 30, "held again on resume")
    await engine.update_settings({"prevent_sleep": False})
    await wait_for(lambda: count(0), 30, "released when the setting is turned off")


async def test_a_desktop_without_logind_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    guard = SleepGuard(LogindInhibitor("unix:path=/nonexistent/bus"))
    for _ in range(3):
        await guard.want(True)
        await guard.want(False)
    lines = [r for r in caplog.records if "cannot keep the computer awake" in r.getMessage()]
    assert len(lines) == 1 and not guard.held


async def test_macos_runs_caffeinate_tied_to_our_pid_and_stops_it() -> None:
    started: list[list[str]] = []

    class Process:
        terminated = False

        def terminate(self) -> None:
            self.terminated = True

        def wait(self) -> int:
            return 0

    process = Process()

    def spawn(argv: list[str], **_: Any) -> Process:
        started.append(argv)
        return process

    guard = SleepGuard(Caffeinate(spawn=spawn))
    await guard.want(True)
    await guard.want(True)
    assert started == [["/usr/bin/caffeinate", "-i", "-w", str(os.getpid())]]
    await guard.want(False)
    assert process.terminated and not guard.held


async def test_windows_sets_and_clears_the_execution_state() -> None:
    calls: list[int] = []

    class Kernel32:
        def SetThreadExecutionState(self, flags: int) -> int:  # noqa: N802 - the Win32 name
            calls.append(flags)
            return 1

    guard = SleepGuard(ExecutionState(Kernel32()))
    await guard.want(True)
    await guard.want(False)
    assert calls == [ES_CONTINUOUS | ES_SYSTEM_REQUIRED, ES_CONTINUOUS]
