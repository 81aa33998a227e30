"""The tricky decisions as pure functions, tested with tables."""

from __future__ import annotations

import fnmatch
import os
import random

import pytest

from app.core.path_text import text_form
from app.core.settings import DEFAULT_EXTENSIONS, DEFAULT_IGNORE
from app.engine.file_filter import FileFilter
from app.engine.part_urls import earliest_expiry, url_expiry
from app.engine.stability import Observation, StabilityTracker
from app.frameio.names import name_problem
from app.frameio.retry_policy import Failure, RetryPolicy

FILTER = FileFilter.of(DEFAULT_EXTENSIONS, DEFAULT_IGNORE)


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("SHOW_SC010_v003.mov", True), ("clip.MOV", True), ("a.mxf", True), ("still.exr", True),
        ("render.tmp", False), ("clip.mov.part", False), (".hidden.mov", False), (".DS_Store", False),
        ("._clip.mov", False), ("notes.txt", False), ("noext", False), ("clip.mov~", False),
        ("download.crdownload", False),
    ],
)  # fmt: skip
def test_file_filter(name: str, accepted: bool) -> None:
    assert FILTER.accepts(name) is accepted


def test_empty_extension_list_accepts_everything_not_ignored() -> None:
    f = FileFilter.of([], ["*.tmp"])
    assert f.accepts("anything.xyz") and not f.accepts("x.tmp")
    assert FILTER.ignores_dir(".git") and not FILTER.ignores_dir("Day 01")


@pytest.mark.parametrize(
    ("rel_path", "says"),
    [
        ("clip.mov", None), ("Day 01/SC010_v003.mov", None), ("é" * 255 + ".mov"[:0], None),
        ("a" * 251 + ".mov", None), ("a" * 252 + ".mov", "is 256 characters long"),
        ("f" * 256 + "/clip.mov", "The folder “"), ("day/clip\ufffd.mov", "not valid text"),
        ("day//clip.mov", "empty folder name"), ("day/", "empty file name"),
        ("🎬" * 255, None),  # code points, not bytes or UTF-16 units
    ],
)  # fmt: skip
def test_names_frame_io_would_refuse(rel_path: str, says: str | None) -> None:
    problem = name_problem(rel_path)
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem and problem.endswith("uploads it.") | ("empty" in says)


def test_names_from_disk_become_text() -> None:
    assert text_form("clip.mov") == "clip.mov" and text_form("caf\xe9") == "caf\xe9"
    assert text_form(os.fsdecode(b"clip\xff.mov")) == "clip\ufffd.mov"


def test_ignore_patterns_answer_exactly_as_fnmatch_whatever_their_shape() -> None:
    """The shape-sorted matcher (suffix, prefix, name, infix, regex) is only a faster
    ``fnmatchcase``: the same answer for every pattern and name."""
    patterns = [*DEFAULT_IGNORE, "*", "**", "a*b", "[Tt]humbs.db", "clip?.mov", "*x*", "x", "*.MOV"]
    names = ["a.tmp", "a.tmp.mov", ".x", "x", "ab", "a-b", "Thumbs.db", "thumbs.db", "clip1.mov",
             "clip12.mov", "render.prproj", "Media Cache", "Media Cache 2", "~lock", "clip.MOV",
             "clip.mov", "", "é.tmp", "Avid Attic", "a.avb.tmp", "frame.0001.exr"]  # fmt: skip
    for pattern in patterns:
        single = FileFilter.of([], [pattern])
        for name in names:
            assert single.accepts(name) is not fnmatch.fnmatchcase(name, pattern), (pattern, name)
    every = FileFilter.of([], DEFAULT_IGNORE)
    for name in names:
        ignored = any(fnmatch.fnmatchcase(name, p) for p in DEFAULT_IGNORE)
        assert every.accepts(name) is not ignored, name


def test_stability_needs_an_unchanged_window_and_content() -> None:
    t = StabilityTracker(window=30)
    seq = [
        (0, Observation(0, 1), False),  # appears empty
        (10, Observation(0, 1), False),  # still empty: never ready
        (20, Observation(500, 2), False),  # grows: clock restarts
        (45, Observation(900, 3), False),  # still growing
        (70, Observation(900, 3), False),  # unchanged 25 s
        (75, Observation(900, 3), True),  # unchanged 30 s: ready
        (80, Observation(900, 3), False),  # reported once only
        (90, Observation(950, 4), False),  # new content: a new version settles
        (120, Observation(950, 4), True),
    ]
    for now, obs, ready in seq:
        assert t.observe("a.mov", obs, now) is ready, (now, obs)
        if ready:
            t.mark_queued("a.mov")


def test_a_ready_file_is_offered_again_until_it_is_queued() -> None:
    t = StabilityTracker(window=1)
    t.observe("a", Observation(5, 1), 0)
    assert t.observe("a", Observation(5, 1), 2) is True
    assert t.observe("a", Observation(5, 1), 3) is True  # queueing failed: still offered
    t.mark_queued("a")
    assert t.pending() == 0  # queued: the scan reports only a later change, as a new version


def test_stability_forgets_vanished_files() -> None:
    t = StabilityTracker(window=1)
    t.observe("a", Observation(1, 1), 0)
    t.keep_only(set())
    assert t.pending() == 0


@pytest.mark.parametrize(
    ("failure", "attempt", "retry_after", "low", "high"),
    [
        (Failure.RATE_LIMITED, 1, None, 1.0, 1.0),
        (Failure.RATE_LIMITED, 2, None, 2.0, 2.0),
        (Failure.RATE_LIMITED, 1, 7.0, 7.0, 7.0),  # Retry-After honoured when present
        (Failure.SERVER, 1, None, 30.0, 45.0),  # ≥ 30 s with jitter
        (Failure.SERVER, 2, None, 60.0, 90.0),
        (Failure.NETWORK, 1, None, 2.0, 3.0),
        (Failure.NETWORK, 20, None, None, None),  # capped attempts
        (Failure.SERVER, 5, None, None, None),
        (Failure.FINAL, 1, None, None, None),
    ],
)
def test_retry_policy(
    failure: Failure, attempt: int, retry_after: float | None, low: float | None, high: float | None
) -> None:
    wait = RetryPolicy().delay(failure, attempt, retry_after, random.Random(1))
    if low is None:
        assert wait is None
    else:
        assert wait is not None and low <= wait <= high


def test_retry_policy_is_capped() -> None:
    assert RetryPolicy().delay(Failure.RATE_LIMITED, 7, None) == 60.0
    assert RetryPolicy().delay(Failure.RATE_LIMITED, 7, 90.0) == 90.0  # the server's word wins
    assert RetryPolicy(cap=10).delay(Failure.SERVER, 1) == 10.0


def test_part_url_expiry() -> None:
    url = "https://s3/x?X-Amz-Date=20261124T120000Z&X-Amz-Expires=86400&X-Amz-Signature=abc"
    assert url_expiry(url) == 1795521600 + 86400
    assert url_expiry("https://s3/x?nothing=1") is None
    other = url.replace("86400", "3600")
    assert earliest_expiry([url, other]) == 1795521600 + 3600
    assert earliest_expiry(["https://no-expiry"]) is None
