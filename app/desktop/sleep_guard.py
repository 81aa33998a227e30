"""Keeping the computer awake while files go up, and only then.

A laptop that sleeps with 40 GB half sent loses the evening. While uploads run (and are not
paused) PostFlow holds the platform's "do not sleep" lock; it lets go as soon as the queue
drains or everything is paused:
- macOS: ``caffeinate -i -w <our pid>`` (an idle-sleep assertion that also dies with us);
- Windows: ``SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED)``, cleared after;
- Linux: a logind inhibitor (``org.freedesktop.login1.Manager.Inhibit``, what ``sleep``, mode
  ``block``) on the system bus; the lock is the file descriptor logind returns, released by
  closing it. A desktop without logind (or without D-Bus) is one log line, never an error.
The display may still sleep: only system sleep is held. ``upload.prevent_sleep = false`` turns
all of it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)
WHO = "PostFlow"
WHY = "Uploading files to Frame.io"
ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001
CALL_TIMEOUT = 5.0  # seconds a hold or release may take


class Backend(Protocol):
    name: str

    async def hold(self) -> None: ...

    async def release(self) -> None: ...


class SleepGuard:
    """``want(True)`` while transfers run; ``want(False)`` when idle or paused. Idempotent, and
    changes are applied one at a time in order (a quick start/stop never leaves a lock held)."""

    def __init__(self, backend: Backend | None) -> None:
        self._backend = backend
        self.enabled = True
        self.held = False
        self.changes = 0  # holds and releases made (tests, diagnostics)
        self._lock = asyncio.Lock()
        self._wanted = False

    async def want(self, awake: bool) -> None:
        self._wanted = awake
        async with self._lock:
            target = self._wanted and self.enabled and self._backend is not None
            if target == self.held or self._backend is None:
                return
            try:
                async with asyncio.timeout(CALL_TIMEOUT):  # a hung D-Bus never stalls the caller
                    await self._apply(target)
                if target:
                    log.info("keeping the computer awake while files upload (%s)", self._backend.name)
                else:
                    log.info("the computer may sleep again")
                self.held = target
                self.changes += 1
            except Exception as exc:  # noqa: BLE001 - no sleep lock is a pity, never a failure
                detail = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
                if target:  # told once: this desktop cannot (no logind, no D-Bus), not every upload
                    log.warning("cannot keep the computer awake (%s); uploads go on, and PostFlow stops "
                                "asking until it restarts", detail)  # fmt: skip
                    self._backend = None
                else:
                    log.warning("could not let the computer sleep again (%s)", detail)
                    self.held = False

    async def _apply(self, target: bool) -> None:
        assert self._backend is not None
        await (self._backend.hold() if target else self._backend.release())

    async def close(self) -> None:
        self.enabled = False
        await self.want(False)


# ---- Linux: a logind inhibitor ----
class LogindInhibitor:
    name = "logind inhibitor"

    def __init__(self, bus_address: str | None = None) -> None:
        self._address = bus_address
        self._fd: int | None = None

    async def hold(self) -> None:
        from dbus_fast import BusType, Message, MessageType
        from dbus_fast.aio import MessageBus

        bus = MessageBus(bus_address=self._address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True)
        try:
            await bus.connect()
        except OSError as exc:  # no socket: a container, a minimal desktop, a server
            raise RuntimeError(
                f"this computer has no system D-Bus to ask logind ({exc.strerror or exc})"
            ) from None
        try:
            reply = await bus.call(Message(
                destination="org.freedesktop.login1", path="/org/freedesktop/login1",
                interface="org.freedesktop.login1.Manager", member="Inhibit", signature="ssss",
                body=["sleep", WHO, WHY, "block"],
            ))  # fmt: skip
        finally:
            bus.disconnect()
        try:
            if reply is None or reply.message_type is MessageType.ERROR:
                raise RuntimeError(reply.body[0] if reply and reply.body else "logind refused the inhibitor")
            self._fd = os.dup(reply.unix_fds[reply.body[0]])  # ours to keep
        finally:
            for fd in reply.unix_fds if reply is not None else ():  # the message's copies, always
                with contextlib.suppress(OSError):
                    os.close(fd)

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # logind sees the last copy closed: the inhibitor is gone


# ---- macOS: caffeinate ----
class Caffeinate:
    name = "caffeinate"

    def __init__(self, spawn: Callable[..., Any] = subprocess.Popen, executable: str = "/usr/bin/caffeinate"):
        self._spawn = spawn
        self._executable = executable
        self._process: Any = None

    def command(self) -> list[str]:
        return [self._executable, "-i", "-w", str(os.getpid())]

    async def hold(self) -> None:
        self._process = self._spawn(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip

    async def release(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            await asyncio.to_thread(process.wait)


# ---- Windows: SetThreadExecutionState ----
class ExecutionState:
    name = "SetThreadExecutionState"

    def __init__(self, kernel32: Any = None) -> None:
        self._kernel32 = kernel32

    def _api(self) -> Any:
        if self._kernel32 is None:  # pragma: no cover - Windows only
            import ctypes

            self._kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        return self._kernel32

    async def hold(self) -> None:
        if not self._api().SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED):
            raise OSError("SetThreadExecutionState refused")

    async def release(self) -> None:
        self._api().SetThreadExecutionState(ES_CONTINUOUS)


def platform_backend() -> Backend | None:
    """This computer's way, or None (told once) when it has none."""
    if sys.platform == "darwin":
        return Caffeinate() if os.path.exists("/usr/bin/caffeinate") else None
    if sys.platform == "win32":
        return ExecutionState()
    if sys.platform.startswith("linux"):
        return LogindInhibitor()
    return None
