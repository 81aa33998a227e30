"""One engine per state folder: two engines on one queue would upload everything twice."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from app.core.errors import PostFlowError


class AlreadyRunning(PostFlowError):
    title = "PostFlow is already running"


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise AlreadyRunning(
                f"Another PostFlow is already uploading from {self.path.parent}. "
                "Quit it first, or give this one its own POSTFLOW_DATA_DIR."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None
