"""What QtWebEngine needs before the QApplication exists."""

from __future__ import annotations

import os
import sys


def prepare_webengine(*, load_now: bool = True) -> None:
    """Call before creating the QApplication (Qt refuses QtWebEngine otherwise). ``load_now``
    False: only what must precede the QApplication (the shared OpenGL contexts); the module,
    a 200 MB library, loads when the tray app's windows are imported, after the icon is up."""
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
    if load_now:
        import PySide6.QtWebEngineWidgets  # noqa: F401
