"""Start PostFlow at login: a LaunchAgent on macOS, the Run key on Windows, an XDG autostart
entry on Linux. ``enabled()`` reads what is really registered (not a saved preference), so
the settings page shows the truth even after the user removed the entry by hand.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import plistlib
import shlex
import sys
from pathlib import Path
from typing import Any

from app.core.errors import PostFlowError

LABEL = "io.postflow.PostFlow"
LINUX_DELAY = 8  # seconds: let the panel (and its tray) start before PostFlow looks for it


def launch_command() -> list[str]:
    """What starts this PostFlow: the AppImage file (its contents are mounted at a new temporary
    path each run), the frozen executable, or this Python with ``-m app``."""
    if getattr(sys, "frozen", False):
        appimage = os.environ.get("APPIMAGE")
        return [appimage] if appimage else [sys.executable]
    return [sys.executable, "-m", "app"]


class LoginItem:
    def __init__(self, command: list[str] | None = None, *, home: Path | None = None,
                 platform: str | None = None) -> None:  # fmt: skip
        self.command = command or launch_command()
        self._home = home or Path.home()
        self.platform = platform or sys.platform

    # ---- where ----
    @property
    def path(self) -> Path:
        """The file that registers PostFlow (macOS, Linux)."""
        if self.platform == "darwin":
            return self._home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        config = os.environ.get("XDG_CONFIG_HOME") or str(self._home / ".config")
        return Path(config) / "autostart" / "postflow.desktop"

    # ---- what ----
    def enabled(self) -> bool:
        if self.platform == "win32":
            return self._windows_value() is not None
        return self.path.is_file()

    def registered_command(self) -> list[str] | None:
        """What the registration starts, read back from it (None: not registered, or unreadable).
        An app moved or reinstalled elsewhere leaves a registration that starts nothing."""
        try:
            if self.platform == "win32":
                value = self._windows_value()
                return _split_windows(value) if value else None
            if not self.path.is_file():
                return None
            if self.platform == "darwin":
                arguments = plistlib.loads(self.path.read_bytes()).get("ProgramArguments")
                return [str(a) for a in arguments] if isinstance(arguments, list) else None
            return _desktop_command(self.path.read_text(errors="replace"))
        except (OSError, ValueError, plistlib.InvalidFileException):
            return None

    def points_here(self) -> bool:
        """Registered, and for this very PostFlow (Windows: paths compared case-insensitively)."""
        command = self.registered_command()
        if command is None or self.platform != "win32":
            return command == self.command
        return [a.lower() for a in command] == [a.lower() for a in self.command]

    def describe(self) -> str:
        """The settings page's line: what is really registered, read back, in words."""
        where = "the Run key in the registry" if self.platform == "win32" else str(self.path)
        if not self.enabled():
            return "Not registered: PostFlow starts when you open it."
        command = self.registered_command()
        if self.points_here():
            return f"Registered in {where}: starts this PostFlow ({self.command[0]})."
        shown = command[0] if command else "something PostFlow cannot read"
        return (f"Registered in {where}, but for {shown}, not this PostFlow ({self.command[0]}): "
                "Apply with the box ticked to point it here.")  # fmt: skip

    def set_enabled(self, on: bool) -> None:
        try:
            if self.platform == "win32":
                self._windows_set(on)
            elif on:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_bytes(self._content())
                os.replace(tmp, self.path)
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            where = "the registry" if self.platform == "win32" else str(self.path)
            raise PostFlowError(f"Could not change {where}: {exc.strerror or exc}",
                                title="Start at login not changed") from None  # fmt: skip

    def _content(self) -> bytes:
        if self.platform == "darwin":
            return plistlib.dumps({
                "Label": LABEL, "ProgramArguments": self.command, "RunAtLoad": True,
                "ProcessType": "Interactive", "LimitLoadToSessionType": "Aqua",
            })  # fmt: skip
        exec_line = f"sh -c {shlex.quote(f'sleep {LINUX_DELAY}; exec {shlex.join(self.command)}')}"
        return (
            "[Desktop Entry]\nType=Application\nName=PostFlow\n"
            "Comment=Delivers finished renders to Frame.io\n"
            f"Exec={exec_line}\nIcon=postflow\nTerminal=false\n"
            f"X-GNOME-Autostart-enabled=true\nX-GNOME-Autostart-Delay={LINUX_DELAY}\n"
        ).encode()

    # ---- Windows ----
    _RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"

    def _windows_value(self) -> str | None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self._RUN_KEY) as key:
                value, _kind = winreg.QueryValueEx(key, "PostFlow")
                return str(value)
        except OSError:
            return None

    def _windows_set(self, on: bool) -> None:
        import subprocess

        winreg = _winreg()

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, self._RUN_KEY) as key:
            if on:
                winreg.SetValueEx(key, "PostFlow", 0, winreg.REG_SZ, subprocess.list2cmdline(self.command))
            else:
                with contextlib.suppress(FileNotFoundError):
                    winreg.DeleteValue(key, "PostFlow")


def _desktop_command(text: str) -> list[str] | None:
    """The command of an autostart entry written by ``_content`` (``sh -c 'sleep N; exec …'``)."""
    for line in text.splitlines():
        if line.startswith("Exec="):
            words = shlex.split(line.removeprefix("Exec="))
            if words[:2] == ["sh", "-c"] and len(words) == 3:
                inner = words[2].split(";", 1)[-1].strip()
                return shlex.split(inner.removeprefix("exec "))
            return words
    return None


def _split_windows(value: str) -> list[str]:
    """The Run value back into arguments (``subprocess.list2cmdline``'s quoting: double quotes
    only; a ' or # in a folder name is part of it)."""
    lexer = shlex.shlex(value, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""  # backslashes are path separators here
    lexer.quotes = '"'
    lexer.commenters = ""
    return list(lexer)


def _winreg() -> Any:
    """Windows only; imported by name so type checks on other systems need no stub."""
    return importlib.import_module("winreg")
