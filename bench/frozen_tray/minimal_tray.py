"""The reference for PostFlow's frozen start-up: the smallest PySide6 tray app that shows an
SVG icon in the tray (as PostFlow's are) and stops cleanly on SIGTERM. Frozen with the same
lean filter as PostFlow (minimal_tray.spec), started and timed by bench/frozen_bundle.py."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon


def main() -> int:
    app = QApplication(sys.argv)
    app.setApplicationName("MinimalTray")
    app.setQuitOnLastWindowClosed(False)
    here = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2]))
    tray = QSystemTrayIcon(QIcon(str(here / "resources" / "icons" / "tray-idle-light.svg")))
    menu = QMenu()
    menu.addAction("Quit", app.quit)
    tray.setContextMenu(menu)
    tray.setToolTip("MinimalTray")
    tray.show()
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    wake = QTimer()
    wake.start(200)  # lets Python see the signal while Qt waits
    wake.timeout.connect(lambda: None)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
