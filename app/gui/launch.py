"""``postflow``: start the tray app, its icon first.

An editor who double-clicks PostFlow looks at the menu bar: the icon must be there at once,
not after the engine, the sandbox, QtWebEngine and the windows have loaded (about half a
second). So this module imports only Qt and the icons, shows the tray icon ("Starting…"),
hands a second launch over to the first, and only then imports the rest of the app
(``tray_app``), whose first session takes the icon over. SIGINT and SIGTERM end it cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSocketNotifier
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from app.core.errors import ConfigError, PostFlowError
from app.core.paths import resolve_paths
from app.gui.fatal import show_fatal
from app.gui.macos_dock import hide_dock_icon
from app.gui.single_instance import InstanceServer, ask_running_instance
from app.gui.tray_icons import TrayIcons, app_icon
from app.gui.tray_look import TrayLook
from app.gui.webengine_setup import prepare_webengine

if TYPE_CHECKING:  # the types only: their modules load after the icon is up
    from app.core.jobs import WatchRoot
    from app.core.settings import Settings


def run_tray(load: Callable[[], Settings], roots: Sequence[WatchRoot] = ()) -> int:
    """``postflow``: the tray app until Quit. Returns the process exit code. ``load`` reads the
    settings (and sets up the log), once the icon is up: a bad config file is said in a dialog."""
    # A SIGTERM or Ctrl+C while the rest loads (a log-out right after log-in) is kept for the
    # loop, which then stops the session cleanly, instead of killing the process half-started.
    asked_to_stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: asked_to_stop.append(number))
    prepare_webengine(load_now=False)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("PostFlow")
    app.setApplicationDisplayName("PostFlow")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    hide_dock_icon()  # macOS: menu bar only
    data_dir = resolve_paths().data_dir  # where the settings say it is, too (load_settings)
    if ask_running_instance(data_dir):
        print("PostFlow is already running: its window was brought forward.", file=sys.stderr)
        return 0
    server = InstanceServer(data_dir)
    starting = StartingIcon()
    app.processEvents()  # the tray host sees the icon now, while the rest loads
    try:
        settings = load()
    except ConfigError as exc:
        starting.icon.hide()
        server.close()
        show_fatal(exc.title, f"{exc.message}\n\nFix the file, then start PostFlow again.")
        raise

    import asyncio

    import qasync

    from app.gui.log_view import QtLogHandler
    from app.gui.tray_app import run_sessions

    handler = QtLogHandler()
    logging.getLogger().addHandler(handler)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    stopping = asyncio.Event()
    starting.quit.triggered.connect(stopping.set)
    waker = _SignalWaker(lambda: loop.call_soon_threadsafe(stopping.set))
    if asked_to_stop:
        stopping.set()
    try:
        with loop:
            sessions = run_sessions(settings, roots, handler, server, stopping, starting.icon)
            return int(loop.run_until_complete(sessions))
    except PostFlowError as exc:
        show_fatal(exc.title, exc.message)  # started from a double-click, nobody reads stderr
        raise
    finally:
        waker.close()
        server.close()
        logging.getLogger().removeHandler(handler)


class StartingIcon:
    """The idle icon, "Starting…" in its tooltip and menu, and a Quit that works already. The
    first session's tray takes the icon over (and its own menu); this object keeps the
    start-up menu alive until then."""

    def __init__(self) -> None:
        self.icon = QSystemTrayIcon(TrayIcons().icon(TrayLook.IDLE))
        self.icon.setToolTip("PostFlow\nStarting…")
        self.menu = QMenu()
        self.menu.addAction("Starting…").setEnabled(False)
        self.quit: QAction = self.menu.addAction("Quit PostFlow")
        self.icon.setContextMenu(self.menu)
        self.icon.show()


class _SignalWaker(QObject):
    """SIGINT/SIGTERM end the app gracefully. Python runs signal handlers only between
    bytecodes; Qt's C++ loop would hold them back, so the wakeup fd wakes a socket notifier."""

    def __init__(self, on_signal: object) -> None:
        super().__init__()
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        signal.set_wakeup_fd(self._write.fileno())
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: on_signal())  # type: ignore[operator]

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            self._read.recv(64)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()
