"""Show a file in Finder / Explorer / the file manager, and open web pages.

Started detached, never waited on: a file manager slow to start must not freeze the app.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from app.core.errors import PostFlowError

log = logging.getLogger(__name__)


def reveal_target(path: str) -> tuple[Path, Path]:
    """Blocking (run it in a thread: the volume may stall): what to select (the file, or its
    folder when the file is gone) and the folder holding it; ``PostFlowError`` when neither
    is there."""
    target = Path(path)
    if not target.exists():
        if not target.parent.exists():
            raise PostFlowError(
                f"{target.parent} cannot be found: is the filespace mounted?", title="Folder not found"
            )
        target = target.parent
    return target, target if target.is_dir() else target.parent


def reveal(found: tuple[Path, Path]) -> None:
    """Select what ``reveal_target`` found in the platform's file manager (no disk access)."""
    target, folder = found
    if sys.platform == "darwin":
        _detached(["open", "-R", str(target)])
    elif sys.platform == "win32":
        _detached(["explorer", f"/select,{target}"])
    else:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            raise PostFlowError(f"No file manager opened {folder}.", title="Cannot show the file")


def open_url(url: str) -> None:
    if not url:
        raise PostFlowError("This file has no Frame.io page yet.", title="Not on Frame.io yet")
    if not QDesktopServices.openUrl(QUrl(url)):
        raise PostFlowError(f"No web browser opened {url}.", title="Cannot open the page")


def _detached(command: list[str]) -> None:
    try:
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=os.name != "nt")  # fmt: skip
    except OSError as exc:
        raise PostFlowError(f"{command[0]} could not start: {exc}", title="Cannot show the file") from None
