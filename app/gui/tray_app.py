"""The tray app: one QApplication, the engine on its qasync loop, the tray, the windows.

``run_tray`` is what ``postflow`` starts. It hands a second launch over to the first (which
brings its window forward), runs ``running_app`` (the same composition root as headless mode)
on the Qt loop, and on Quit, Ctrl+C or SIGTERM leaves that context, so the engine records
what was in flight before the process ends. "Try the sandbox" from the first-run window
restarts the session against the built-in sandbox, in the same process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox, QSystemTrayIcon

from app.composition import Session, running_app
from app.core.events import EventBus
from app.core.jobs import WatchRoot
from app.core.settings import Settings
from app.gui.desktop_open import open_url
from app.gui.engine_bridge import EngineBridge
from app.gui.first_run import FirstRunDialog
from app.gui.log_view import QtLogHandler
from app.gui.notice_policy import ClickTarget, Notice
from app.gui.notifier import Notifier
from app.gui.queue_window import QueueWindow
from app.gui.settings_dialog import SettingsDialog
from app.gui.single_instance import InstanceServer
from app.gui.tray import Tray, TrayActions
from app.gui.tray_icons import TrayIcons, app_icon

log = logging.getLogger(__name__)


def tray_wait_seconds() -> float:
    """How long to wait for a tray host before opening the window instead (plain GNOME has
    none). ``POSTFLOW_TRAY_WAIT`` overrides it (tests, slow session start-ups)."""
    try:
        return max(0.0, float(os.environ.get("POSTFLOW_TRAY_WAIT", "5")))
    except ValueError:
        return 5.0


class TrayApp(QObject):
    """One running session's user interface. Built per session, closed before it ends."""

    def __init__(self, session: Session, log_handler: QtLogHandler, *, first_run: bool,
                 icon: QSystemTrayIcon | None = None) -> None:  # fmt: skip
        super().__init__()
        self.session = session
        self.engine = session.engine
        self.finished = asyncio.Event()
        self.restart_in_sandbox = False
        self.bridge = EngineBridge(session.bus, self)
        self.bridge.failed.connect(self.show_error)
        self.window = QueueWindow(self.engine, self.bridge, log_handler, sign_in=self.sign_in,
                                  open_settings=self.open_settings, open_link=self._open_link)  # fmt: skip
        self.settings_dialog: SettingsDialog | None = None
        self.first_run: FirstRunDialog | None = None
        actions = TrayActions(
            pause_all=lambda: self.bridge.run(self.engine.pause_all),
            resume_all=lambda: self.bridge.run(self.engine.resume_all),
            retry_failed=lambda: self.bridge.run(self.engine.retry_failed),
            open_window=self.open_window, open_project=self.open_project, open_settings=self.open_settings,
            sign_in=self.sign_in, sign_out=self.sign_out, quit=self.quit, user_name=self._user_name,
            open_download=self._open_download,
        )  # fmt: skip
        self.tray = Tray(self.bridge, actions, TrayIcons(), icon=icon)
        self.notifier = Notifier(
            self.bridge, self.tray.icon, self.notice_clicked, icon_png=self._icon_png(),
            enabled=lambda: self.engine.settings.notifications,
        )  # fmt: skip
        self.notifier.acknowledge_update = lambda v: self.bridge.run(
            lambda: self.engine.updates.acknowledge(v)
        )
        self.tray_missing = False
        self.tray.show()
        self._tray_timer = QTimer(self)
        self._tray_timer.setSingleShot(True)
        self._tray_timer.timeout.connect(self._check_tray)
        self._tray_timer.start(int(tray_wait_seconds() * 1000))
        self.bridge.snapshot_changed.connect(lambda _s: self._tray_appeared())
        self.bridge.run(self._first_snapshot)
        if first_run:
            self.open_first_run()

    async def _first_snapshot(self) -> None:
        self.bridge.set_snapshot(await self.engine.snapshot())
        self.bridge.run(self.window.model.reload)

    # ---- no tray ----
    def _check_tray(self) -> None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            log.warning("no system tray found: showing the window instead (PostFlow keeps running)")
            self.tray_missing = True
            self.window.hide_on_close = False
            self.open_window()

    def _tray_appeared(self) -> None:
        if self.tray_missing and QSystemTrayIcon.isSystemTrayAvailable():
            log.info("a system tray appeared: PostFlow's icon is in it")
            self.tray_missing = False
            self.window.hide_on_close = True

    # ---- actions ----
    def open_window(self) -> None:
        self.window.bring_forward()

    def open_settings(self) -> None:
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.engine, self.bridge, discord=self.session.discord)
        self.settings_dialog.load()
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()

    def open_first_run(self) -> None:
        self.first_run = FirstRunDialog(
            self.engine, self.bridge, demo=self.session.demo, sign_in=self.sign_in
        )
        self.first_run.sandbox_requested.connect(self._restart_in_sandbox)
        self.first_run.show()

    def open_project(self, root_id: str) -> None:
        self.bridge.run(lambda: self.engine.project_link(root_id), done=self._open_link)

    def _open_download(self, url: str) -> None:
        """A release page is on the web, demo mode or not: PostFlow never installs by itself."""
        try:
            open_url(url)
        except Exception as exc:  # noqa: BLE001 - told, never raised into Qt
            self.show_error("Cannot open the page", str(exc))

    def _open_link(self, url: str | None) -> None:
        if url and self.session.demo:
            self.show_error("Demo mode", "The built-in sandbox has no Frame.io web app to open: "
                            "the queue window shows what was uploaded.")  # fmt: skip
            self.open_window()
            return
        if url:
            try:
                open_url(url)
            except Exception as exc:  # noqa: BLE001 - told, never raised into Qt
                self.show_error("Cannot open the page", str(exc))

    def sign_in(self) -> None:
        from app.gui.signin import sign_in_with_popup

        self.bridge.run(lambda: sign_in_with_popup(self.session.auth))

    def sign_out(self) -> None:
        self.notifier.expect_signed_out()  # asked for: no "PostFlow is signed out" notification
        self.bridge.run(self.session.auth.sign_out)

    def _user_name(self) -> str | None:
        tokens = self.session.connections.provider.tokens
        return (tokens.user_name or tokens.user_email) if tokens else None

    def notice_clicked(self, notice: Notice) -> None:
        log.info("notification clicked: %s", notice.title)
        if notice.target is ClickTarget.LINK and notice.link:
            self._open_link(notice.link)
        elif notice.target is ClickTarget.DOWNLOAD and notice.link:
            self._open_download(notice.link)
        elif notice.target is ClickTarget.SIGN_IN:
            self.sign_in()
        else:
            self.open_window()

    def show_error(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        if self.window.isVisible() or self.tray_missing:
            box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                              self.window)  # fmt: skip
            box.setModal(False)
            box.show()
        else:
            self.tray.icon.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 8000)

    def _restart_in_sandbox(self) -> None:
        self.restart_in_sandbox = True
        self.finished.set()

    def quit(self) -> None:
        self.finished.set()

    def _icon_png(self) -> Path | None:
        """Notification servers want a bitmap: the app icon rendered once into the data folder."""
        path = self.session.settings.paths.data_dir / "postflow-icon.png"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                app_icon().pixmap(256, 256).save(str(path), "PNG")
            return path
        except OSError:
            return None

    async def close(self) -> None:
        self.notifier.close()
        self._tray_timer.stop()
        await self.bridge.drain()
        self.bridge.close()
        self.tray.hide()
        for widget in (self.window, self.settings_dialog, self.first_run):
            if widget is not None:
                widget.hide()
                widget.deleteLater()


async def run_sessions(settings: Settings, roots: Sequence[WatchRoot], log_handler: QtLogHandler,
                       server: InstanceServer, stopping: asyncio.Event,
                       icon: QSystemTrayIcon | None = None) -> int:  # fmt: skip
    """Run sessions until Quit; "Try the sandbox" ends one and starts the next in the sandbox.
    ``icon``: the tray icon shown while starting, taken over by the first session's tray."""
    first_run = not roots and not settings.watch_roots
    while True:
        async with running_app(settings, roots, bus=EventBus()) as session:
            app = TrayApp(session, log_handler, first_run=first_run, icon=icon)
            icon = None
            server.show_requested.connect(app.open_window)
            waiters = [asyncio.ensure_future(app.finished.wait()), asyncio.ensure_future(stopping.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            server.show_requested.disconnect(app.open_window)
            log.info("PostFlow is stopping: recording uploads in flight")
            await app.close()
        if not app.restart_in_sandbox or stopping.is_set():
            return 0
        settings = replace(settings, sandbox=True, sandbox_url="", client_id="")
        first_run = True
