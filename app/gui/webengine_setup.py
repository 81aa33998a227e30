"""What QtWebEngine needs before the QApplication exists."""

from __future__ import annotations

import os
import sys


def prepare_webengine() -> None:
    """Call before creating the QApplication (Qt refuses QtWebEngine otherwise)."""
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if (
        sys.platform.startswith("linux")
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and "--no-sandbox" not in flags
    ):
        # Chromium refuses to run its sandbox as root (containers, CI).
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
    from PySide6.QtCore import QCoreApplication, Qt

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    import PySide6.QtWebEngineWidgets  # noqa: F401  (must be imported before the app exists)
