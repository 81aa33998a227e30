"""Which names are media worth uploading. Pure: tested with tables."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileFilter:
    extensions: tuple[str, ...]  # lower-case with dot; empty: everything
    ignore_patterns: tuple[str, ...]
    # all patterns as one compiled expression: a 100,000-file scan asks it 100,000 times
    _any: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.ignore_patterns)
        object.__setattr__(self, "_any", re.compile(joined) if joined else None)

    @classmethod
    def of(cls, extensions: Sequence[str], ignore: Sequence[str]) -> FileFilter:
        return cls(tuple(e.lower() for e in extensions), tuple(ignore))

    def ignores_dir(self, name: str) -> bool:
        return name.startswith(".") or (self._any is not None and self._any.match(name) is not None)

    def accepts(self, name: str) -> bool:
        return self.why_skipped(name) is None

    def why_skipped(self, name: str) -> str | None:
        """None when the name is uploaded; else the reason, for the DEBUG log."""
        if self._any is not None and self._any.match(name) is not None:
            pattern = next(p for p in self.ignore_patterns if fnmatch.fnmatchcase(name, p))
            return f"matches the ignore pattern {pattern!r}"
        if not self.extensions:
            return None
        dot = name.rfind(".")
        if dot > 0 and name[dot:].lower() in self.extensions:
            return None
        return "its extension is not in watch.extensions"
