"""A watch root's identity, and the rule that no two roots may watch the same files.

The identity is the folder's resolved path (absolute, symlinks followed, no trailing slash), so
"renders", "./renders/", "/Volumes/FS/renders" and a symlink to it are one root with one
history, and rewriting how the destination is spelled (project name or id) never makes
PostFlow upload everything again. Two roots where one contains the other would upload the
same file twice, so they are refused.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from app.core.errors import ConfigError
from app.core.jobs import WatchRoot

CASE_INSENSITIVE = sys.platform in ("darwin", "win32")  # the default file systems there


def resolved(path: str) -> str:
    """Absolute, symlinks followed where they exist, ``~`` expanded, no trailing separator,
    and on macOS spelled as the file system spells it (``renders`` → ``Renders``).
    Blocking (it asks the file system): never on the event loop."""
    real = os.path.realpath(os.path.expanduser(path))
    if sys.platform == "darwin":
        real = _macos_spelling(real)
    return real


def _macos_spelling(path: str) -> str:
    """F_GETPATH gives the path as stored, with its real letter case."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return path  # not there (yet): compared case-insensitively anyway
    try:
        spelled = fcntl.fcntl(fd, getattr(fcntl, "F_GETPATH", 50), b"\0" * 1024)
        return os.fsdecode(spelled.rstrip(b"\0")) or path
    except OSError:
        return path
    finally:
        os.close(fd)


def _key(path: str) -> str:
    """What two spellings of one folder have in common on this platform."""
    return path.casefold() if CASE_INSENSITIVE else path


def root_id_for(resolved_path: str) -> str:
    return hashlib.sha1(_key(resolved_path).encode()).hexdigest()[:12]


def legacy_root_id(path: str, project: str, folder: str) -> str:
    """The id PostFlow 0.1 gave a root (path as written + destination): its jobs are adopted."""
    return hashlib.sha1(f"{Path(path).expanduser()}|{project}|{folder}".encode()).hexdigest()[:12]


def make_root(
    path: str, project: str, folder: str = "", workspace: str = "", account_id: str = ""
) -> WatchRoot:
    """A watch root whose id depends on the folder alone."""
    real = resolved(path)
    legacy = tuple(dict.fromkeys(legacy_root_id(p, project, folder) for p in (path, real)))
    folder = folder.strip().strip("/")
    return WatchRoot(root_id_for(real), real, project.strip(), folder, workspace.strip(), account_id.strip(),
                     legacy)  # fmt: skip


def _inside(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_overlaps(roots: Iterable[WatchRoot]) -> None:
    """Raise ConfigError naming the first two roots that watch the same files. Compares the
    resolved paths the roots carry (no disk access: safe on the event loop)."""
    seen: list[tuple[str, WatchRoot]] = []
    for root in roots:
        key = _key(root.path)
        for other_key, other in seen:
            if key == other_key:
                raise ConfigError(
                    f"The folder {root.path} is watched twice (written two ways, or through a link); "
                    "watch it once (every file would be uploaded twice)."
                )
            if _inside(key, other_key) or _inside(other_key, key):
                inner, outer = (root, other) if _inside(key, other_key) else (other, root)
                raise ConfigError(
                    f"The watch folder {inner.path} is inside the watch folder {outer.path}; "
                    "remove one of them (its files would be uploaded twice)."
                )
        seen.append((key, root))


def check_folder(path: str | Path, label: str = "") -> None:
    """Blocking (asks the disk): a folder about to be watched exists and can be read, else one
    plain line saying which way it cannot (``label`` names where the path came from)."""
    folder = Path(path)
    try:
        full = folder.expanduser()
    except RuntimeError:  # ~someone with no such user
        raise ConfigError(f"{label}{folder}: no such user's home folder") from None
    shown = str(folder) if full.is_absolute() else f"{folder} ({Path.cwd() / full})"
    try:
        exists, is_dir = full.exists(), full.is_dir()
    except OSError as exc:  # permission denied on a parent, a name too long for the file system
        raise ConfigError(f"{label}{shown}: cannot be checked: {exc.strerror or exc}") from None
    if not exists:
        raise ConfigError(f"{label}{shown}: no such folder")
    if not is_dir:
        raise ConfigError(f"{label}{shown}: is a file, not a folder")
    if not os.access(full, os.R_OK | os.X_OK):
        raise ConfigError(f"{label}{shown}: PostFlow is not allowed to read this folder")
