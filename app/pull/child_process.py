"""Running cloudflared as a child whose life is tied to ours, and reaping one a crash left.

A cloudflared that outlives PostFlow keeps a public URL into the editor's disk open, so:
- on Linux the child gets ``PR_SET_PDEATHSIG`` (killed when we die, however we die);
- on Windows it runs in a Job Object with kill-on-close and without a console window;
- everywhere its pid is written to a pidfile, and a leftover named there is stopped at the next
  start, once it is confirmed to be a cloudflared (a recycled pid is left alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``TUNNEL_*`` variables would override our flags (a user's token, origin, hostname)."""
    return {k: v for k, v in env.items() if not k.upper().startswith("TUNNEL_")}


def _preexec() -> Callable[[], None] | None:
    """Resolved here, in the parent: the child between fork and exec only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call: nobody would stop us
            os._exit(1)

    return die_with_parent


async def spawn(argv: Sequence[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start the child with stderr piped (it must always be drained) and nothing on stdin."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":  # pragma: no cover - Windows only
        kwargs["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
    else:
        kwargs["preexec_fn"] = _preexec()
        kwargs["start_new_session"] = True  # a Ctrl-C in a terminal reaches us, not it: we stop it
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        **kwargs,
    )
    if sys.platform == "win32":  # pragma: no cover - Windows only
        _WindowsJob.shared().adopt(process.pid)
    return process


class _WindowsJob:  # pragma: no cover - Windows only; its boundary is the Win32 calls below
    """One Job Object for every child: closed (by the OS) when we exit, it kills them."""

    _instance: _WindowsJob | None = None
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
    JobObjectExtendedLimitInformation = 9

    @classmethod
    def shared(cls) -> _WindowsJob:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self._kernel32 = kernel32
        self._handle = kernel32.CreateJobObjectW(None, None)

        class BasicLimits(ctypes.Structure):
            _fields_ = [
                ("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                ("SchedulingClass", wintypes.DWORD),
            ]  # fmt: skip

        class IoCounters(ctypes.Structure):
            _fields_ = [(name, ctypes.c_uint64) for name in (
                "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
                "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]  # fmt: skip

        class ExtendedLimits(ctypes.Structure):
            _fields_ = [
                ("BasicLimitInformation", BasicLimits), ("IoInfo", IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t),
            ]  # fmt: skip

        info = ExtendedLimits()
        info.BasicLimitInformation.LimitFlags = self.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        kernel32.SetInformationJobObject(
            self._handle, self.JobObjectExtendedLimitInformation, ctypes.byref(info), ctypes.sizeof(info)
        )

    def adopt(self, pid: int) -> None:
        process_all_access = 0x1F0FFF
        handle = self._kernel32.OpenProcess(process_all_access, False, pid)
        if handle:
            self._kernel32.AssignProcessToJobObject(self._handle, handle)
            self._kernel32.CloseHandle(handle)


# ---- the pidfile ----
def write_pidfile(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "started_at": time.time()}))
    os.replace(tmp, path)


def clear_pidfile(path: Path, pid: int) -> None:
    """Only our own entry: a newer child's must stay."""
    if read_pid(path) == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def read_pid(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text())["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if isinstance(pid, int) and pid > 0 else None


def command_line(pid: int) -> str | None:
    """The process's command line, or None when there is no such process (or we cannot tell)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.exists():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    if sys.platform == "win32":  # pragma: no cover - Windows only
        found = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/FO", "CSV", "/NH"],
                               capture_output=True, text=True, check=False,
                               creationflags=subprocess.CREATE_NO_WINDOW)  # type: ignore[attr-defined]  # fmt: skip
        return found.stdout if str(pid) in found.stdout else None
    found = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True,
                           check=False)  # fmt: skip
    return found.stdout.strip() or None


def reap_orphan(path: Path, marker: str = "", wait: float = 5.0) -> int | None:
    """Blocking: stop the cloudflared a crashed run left (its pid in the pidfile). Only one whose
    command line holds ``marker`` (our own config file's path): after a reboot the pid may be the
    user's own cloudflared. Returns its pid if one was stopped."""
    pid = read_pid(path)
    if pid is None or pid == os.getpid():
        return None
    line = command_line(pid)
    if line is None or "cloudflared" not in line or marker not in line:
        with contextlib.suppress(OSError):
            path.unlink()  # stale: no such process, or the pid is someone else's now
        return None
    log.warning("stopping a cloudflared (pid %d) left running by an earlier PostFlow", pid)
    _terminate(pid, wait)
    with contextlib.suppress(OSError):
        path.unlink()
    return pid


def _terminate(pid: int, wait: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        log.warning("cloudflared pid %d belongs to another user; it cannot be stopped", pid)
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if command_line(pid) is None or _is_zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
