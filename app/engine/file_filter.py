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
        if any(fnmatch.fnmatchcase(name, p) for p in self.ignore_patterns):
            return False
        if not self.extensions:
            return True
        dot = name.rfind(".")
        return dot > 0 and name[dot:].lower() in self.extensions
