"""The Range header, RFC 9110 §14, as a table: what is served for each header over a file."""

from __future__ import annotations

import pytest

from app.pull.range_header import Outcome, parse_range

SIZE = 1000

CASES: list[tuple[str | None, Outcome, int, int]] = [
    (None, Outcome.WHOLE, 0, 999),
    ("bytes=0-499", Outcome.PARTIAL, 0, 499),
    ("bytes=500-999", Outcome.PARTIAL, 500, 999),
    ("bytes=500-", Outcome.PARTIAL, 500, 999),  # open-ended
    ("bytes=-200", Outcome.PARTIAL, 800, 999),  # a suffix
    ("bytes=-5000", Outcome.PARTIAL, 0, 999),  # a suffix longer than the file: all of it
    ("bytes=900-5000", Outcome.PARTIAL, 900, 999),  # an end past EOF is clipped
    ("bytes=999-999", Outcome.PARTIAL, 999, 999),
    ("bytes=0-0", Outcome.PARTIAL, 0, 0),
    ("BYTES = 10-19", Outcome.PARTIAL, 10, 19),  # read leniently: spaces and case
    ("bytes=10-19", Outcome.PARTIAL, 10, 19),
    (" bytes=10-19 ", Outcome.PARTIAL, 10, 19),
    ("Bytes=10-19", Outcome.PARTIAL, 10, 19),  # the unit is case-insensitive
    ("bytes=1000-", Outcome.UNSATISFIABLE, 0, -1),  # starts at EOF
    ("bytes=5000-6000", Outcome.UNSATISFIABLE, 0, -1),
    ("bytes=-0", Outcome.UNSATISFIABLE, 0, -1),
    ("bytes=20-10", Outcome.WHOLE, 0, 999),  # last < first: invalid, ignored
    ("bytes=abc", Outcome.WHOLE, 0, 999),
    ("bytes=-", Outcome.WHOLE, 0, 999),
    ("bytes=", Outcome.WHOLE, 0, 999),
    ("bytes=1-2-3", Outcome.WHOLE, 0, 999),
    ("bytes=0x10-20", Outcome.WHOLE, 0, 999),
    ("bytes=+1-2", Outcome.WHOLE, 0, 999),
    ("bytes=1.5-2", Outcome.WHOLE, 0, 999),
    ("items=0-10", Outcome.WHOLE, 0, 999),  # another unit: ignored
    ("0-10", Outcome.WHOLE, 0, 999),
    ("", Outcome.WHOLE, 0, 999),
    ("bytes=0-10,", Outcome.WHOLE, 0, 999),  # an empty spec: invalid
    ("bytes=0-99,100-199", Outcome.PARTIAL, 0, 199),  # touching ranges merge
    ("bytes=0-150,100-199", Outcome.PARTIAL, 0, 199),  # overlapping ranges merge
    ("bytes=0-9,500-509", Outcome.WHOLE, 0, 999),  # apart: the documented choice, the whole file
    ("bytes=0-9,5000-", Outcome.PARTIAL, 0, 9),  # the unsatisfiable one is dropped
    ("bytes=5000-,6000-", Outcome.UNSATISFIABLE, 0, -1),
    ("bytes=" + ",".join(f"{n}-{n}" for n in range(101)), Outcome.WHOLE, 0, 999),  # too many
    ("bytes=00010-00019", Outcome.PARTIAL, 10, 19),
    ("bytes=" + "9" * 40 + "-", Outcome.UNSATISFIABLE, 0, -1),  # huge numbers are just large
]


@pytest.mark.parametrize(("header", "outcome", "start", "end"), CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_range_table(header: str | None, outcome: Outcome, start: int, end: int) -> None:
    answer = parse_range(header, SIZE)
    assert answer.outcome is outcome
    if outcome is not Outcome.UNSATISFIABLE:
        assert (answer.start, answer.end) == (start, end)


def test_content_range_and_empty_files() -> None:
    assert parse_range("bytes=10-19", SIZE).content_range(SIZE) == "bytes 10-19/1000"
    assert parse_range("bytes=5000-", SIZE).content_range(SIZE) == "bytes */1000"
    empty = parse_range(None, 0)
    assert empty.outcome is Outcome.WHOLE and empty.length == 0
    assert parse_range("bytes=0-", 0).outcome is Outcome.UNSATISFIABLE
    assert parse_range("bytes=-10", 0).outcome is Outcome.UNSATISFIABLE
