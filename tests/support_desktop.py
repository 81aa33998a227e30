"""A real X desktop for tests: Xvfb, a D-Bus session, a notification daemon (dunst) and a tray
host (trayer), and the ways to look at it from outside (xwininfo, xdotool, dunstctl). Used by the
real-desktop test and by the frozen bundle's test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The README's screenshots: rewritten only when asked (POSTFLOW_UPDATE_SCREENSHOTS=1), so a test
# run leaves the checkout clean; otherwise they are taken into the test's folder all the same.
IMAGES = REPO / "docs" / "images"
TOOLS = ("Xvfb", "trayer", "dunst", "dunstctl", "xdotool", "xwininfo", "dbus-daemon")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def wait_for(what: str, check: Callable[[], object], timeout: float = 60.0) -> object:
    """Poll an outside observable (a window, a file, the daemon's history) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Desktop:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTFLOW_", "QT_", "DBUS_"))}
        self.env.update(
            POSTFLOW_CONFIG_DIR=str(tmp / "config"), POSTFLOW_DATA_DIR=str(tmp / "data"),
            HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "home" / ".config"),
            POSTFLOW_STABLE_SECONDS="1", POSTFLOW_SCAN_INTERVAL="1", POSTFLOW_TRAY_WAIT="20",
        )  # fmt: skip
        (tmp / "home").mkdir()

    def start(self, *command: str, log: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{log}.log").open("wb") as out:  # the child keeps its own copy
            proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def run(self, *command: str) -> str:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30).stdout

    def boot(self) -> None:
        read, write = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten",
                                 "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)  # fmt: skip
        self.procs.append(xvfb)
        os.close(write)
        with os.fdopen(read) as f:
            self.env["DISPLAY"] = f":{f.readline().strip()}"
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)  # fmt: skip
        self.procs.append(bus)
        assert bus.stdout is not None
        self.env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().decode().strip()
        self.start("dunst", log="dunst")
        wait_for("dunst on the bus", lambda: "Dunst is not running" not in self.run("dunstctl", "is-paused"))
        self.start("trayer", "--edge", "bottom", "--align", "right", "--widthtype", "pixel", "--width", "240",
                   "--height", "28", "--SetDockType", "true", log="trayer")  # fmt: skip
        wait_for("the tray host", lambda: self.window("panel"))

    def tree(self) -> str:
        return self.run("xwininfo", "-root", "-tree")

    def window(self, name: str) -> str | None:
        found = re.search(rf'^\s*(0x[0-9a-f]+) "{re.escape(name)}"', self.tree(), re.M)
        return found.group(1) if found else None

    def embedded_icon(self, name: str = "PostFlow") -> tuple[int, int] | None:
        """The app's icon window inside trayer's panel (named after the app), and where it is."""
        tree = self.tree()
        panel = re.search(r'^(\s*)0x[0-9a-f]+ "panel": \("panel" "trayer"\).*$', tree, re.M)
        if not panel:
            return None
        indent = len(panel.group(1))
        for line in tree[panel.end() :].splitlines()[1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent and line.strip().startswith("0x"):
                break  # left the panel's subtree
            icon = re.search(rf'"{name}": \("[^"]*" "{name}"\)\s+(\d+)x(\d+)\S*\s+\+(-?\d+)\+(-?\d+)', line)
            if icon:
                w, h, x, y = map(int, icon.groups())
                return x + w // 2, y + h // 2
        return None

    def visible(self, name: str) -> bool:
        return bool(self.run("xdotool", "search", "--onlyvisible", "--name", name).strip())

    def screenshot(self, name: str) -> None:
        folder = IMAGES if os.environ.get("POSTFLOW_UPDATE_SCREENSHOTS") else self.tmp / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        grab = REPO / "tests" / "desktop" / "grab_screen.py"
        subprocess.run([sys.executable, str(grab), str(folder / name)], env=self.env, check=True, timeout=30)
        assert (folder / name).stat().st_size > 10_000, f"{name}: an empty screen"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    d = Desktop(tmp_path)
    try:
        d.boot()
        yield d
    finally:
        d.stop()
