"""The frozen Linux bundle (``build.spec``), run as an editor's machine runs it: ``--version``,
the headless engine delivering a file in sandbox mode, and the tray app embedding its icon in a
real tray host under Xvfb; and what the lean filter promised to leave out, left out.

``.ci/run`` builds the bundle first (installers/linux/build.sh) and points POSTFLOW_FROZEN_APP
at its executable; without it these tests skip (build it the same way to run them by hand).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import __version__

FROZEN = os.environ.get("POSTFLOW_FROZEN_APP", "")
if not FROZEN:
    if os.environ.get("POSTFLOW_REQUIRE_FROZEN"):
        raise RuntimeError("POSTFLOW_REQUIRE_FROZEN is set but POSTFLOW_FROZEN_APP is not")
    pytest.skip("no frozen bundle: build it with installers/linux/build.sh and set POSTFLOW_FROZEN_APP",
                allow_module_level=True)  # fmt: skip
if not sys.platform.startswith("linux"):
    pytest.skip(
        "the frozen bundle is tested on Linux (CI); other platforms in their own CI", allow_module_level=True
    )

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "installers"))
import smoke_test  # noqa: E402 - installers/smoke_test.py, which the macOS and Windows CI run too

APP = Path(FROZEN).resolve()
BUNDLE = APP.parent
pytestmark = pytest.mark.timeout(180)


def test_version(tmp_path: Path) -> None:
    smoke_test.check_version(APP, smoke_test.isolated_env(tmp_path), __version__)


def test_headless_sandbox_mode_delivers_a_file_end_to_end(tmp_path: Path) -> None:
    log = smoke_test.deliver_one_file(APP, tmp_path)  # SIGTERM at the end: a clean stop, status 0
    assert "demo mode: built-in sandbox" in log


def test_the_frozen_app_runs_proxy_scripts_in_its_own_child(tmp_path: Path) -> None:
    requests = [
        {"load": "function FindProxyForURL(u, h) { return 'PROXY p:3128; DIRECT'; }", "origin": "t.pac"},
        {"find": "https://api.frame.io/", "host": "api.frame.io"},
    ]
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    env = smoke_test.isolated_env(tmp_path)
    done = subprocess.run(
        [str(APP), "--pac-worker"], input=lines, capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers == [{"ok": True}, {"routes": ["http://p:3128", None], "skipped": []}]


def test_start_at_login_registers_the_installed_app_and_the_entry_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support_desktop import Desktop, missing_tools, wait_for

    from app.desktop.login_item import LoginItem

    home = tmp_path / "user"  # (the Desktop below makes its own "home")
    env = smoke_test.isolated_env(home)
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])  # where this test reads it back

    def login_item(state: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(APP), "start-at-login", state], env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    on = login_item("on")
    assert on.returncode == 0 and f"starts this PostFlow ({APP})" in on.stdout, on.stdout + on.stderr
    registered = LoginItem(home=home, platform="linux", command=[str(APP)])
    registered_command = registered.registered_command()
    assert registered_command == [str(APP)] and "starts this PostFlow" in login_item("status").stdout
    if not missing_tools():  # what the session will run at the next login, run now
        d = Desktop(tmp_path)
        try:
            d.boot()
            session = {k: v for k, v in d.env.items() if k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
            d.env = {**env, **session, "POSTFLOW_TRAY_WAIT": "20"}
            app = d.start(*registered_command, log="from-login-item")
            wait_for("the icon of the app the login item starts", d.embedded_icon, 90)
            app.terminate()
            assert app.wait(60) == 0
        finally:
            d.stop()
    off = login_item("off")
    assert off.returncode == 0 and registered.registered_command() is None


def test_the_frozen_tray_app_embeds_its_icon_in_a_real_tray(tmp_path: Path) -> None:
    from support_desktop import Desktop, missing_tools, wait_for

    if missing_tools():
        if os.environ.get("POSTFLOW_REQUIRE_DESKTOP"):
            raise AssertionError(f"real-desktop tools missing: {missing_tools()}")
        pytest.skip(f"real-desktop tools missing: {', '.join(missing_tools())}")
    d = Desktop(tmp_path)
    try:
        d.boot()
        session = {k: v for k, v in d.env.items() if k in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
        d.env = {**smoke_test.isolated_env(d.tmp / "home"), **session, "POSTFLOW_TRAY_WAIT": "20"}
        started = time.monotonic()
        app = d.start(str(APP), "--sandbox", log="frozen-postflow")
        wait_for("the frozen icon embedded in trayer", d.embedded_icon, 90)
        print(f"frozen tray app: icon embedded {time.monotonic() - started:.2f} s after start")
        assert app.poll() is None, (d.tmp / "frozen-postflow.log").read_text(errors="replace")[-3000:]
        app.terminate()
        assert app.wait(30) == 0, (d.tmp / "frozen-postflow.log").read_text(errors="replace")[-3000:]
    finally:
        d.stop()


def test_the_bundle_carries_what_it_needs_and_not_what_it_does_not() -> None:
    internal = BUNDLE / "_internal"
    assert (internal / "resources" / "icons" / "tray-idle-template.svg").is_file()
    assert (internal / "resources" / "icons" / "postflow.png").is_file()
    assert "Apache License" in (internal / "licenses" / "cloudflared-LICENSE.txt").read_text()
    qt = internal / "PySide6" / "Qt"
    assert (qt / "plugins" / "platforms" / "libqxcb.so").is_file()
    assert (qt / "plugins" / "imageformats" / "libqsvg.so").is_file()  # the tray icons are SVG
    assert (qt / "libexec" / "QtWebEngineProcess").is_file()  # the sign-in window
    assert not (qt / "qml").exists()
    assert not list(qt.rglob("*.qm")), "translations were to be left out"
    locales = sorted(p.name for p in (qt / "translations" / "qtwebengine_locales").glob("*.pak"))
    assert locales == ["en-US.pak"], locales
    lib = {p.name for p in (qt / "lib").iterdir()}
    assert not {n for n in lib if n.startswith(("libQt63D", "libQt6Charts", "libQt6Multimedia", "libQt6Pdf"))}
    assert not (internal / "mypy").exists() and not (internal / "pydantic_core").exists()
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"frozen bundle: {size / 1e6:.0f} MB in {BUNDLE}")
