"""The frozen Linux bundle (``build.spec``), run as an editor's machine runs it: ``--version``,
the headless engine delivering a file in sandbox mode, and the tray app embedding its icon in a
real tray host under Xvfb; and what the lean filter promised to leave out, left out.

``.ci/run`` builds the bundle first (installers/linux/build.sh) and points POSTFLOW_FROZEN_APP
at its executable; without it these tests skip (build it the same way to run them by hand).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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

APP = Path(FROZEN).resolve()
BUNDLE = APP.parent
pytestmark = pytest.mark.timeout(180)


def frozen_env(home: Path) -> dict[str, str]:
    """What a fresh user's session has: no Python, no virtualenv, no PostFlow variables."""
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
    return {**keep, "HOME": str(home), "POSTFLOW_CONFIG_DIR": str(home / "config"),
            "POSTFLOW_DATA_DIR": str(home / "data"), "XDG_CONFIG_HOME": str(home / ".config")}  # fmt: skip


def wait_until(what: str, check: object, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_version(home: Path) -> None:
    done = subprocess.run([str(APP), "--version"], env=frozen_env(home), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"PostFlow {__version__}"


@pytest.fixture
def headless(home: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, dict[str, str]]]:
    watch = tmp_path / "watch"
    watch.mkdir()
    env = {**frozen_env(home), "POSTFLOW_STABLE_SECONDS": "1", "POSTFLOW_SCAN_INTERVAL": "0.5"}
    with (tmp_path / "run.log").open("wb") as log:
        command = [str(APP), "run", "--headless", "--sandbox", "--watch", str(watch)]
        command += ["--project", "Demo Project"]
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, watch, env
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_headless_sandbox_mode_delivers_a_file_end_to_end(
    headless: tuple[subprocess.Popen[bytes], Path, dict[str, str]], tmp_path: Path
) -> None:
    proc, watch, env = headless
    log = tmp_path / "run.log"
    wait_until(
        "the engine running", lambda: "PostFlow is running headless" in log.read_text(errors="replace")
    )
    partial = watch / ".A001_C001.mov.part"
    partial.write_bytes(os.urandom(3 * 1024 * 1024))
    partial.rename(watch / "A001_C001.mov")

    def counts() -> dict[str, int] | None:
        done = subprocess.run(
            [str(APP), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            return None
        document = json.loads(done.stdout)
        return document["queue"]["counts"] if document["queue"]["counts"]["done"] == 1 else None

    final = wait_until("the file delivered", counts, 90)
    assert final == {**final, "done": 1, "failed": 0}, final
    assert "A001_C001.mov: delivered to Frame.io" in log.read_text(errors="replace")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text(errors="replace")[-3000:]


def test_the_frozen_tray_app_embeds_its_icon_in_a_real_tray(tmp_path: Path) -> None:
    from support_desktop import Desktop, missing_tools

    if missing_tools():
        if os.environ.get("POSTFLOW_REQUIRE_DESKTOP"):
            raise AssertionError(f"real-desktop tools missing: {missing_tools()}")
        pytest.skip(f"real-desktop tools missing: {', '.join(missing_tools())}")
    d = Desktop(tmp_path)
    try:
        d.boot()
        d.env = {**frozen_env(d.tmp / "home"), **{k: v for k, v in d.env.items() if k in ("DISPLAY",
                 "DBUS_SESSION_BUS_ADDRESS")}, "POSTFLOW_TRAY_WAIT": "20"}  # fmt: skip
        started = time.monotonic()
        app = d.start(str(APP), "--sandbox", log="frozen-postflow")
        wait_until("the frozen icon embedded in trayer", d.embedded_icon, 90)
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
