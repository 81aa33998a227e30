"""The window's log tab: PostFlow's own log lines, live, capped so a long week stays light."""

from __future__ import annotations

import contextlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 5000


class _Relay(QObject):
    line = Signal(str)


class QtLogHandler(logging.Handler):
    """Emits formatted records as a Qt signal. Records logged on other threads are queued to
    the GUI thread by Qt's cross-thread signal delivery."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.relay = _Relay()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the relay was deleted at quit
            self.relay.line.emit(self.format(record))


class LogView(QPlainTextEdit):
    def __init__(self, handler: QtLogHandler, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFont("monospace"))
        self.setAccessibleName("PostFlow log")
        handler.relay.line.connect(self.appendPlainText)
