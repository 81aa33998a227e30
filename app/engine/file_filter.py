"""Which names are media worth uploading. Pure: tested with tables."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_WILD = frozenset("*?[")


@dataclass(frozen=True)
class _Matcher:
    """The ignore patterns sorted by shape, so the common ones cost one C call for any number
    of patterns (a 100,000-file scan asks 100,000 times): ``*.tmp`` is a suffix, ``~*`` a
    prefix, ``Media Cache`` a name, ``*.tmp.*`` an infix; anything else is one regular
    expression. Same answers as ``fnmatch.fnmatchcase`` over every pattern."""

    suffixes: tuple[str, ...]
    prefixes: tuple[str, ...]
    names: frozenset[str]
    infixes: re.Pattern[str] | None  # literal alternatives: one search
    rest: re.Pattern[str] | None

    @classmethod
    def of(cls, patterns: Sequence[str]) -> _Matcher:
        suffixes, prefixes, names, infixes, rest = [], [], set(), [], []
        for p in patterns:
            inner = p[1:-1]
            if not _WILD.intersection(p):
                names.add(p)
            elif p.startswith("*") and not _WILD.intersection(p[1:]):
                suffixes.append(p[1:])
            elif p.endswith("*") and not _WILD.intersection(p[:-1]):
                prefixes.append(p[:-1])
            elif len(p) > 2 and p[0] == p[-1] == "*" and not _WILD.intersection(inner):
                infixes.append(inner)
            else:
                rest.append(p)
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in rest)
        literal = "|".join(re.escape(i) for i in infixes)
        return cls(tuple(suffixes), tuple(prefixes), frozenset(names),
                   re.compile(literal) if literal else None,
                   re.compile(joined) if joined else None)  # fmt: skip

    def matches(self, name: str) -> bool:
        return (
            name.endswith(self.suffixes)
            or name.startswith(self.prefixes)
            or name in self.names
            or (self.infixes is not None and self.infixes.search(name) is not None)
            or (self.rest is not None and self.rest.match(name) is not None)
        )


@dataclass(frozen=True)
class FileFilter:
    extensions: tuple[str, ...]  # lower-case with dot; empty: everything
    ignore_patterns: tuple[str, ...]
    _any: _Matcher = field(init=False, compare=False, repr=False)
    _extensions: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_any", _Matcher.of(self.ignore_patterns))
        object.__setattr__(self, "_extensions", frozenset(self.extensions))

    @classmethod
    def of(cls, extensions: Sequence[str], ignore: Sequence[str]) -> FileFilter:
        return cls(tuple(e.lower() for e in extensions), tuple(ignore))

    def ignores_dir(self, name: str) -> bool:
        return name.startswith(".") or self._any.matches(name)

    def accepts(self, name: str) -> bool:
        return self.why_skipped(name) is None

    def why_skipped(self, name: str) -> str | None:
        """None when the name is uploaded; else the reason, for the DEBUG log."""
        if self._any.matches(name):
            pattern = next(p for p in self.ignore_patterns if fnmatch.fnmatchcase(name, p))
            return f"matches the ignore pattern {pattern!r}"
        if not self.extensions:
            return None
        dot = name.rfind(".")
        if dot > 0 and name[dot:].lower() in self._extensions:
            return None
        return "its extension is not in watch.extensions"
