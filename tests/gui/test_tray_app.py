"""The tray icon and its menu driven by a real engine on a real sandbox: every look an editor
can meet, and every menu action doing what it says to the engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gui_waits import until
from running_tray import tray_app

from app.core.events import AuthState
from app.core.jobs import JobState
from app.gui.tray_app import TrayApp
from app.gui.tray_status import TrayLook


def drop(folder: Path, name: str, size: int = 256 * 1024) -> Path:
    path = folder / name
    tmp = folder / f".{name}"
    tmp.write_bytes(os.urandom(size))
    tmp.rename(path)
    return path


def look(app: TrayApp) -> TrayLook | None:
    return app.tray.look


def menu_texts(app: TrayApp) -> list[str]:
    app.tray.menu.aboutToShow.emit()  # what Qt does right before showing it
    return [a.text().replace("&", "") for a in app.tray.menu.actions() if a.isVisible()]


async def jobs_in(app: TrayApp, state: JobState) -> list[Any]:
    return [j for j in await app.engine.jobs() if j.state is state]


async def test_idle_paused_uploading_and_back(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await until(lambda: app.bridge.snapshot is not None, "the first snapshot")
        assert look(app) is TrayLook.IDLE
        assert "Up to date" in app.tray.icon.toolTip()

        # Pause from the menu really pauses the engine, and is remembered.
        app.tray.pause_action.trigger()
        await until(lambda: app.engine.paused, "the engine paused")
        await until(lambda: look(app) is TrayLook.PAUSED, "the paused icon")
        assert await app.engine.store.meta("paused") == "1"
        assert "Resume all uploads" in menu_texts(app)

        # A file dropped while paused waits.
        drop(watch_dir, "A001.mov", 3 * 1024 * 1024)
        await until(
            lambda: app.bridge.snapshot and app.bridge.snapshot.counts.get("pending"), "queued while paused"
        )
        assert not sandbox.files()

        # Slow the upload down to watch the ring, then resume from the menu.
        await app.engine.update_settings({"bandwidth_limit": 1_000_000})
        app.tray.pause_action.trigger()  # now "Resume all uploads"
        await until(lambda: not app.engine.paused, "the engine resumed")
        await until(lambda: look(app) is TrayLook.UPLOADING, "the uploading icon")
        await until(lambda: app.tray.shown_key and app.tray.shown_key[1] not in (None, 0), "the ring moving")
        tip = await until(
            lambda: "/s" in app.tray.icon.toolTip() and app.tray.icon.toolTip(), "the speed shown"
        )
        assert "1 file · " in tip and " % · " in tip and "left" in tip, tip
        await app.engine.update_settings({"bandwidth_limit": 0})
        await until(lambda: look(app) is TrayLook.IDLE, "idle again once delivered")
        assert [f["name"] for f in sandbox.files()] == ["A001.mov"]


async def test_icon_is_set_only_when_its_look_changes(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        snapshot = await until(lambda: app.bridge.snapshot, "the first snapshot")
        before = app.tray.icon_changes
        for _ in range(20):
            app.bridge.set_snapshot(snapshot)  # the same truth again and again
        assert app.tray.icon_changes == before


async def test_failed_file_shows_attention_and_retry_failed_retries(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await until(lambda: app.bridge.snapshot is not None, "the first snapshot")
        # Frame.io refuses this file's upload every time: after its few tries it fails.
        sandbox.control(
            "/_sandbox/faults", {"api": {"rate": 1.0, "kinds": ["400"], "only": "files.create_local_upload"}}
        )
        app.engine.scheduler.retry_base = 0.05
        drop(watch_dir, "refused.mov")
        await until(lambda: look(app) is TrayLook.ATTENTION, "the attention icon", timeout=60)
        assert "1 file failed" in app.tray.icon.toolTip()
        texts = menu_texts(app)
        assert "Retry failed (1)" in texts and app.tray.retry_action.isEnabled()

        sandbox.control("/_sandbox/faults", {"api": {"rate": 0.0, "only": ""}})
        app.tray.retry_action.trigger()
        await until(lambda: look(app) is TrayLook.IDLE, "idle once the retry delivered", timeout=60)
        assert [f["name"] for f in sandbox.files()] == ["refused.mov"]
        assert not await jobs_in(app, JobState.FAILED)


async def test_frameio_unreachable_shows_offline_not_attention(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await until(lambda: app.bridge.snapshot is not None, "the first snapshot")
        app.engine.scheduler.retry_base = 0.05
        sandbox.control("/_sandbox/faults", {"api": {"rate": 1.0, "kinds": ["reset"]}})
        drop(watch_dir, "while-offline.mov")
        await until(lambda: look(app) is TrayLook.OFFLINE, "the offline icon", timeout=60)
        assert "cannot be reached" in app.tray.icon.toolTip()
        sandbox.control("/_sandbox/faults", {"api": {"rate": 0.0}})
        await until(lambda: look(app) is TrayLook.IDLE, "back online and delivered", timeout=90)


async def test_sign_out_from_the_menu_shows_attention_and_offers_sign_in(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await until(lambda: app.bridge.snapshot is not None, "the first snapshot")
        texts = menu_texts(app)
        assert any(t.startswith("Sign out (") for t in texts), texts
        app.tray.account_action.trigger()
        await until(
            lambda: app.bridge.snapshot and app.bridge.snapshot.auth is AuthState.SIGNED_OUT, "signed out"
        )
        await until(lambda: look(app) is TrayLook.ATTENTION, "the attention icon")
        assert "Sign in with Adobe…" in menu_texts(app)
        assert "Signed out" in app.tray.icon.toolTip()

        # Sign in from the menu: the Adobe popup (a real QtWebEngine page of the sandbox's IMS)
        # catches the redirect, and the icon is back to idle.
        app.tray.account_action.trigger()
        await until(
            lambda: app.bridge.snapshot and app.bridge.snapshot.auth is AuthState.SIGNED_IN, "signed in", 60
        )
        await until(lambda: look(app) is TrayLook.IDLE, "idle again")
        assert any(t.startswith("Sign out (") for t in menu_texts(app))


async def test_open_window_settings_and_project_from_the_menu(
    sandbox: Any, watch_dir: Path, tray_env: None, monkeypatch: Any
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await until(lambda: app.bridge.snapshot is not None, "the first snapshot")
        app.tray.window_action.trigger()
        assert app.window.isVisible()
        app.tray.settings_action.trigger()
        assert app.settings_dialog is not None and app.settings_dialog.isVisible()
        opened: list[str] = []
        monkeypatch.setattr("app.gui.tray_app.open_url", opened.append)  # no browser here
        menu_texts(app)
        (project,) = app.tray.project_menu.actions()
        assert project.text() == "Demo Project"
        project.trigger()
        await until(lambda: opened, "the project's page opened")
        assert "/project/" in opened[0]


async def test_quit_from_the_menu_ends_the_session(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.tray.quit_action.trigger()
        assert app.finished.is_set()


async def test_no_tray_opens_the_window_instead(
    sandbox: Any, watch_dir: Path, tray_env: None, monkeypatch: Any
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        assert not app.window.isVisible()
        app._tray_timer.start(0)
        await until(lambda: app.window.isVisible(), "the window shown instead of a tray icon")
        assert app.tray_missing and not app.window.hide_on_close
        app.window.close()  # closing it must not make PostFlow unreachable
        assert app.window.isVisible()
