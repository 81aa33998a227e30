"""Save a PNG of the whole X screen ($DISPLAY): the real-desktop test's screenshots."""

from __future__ import annotations

import os
import sys

os.environ["QT_QPA_PLATFORM"] = "xcb"
from PySide6.QtGui import QGuiApplication  # noqa: E402

app = QGuiApplication(sys.argv[:1])
screen = app.primaryScreen()
assert screen is not None
if not screen.grabWindow(0).save(sys.argv[1], "PNG"):
    raise SystemExit(f"could not write {sys.argv[1]}")
