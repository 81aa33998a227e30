"""Is a watched folder really there, or only its empty mount point?

When a network volume (LucidLink, SMB, FUSE) goes away it can leave behind an empty, readable
folder at the same path: a stale ``/Volumes/Name`` on macOS, a bare mount point on Linux. Read
naively, that looks like "every file was deleted". The rule:

- a root that cannot be read, or is not a folder, is *unavailable*;
- a root that is now on another device (file system) than when it last had files, and is
  empty, is *unavailable*: that is the mount point without its volume;
- a root that had entries and is suddenly completely empty while files of it are waiting to
  be uploaded is *unavailable* ("looks empty"): a volume that dropped. With nothing waiting,
  an emptied folder is just empty (the team cleared it out after delivery);
- otherwise it is available, and its device and "has entries" are remembered (persisted by
  the engine, so a restart on an unmounted volume is caught too).

While a root is unavailable its jobs wait and nothing is cancelled or forgotten.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RootIdentity:
    device: int
    had_entries: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RootIdentity | None:
        try:
            doc = json.loads(text)
            return cls(int(doc["device"]), bool(doc["had_entries"]))
        except (ValueError, KeyError, TypeError):
            return None


def judge(
    path: str, known: RootIdentity | None, work_waiting: bool = True
) -> tuple[str | None, RootIdentity | None]:
    """Blocking (run it in a thread). (problem or None, identity to remember or None)."""
    try:
        st = os.stat(path)
        if not stat.S_ISDIR(st.st_mode):
            return f"{path} is not a folder.", None
        with os.scandir(path) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}", None
    if known is not None and empty:
        if st.st_dev != known.device:
            return (
                f"{path} is empty and on a different disk than before: its volume looks unmounted. "
                "Uploads wait until it is back; nothing is cancelled."
            ), None
        if known.had_entries and work_waiting:
            return (
                f"{path} suddenly looks empty: its volume may have been unmounted. Uploads wait "
                "until its files are back; nothing is cancelled."
            ), None
    return None, RootIdentity(st.st_dev, not empty)


class RootMonitor:
    """What is known of each root, shared by the scanner and the uploader (both in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, RootIdentity] = {}
        self._problems: dict[str, str] = {}
        self._changed: set[str] = set()
        self._waiting: set[str] | None = None  # roots with queued work; None: not known yet

    def expect_files(self, root_ids: set[str]) -> None:
        """Roots whose files are waiting to be uploaded (an empty one of those is suspect)."""
        with self._lock:
            self._waiting = set(root_ids)

    def load(self, root_id: str, identity: RootIdentity | None) -> None:
        with self._lock:
            if identity is not None:
                self._known[root_id] = identity

    def check(self, root_id: str, path: str) -> str | None:
        """Blocking: judge the root now, remember what it says; returns the problem, if any."""
        with self._lock:
            known = self._known.get(root_id)
            waiting = self._waiting is None or root_id in self._waiting
        problem, identity = judge(path, known, waiting)
        with self._lock:
            if problem is None and identity is not None:
                if self._known.get(root_id) != identity:
                    self._known[root_id] = identity
                    self._changed.add(root_id)
                self._problems.pop(root_id, None)
            elif problem is not None:
                self._problems[root_id] = problem
            return problem

    def problem(self, root_id: str) -> str | None:
        with self._lock:
            return self._problems.get(root_id)

    def accept_empty(self, root_id: str) -> None:
        """The user emptied the folder (or moved its volume) on purpose: start afresh."""
        self.forget(root_id)

    def forget(self, root_id: str) -> None:
        with self._lock:
            self._known.pop(root_id, None)
            self._problems.pop(root_id, None)
            self._changed.add(root_id)

    def take_changes(self) -> dict[str, RootIdentity | None]:
        """Identities to persist since the last call."""
        with self._lock:
            changed = {root_id: self._known.get(root_id) for root_id in self._changed}
            self._changed.clear()
            return changed
