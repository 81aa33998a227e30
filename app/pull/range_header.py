"""The HTTP ``Range`` header (RFC 9110 §14) as a pure function, tested with tables.

What the range server answers, decided here:
- no header, a unit other than ``bytes``, or a header that does not parse: the whole file (200);
  RFC 9110 says an invalid Range is ignored, never an error;
- one satisfiable range (``a-b``, ``a-``, or a suffix ``-n``): that range (206), its end clipped
  to the file;
- several ranges: those that overlap or touch are merged; if one range remains it is served
  (206), otherwise the header is ignored and the whole file is sent (200). This is PostFlow's
  documented choice: RFC 9110 lets a server ignore a Range header, and Frame.io's fetcher asks
  for one range at a time, so no ``multipart/byteranges`` body is ever built;
- no range satisfiable (every start past the end, or ``-0``): 416 with ``bytes */size``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_SPEC = re.compile(r"^(\d*)-(\d*)$")
MAX_RANGES = 100  # more than this many is not a real client: ignored (the whole file)


class Outcome(Enum):
    WHOLE = 200
    PARTIAL = 206
    UNSATISFIABLE = 416


@dataclass(frozen=True)
class RangeAnswer:
    outcome: Outcome
    start: int = 0  # inclusive
    end: int = -1  # inclusive; -1 with start 0: an empty file

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        if self.outcome is Outcome.UNSATISFIABLE:
            return f"bytes */{size}"
        return f"bytes {self.start}-{self.end}/{size}"


def whole(size: int) -> RangeAnswer:
    return RangeAnswer(Outcome.WHOLE, 0, size - 1)


def parse_range(header: str | None, size: int) -> RangeAnswer:
    if header is None:
        return whole(size)
    unit, sep, specs = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return whole(size)
    parts = [p.strip() for p in specs.split(",")]
    if not parts or len(parts) > MAX_RANGES or any(not p for p in parts):
        return whole(size)
    wanted: list[tuple[int, int]] = []
    for part in parts:
        match = _SPEC.match(part)
        if match is None:
            return whole(size)
        first, last = match.groups()
        if not first and not last:
            return whole(size)  # "-" alone
        if not first:  # a suffix: the last n bytes
            length = int(last)
            if length > 0 and size > 0:
                wanted.append((max(0, size - length), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return whole(size)  # invalid: the whole header is ignored
        if start < size:
            wanted.append((start, min(end, size - 1)))
    if not wanted:
        return RangeAnswer(Outcome.UNSATISFIABLE)
    merged = _merge(wanted)
    if len(merged) != 1:
        return whole(size)
    start, end = merged[0]
    return RangeAnswer(Outcome.PARTIAL, start, end)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
