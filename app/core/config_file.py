"""Saving run-time changes back into the user's config.toml without losing their edits.

The user may have written the file by hand, comments included: ``tomlkit`` keeps everything it
does not change. A file that is not valid TOML is never overwritten (the user's text would be
lost); writes are atomic (temporary file, fsync, rename), keep the file's permissions, and are
serialised within the process. Blocking: the engine calls these through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from app.core.errors import ConfigError
from app.core.jobs import WatchRoot
from app.core.settings import SETTINGS

_LOCK = threading.Lock()
DEFAULT_NAMING = WatchRoot.__dataclass_fields__["naming"].default
_KEYS = frozenset(s.key for s in SETTINGS)


def save_roots(path: Path, roots: Sequence[WatchRoot]) -> None:
    """Replace the ``[[watch.roots]]`` tables with these roots; everything else is kept."""

    def change(doc: TOMLDocument) -> None:
        watch = doc.get("watch")
        if not roots:
            if isinstance(watch, Mapping) and "roots" in watch:
                del watch["roots"]  # type: ignore[attr-defined]
                if not watch:
                    del doc["watch"]
            return
        if watch is None:
            watch = tomlkit.table()
            doc["watch"] = watch
        tables = tomlkit.aot()
        for root in roots:
            entry = tomlkit.table()
            entry["path"] = root.path
            entry["project"] = root.project
            for key in ("folder", "workspace", "account_id", "done_marker", "comment", "route_by"):
                value = getattr(root, key)
                if value:
                    entry[key] = value
            if root.naming != DEFAULT_NAMING:
                entry["naming"] = list(root.naming)
            if not root.stack_versions:
                entry["stack_versions"] = False
            if root.upload_mode != "push":
                entry["upload_mode"] = root.upload_mode
            if root.priority:
                entry["priority"] = root.priority
            tables.append(entry)
        watch["roots"] = tables

    _rewrite(path, change)


def save_values(path: Path, values: Mapping[str, Any]) -> None:
    """Set dotted setting keys (``upload.max_concurrent_files``), creating tables as needed."""
    unknown = set(values) - _KEYS
    if unknown:
        raise ValueError(f"not setting keys: {sorted(unknown)}")

    def change(doc: TOMLDocument) -> None:
        for dotted, value in values.items():
            *tables, leaf = dotted.split(".")
            node: Any = doc
            for name in tables:
                if name not in node:
                    node[name] = tomlkit.table()
                node = node[name]
            node[leaf] = list(value) if isinstance(value, tuple) else value

    _rewrite(path, change)


def _rewrite(path: Path, change: Callable[[TOMLDocument], None]) -> None:
    with _LOCK:
        doc = _read(path)
        change(doc)
        _write_atomically(path, tomlkit.dumps(doc))


def _read(path: Path) -> TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not UTF-8 text: PostFlow left it as it is and did not save your change. "
            "Fix or remove the file, then try again."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path} cannot be read: {exc.strerror or exc}; your change was not saved."
        ) from None
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc}): PostFlow left it as it is and did not save your change. "
            "Fix the file, then try again."
        ) from None


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600  # it may name the account
        handle, temporary = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"{path} cannot be written: {exc.strerror or exc}; your change was not saved."
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigError(
            f"{path} cannot be written: {exc.strerror or exc}; your change was not saved."
        ) from None


def _unsaved(path: Path, what: str, exc: OSError) -> ConfigError:
    return ConfigError(f"{path} {what}: {exc.strerror or exc}; your change was not saved.")
