"""Say why PostFlow cannot start in a window, not only on stderr: a double-clicked app has no
terminal, and a silent exit reads as "it does not work"."""

from __future__ import annotations

import sys


def show_fatal(title: str, message: str) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    if app.platformName() in ("offscreen", "minimal"):
        return  # nobody to see a window: stderr says it
    QMessageBox.critical(None, f"PostFlow: {title}", message)
