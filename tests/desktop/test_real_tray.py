"""The tray app on a real X desktop: Xvfb, a real tray host (trayer), a real notification
daemon (dunst) on its own D-Bus session, and ``postflow --sandbox`` as a user starts it.

Driven from outside like a user: xdotool clicks and keys, xwininfo to see what is on screen,
dunstctl to read and click notifications. Screenshots for the README are taken on the way
(docs/images/). ``.ci/run`` installs the tools and sets POSTFLOW_REQUIRE_DESKTOP=1, so there a
missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest
from support_desktop import Desktop, desktop, missing_tools, wait_for

__all__ = ["desktop"]  # the fixture, used by name
missing = missing_tools()
if missing and not os.environ.get("POSTFLOW_REQUIRE_DESKTOP"):
    pytest.skip(f"real-desktop tools missing: {', '.join(missing)}", allow_module_level=True)

pytestmark = pytest.mark.timeout(240)
ICON_LINE = re.compile(r'"PostFlow": \("[^"]*" "PostFlow"\)\s+(\d+)x(\d+)\S*\s+\+(-?\d+)\+(-?\d+)')


def history(d: Desktop) -> list[dict[str, object]]:
    doc = json.loads(d.run("dunstctl", "history") or '{"data": [[]]}')
    return [{k: v.get("data") for k, v in n.items()} for n in doc["data"][0]]


def test_tray_menu_upload_and_notification_on_a_real_desktop(desktop: Desktop) -> None:
    d = desktop
    app = d.start(sys.executable, "-m", "app", "--sandbox", log="postflow")
    wait_for("the icon embedded in trayer", d.embedded_icon)

    # First run: "Try the sandbox" (keyboard: Alt+S) watches the demo folder.
    wait_for("the first-run window", lambda: d.visible("Welcome to PostFlow"))
    d.screenshot("first-run.png")
    d.run("xdotool", "search", "--name", "Welcome to PostFlow", "windowfocus", "--sync", "key", "alt+s")
    config = d.tmp / "config" / "config.toml"
    wait_for("the demo folder watched", lambda: config.exists() and "Demo folder" in config.read_text())
    demo = d.tmp / "data" / "Demo folder"

    # A file the user drops is uploaded, and dunst (a real notification daemon) shows it.
    (demo / "A001_C002_v1.mov").write_bytes(os.urandom(3 * 1024 * 1024))
    wait_for("the delivery notification", lambda: delivered(d, "A001_C002_v1.mov"), timeout=90)

    # Right-click opens the menu at the icon. (Xvfb has no window manager: a popup needs a
    # focused window to grab the keyboard, so the first-run window stays open until the end.)
    right_click_menu(d, "Welcome to PostFlow")
    d.screenshot("tray-menu.png")
    d.run("xdotool", "key", "Escape")
    wait_for("the menu closed", lambda: not menu_open(d))

    # Clicking a notification (dunstctl action: what a click on it does) opens the queue window.
    assert not d.visible("PostFlow — Queue")
    d.run("dunstctl", "close-all")
    for take in ("A001_C003_v1.mov", "A001_C004_v1.mov"):  # two together: "2 files…", opens the window
        (demo / f".{take}").write_bytes(os.urandom(1024 * 1024))
    for take in ("A001_C003_v1.mov", "A001_C004_v1.mov"):
        os.replace(demo / f".{take}", demo / take)
    wait_for("a notification on screen", lambda: int(d.run("dunstctl", "count", "displayed") or 0) > 0, 90)
    d.run("dunstctl", "action", "0")
    wait_for("the window opened by the notification's click", lambda: d.visible("PostFlow — Queue"))
    d.run("xdotool", "search", "--name", "Welcome to PostFlow", "windowfocus", "--sync", "key", "Escape")
    wait_for("the first-run window closed", lambda: not d.visible("Welcome to PostFlow"))
    d.run("xdotool", "search", "--name", "PostFlow — Queue", "windowfocus", "--sync", "key", "alt+4")
    time.sleep(1)  # let the page of history paint (a screenshot, not a check)
    d.screenshot("queue-window.png")

    # Settings… from the menu, by keyboard: every action is reachable without a mouse.
    right_click_menu(d, "PostFlow — Queue")
    d.run("xdotool", "key", "s")
    wait_for("the settings window", lambda: d.visible("PostFlow Settings"))
    d.screenshot("settings.png")

    assert app.poll() is None, "PostFlow stopped on its own"
    app.terminate()  # SIGTERM: a clean stop, recorded
    assert app.wait(30) == 0
    log = (d.tmp / "postflow.log").read_text(errors="replace")
    assert "Traceback" not in log, log
    assert "notification clicked" in (d.tmp / "data" / "logs" / "postflow.log").read_text()


def delivered(d: Desktop, name: str) -> bool:
    """The daemon got a PostFlow notification naming the file (shown now or in its history)."""
    shown = d.run("dunstctl", "count", "displayed").strip()
    texts = [str(n.get("summary", "")) + " " + str(n.get("body", "")) for n in history(d)]
    if name in " ".join(texts):
        return True
    if shown and int(shown) > 0:
        d.run("dunstctl", "close-all")  # shown notifications reach the history once closed
    return False


def right_click_menu(d: Desktop, focus: str) -> None:
    """Right-click the icon until its menu shows. With no window manager, X gives the popup its
    keyboard grab only while one of PostFlow's windows has the focus; a notification appearing
    at that moment can take it, so the focus is set again and the click repeated (3 tries)."""
    for _ in range(3):
        d.run("xdotool", "search", "--name", focus, "windowfocus", "--sync")
        icon = wait_for("the icon in trayer", d.embedded_icon)
        assert isinstance(icon, tuple)
        d.run("xdotool", "mousemove", str(icon[0]), str(icon[1]), "click", "3")
        try:
            wait_for("the tray menu", lambda: menu_open(d), timeout=5)
            return
        except AssertionError:
            d.run("xdotool", "key", "Escape")
    raise AssertionError("the tray menu did not open after three right-clicks")


def menu_open(d: Desktop) -> bool:
    """A popup menu is an override-redirect window of PostFlow's, mapped, with no title."""
    out = d.run("xdotool", "search", "--onlyvisible", "--class", "PostFlow")
    for window in out.split():
        info = d.run("xwininfo", "-id", window)
        width = re.search(r"Width: (\d+)", info)
        override = "Override Redirect State: yes" in info
        if override and "IsViewable" in info and width and int(width.group(1)) > 60:
            return True
    return False


def test_a_sigterm_while_starting_stops_cleanly(desktop: Desktop) -> None:
    """The icon shows before the rest has loaded: a SIGTERM then (a log-out right after log-in)
    still ends in a clean stop, status 0, not a process killed half-started."""
    d = desktop
    app = d.start(sys.executable, "-m", "app", "--sandbox", log="postflow-early")
    wait_for("the icon embedded in trayer", d.embedded_icon)
    app.terminate()
    assert app.wait(60) == 0, (d.tmp / "postflow-early.log").read_text(errors="replace")[-3000:]
