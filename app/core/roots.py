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
from collections.abc import Iterable
from pathlib import Path

from app.core.errors import ConfigError
from app.core.jobs import WatchRoot


def resolved(path: str) -> str:
    """Absolute, symlinks followed where they exist, ``~`` expanded, no trailing separator."""
    return os.path.realpath(os.path.expanduser(path))


def root_id_for(resolved_path: str) -> str:
    return hashlib.sha1(resolved_path.encode()).hexdigest()[:12]


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
    """Raise ConfigError naming the first two roots that watch the same files."""
    seen: list[tuple[str, WatchRoot]] = []
    for root in roots:
        real = resolved(root.path)
        for other_real, other in seen:
            if real == other_real:
                raise ConfigError(
                    f"The folder {real} is watched twice (written two ways, or through a link); "
                    "watch it once (every file would be uploaded twice)."
                )
            if _inside(real, other_real) or _inside(other_real, real):
                inner, outer = (root, other) if _inside(real, other_real) else (other, root)
                raise ConfigError(
                    f"The watch folder {inner.path} is inside the watch folder {outer.path}; "
                    "remove one of them (its files would be uploaded twice)."
                )
        seen.append((real, root))
