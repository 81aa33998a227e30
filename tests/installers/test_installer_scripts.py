"""The installers' own scripts: the NSIS script compiles (makensis, Debian's nsis package)
against the Linux bundle's layout as a stand-in payload, and the Linux tarball's per-user
installer installs, updates and uninstalls without touching the user's queue and settings."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app import __version__

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = bool(os.environ.get("POSTFLOW_REQUIRE_DESKTOP"))  # .ci/run installs the tools


def stand_in_payload(tmp_path: Path) -> Path:
    """The frozen bundle when .ci/run built one, else a small tree of the same shape."""
    frozen = os.environ.get("POSTFLOW_FROZEN_APP")
    if frozen:
        return Path(frozen).resolve().parent
    payload = tmp_path / "PostFlow"
    (payload / "_internal" / "resources" / "icons").mkdir(parents=True)
    (payload / "PostFlow.exe").write_bytes(b"MZ stand-in")
    (payload / "_internal" / "resources" / "icons" / "postflow.png").write_bytes(b"png")
    return payload


def test_the_nsis_script_compiles(tmp_path: Path) -> None:
    if shutil.which("makensis") is None:
        if REQUIRED:
            raise AssertionError("makensis (Debian package nsis) is not installed")
        pytest.skip("makensis (Debian package nsis) is not installed")
    payload = stand_in_payload(tmp_path)
    out = tmp_path / f"PostFlow-{__version__}-setup.exe"
    done = subprocess.run(
        ["makensis", "-V2", "-DUNCOMPRESSED", f"-DVERSION={__version__}", f"-DPAYLOAD={payload}",
         f"-DOUTFILE={out}", str(ROOT / "installers" / "windows" / "postflow.nsi")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.stat().st_size > 50_000
    assert out.read_bytes()[:2] == b"MZ"  # a Windows program
    missing = subprocess.run(["makensis", "-V1", str(ROOT / "installers" / "windows" / "postflow.nsi")],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode != 0 and "give the version" in missing.stdout + missing.stderr


def test_the_desktop_entry_and_apprun() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(ROOT / "installers" / "linux" / "postflow.desktop")
    desktop = entry["Desktop Entry"]
    assert (desktop["Type"], desktop["Name"], desktop["Icon"], desktop["Exec"]) == (
        "Application", "PostFlow", "postflow", "postflow",
    )  # fmt: skip
    assert desktop["Categories"].endswith(";")
    apprun = ROOT / "installers" / "linux" / "AppRun"
    assert os.access(apprun, os.X_OK) and "usr/lib/postflow/postflow" in apprun.read_text()


def test_the_tarballs_installer_keeps_the_users_files(tmp_path: Path) -> None:
    stage = tmp_path / "PostFlow-x-linux"
    (stage / "PostFlow").mkdir(parents=True)
    program = stage / "PostFlow" / "postflow"
    program.write_text("#!/bin/sh\necho PostFlow stand-in\n")
    program.chmod(0o755)
    for name in ("postflow.desktop", "install.sh"):
        shutil.copy(ROOT / "installers" / "linux" / name, stage / name)
    shutil.copy(ROOT / "resources" / "icons" / "postflow.png", stage / "postflow.png")
    home = tmp_path / "home"
    queue = home / ".local" / "share" / "PostFlow" / "state.db"
    queue.parent.mkdir(parents=True)
    queue.write_text("the user's queue")
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    for _ in range(2):  # installing again updates in place
        done = subprocess.run(["sh", str(stage / "install.sh")], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    installed = home / ".local" / "opt" / "PostFlow" / "postflow"
    menu = home / ".local" / "share" / "applications" / "postflow.desktop"
    assert subprocess.run([str(installed)], capture_output=True, text=True).stdout == "PostFlow stand-in\n"
    assert f'Exec="{installed}"' in menu.read_text()
    done = subprocess.run(
        ["sh", str(stage / "install.sh"), "--uninstall"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and not installed.exists() and not menu.exists()
    assert queue.read_text() == "the user's queue"


def test_the_dmg_settings_name_the_app_applications_and_files_that_exist() -> None:
    settings: dict[str, object] = {"defines": {"app": "dist/PostFlow.app"}}
    source = (ROOT / "installers" / "macos" / "dmg_settings.py").read_text()
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # dmgbuild runs from the checkout's root (installers/macos/build.sh)
        exec(compile(source, "dmg_settings.py", "exec"), settings)  # noqa: S102 - as dmgbuild does
        assert Path(str(settings["icon"])).is_file() and Path(str(settings["background"])).is_file()
    finally:
        os.chdir(cwd)
    assert settings["files"] == ["dist/PostFlow.app"]
    assert settings["symlinks"] == {"Applications": "/Applications"}
    assert set(settings["icon_locations"]) == {"PostFlow.app", "Applications"}  # type: ignore[arg-type]


def test_the_ci_workflow_runs_scripts_that_exist() -> None:
    workflow = (ROOT / ".github" / "workflows" / "installers.yml").read_text()
    for script in ("installers/macos/build.sh", r"installers\windows\build.ps1", "installers/smoke_test.py"):
        assert script in workflow
        assert (ROOT / script.replace("\\", "/")).is_file()
    assert os.access(ROOT / "installers" / "macos" / "build.sh", os.X_OK)
