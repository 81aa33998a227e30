"""Which names are media worth uploading. Pure: tested with tables."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FileFilter:
    extensions: tuple[str, ...]  # lower-case with dot; empty: everything
    ignore_patterns: tuple[str, ...]

    @classmethod
    def of(cls, extensions: Sequence[str], ignore: Sequence[str]) -> FileFilter:
        return cls(tuple(e.lower() for e in extensions), tuple(ignore))

    def ignores_dir(self, name: str) -> bool:
        return name.startswith(".") or any(fnmatch.fnmatchcase(name, p) for p in self.ignore_patterns)

    def accepts(self, name: str) -> bool:
        return self.why_skipped(name) is None

    def why_skipped(self, name: str) -> str | None:
        """None when the name is uploaded; else the reason, for the DEBUG log."""
        pattern = next((p for p in self.ignore_patterns if fnmatch.fnmatchcase(name, p)), None)
        if pattern is not None:
            return f"matches the ignore pattern {pattern!r}"
        if not self.extensions:
            return None
        dot = name.rfind(".")
        if dot > 0 and name[dot:].lower() in self.extensions:
            return None
        return "its extension is not in watch.extensions"
