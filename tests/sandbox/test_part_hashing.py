"""The in-order part hash when PUTs overlap: duplicates, early parts, parts whose bytes are gone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.sandbox.clock import Clock
from app.sandbox.model import File, SandboxStore
from app.sandbox.part_hashing import PartHasher, advance, stored_part

PARTS = [b"a" * 7, b"b" * 7, b"c" * 3]


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    return SandboxStore(Clock(), tmp_path / "state")


def _file(keep_bytes: bool) -> File:
    size = sum(map(len, PARTS))
    return File(
        "f1", "a", "p", "root", "x.mov", size, "video/quicktime", "t", "t",
        part_sizes=[len(p) for p in PARTS], keep_bytes=keep_bytes,
    )  # fmt: skip


def _store(store: SandboxStore, f: File, index: int) -> None:
    path = stored_part(store, f, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PARTS[index])


def _inline(state: PartHasher, index: int) -> hashlib._Hash:
    hasher = state.claim(index)
    assert hasher is not None
    hasher.update(PARTS[index])
    return hasher


WHOLE = hashlib.sha256(b"".join(PARTS)).hexdigest()


@pytest.mark.parametrize("keep_bytes", [True, False])
async def test_a_duplicate_of_the_next_part_counts_once_whichever_ends_first(
    store: SandboxStore, keep_bytes: bool
) -> None:
    f, state = _file(keep_bytes), PartHasher(len(PARTS))
    first = _inline(state, 0)  # receiving part 0 inline
    assert state.claim(0) is None  # a second PUT of part 0 must store its bytes
    _store(store, f, 0)
    assert await advance(store, f, state, 0, None) is False  # the stored copy ends first
    state.release(0)
    assert await advance(store, f, state, 0, first) is False  # the inline one is not counted again
    state.release(0)
    for index in (2, 1):
        _store(store, f, index)
        done = await advance(store, f, state, index, None)
    assert done and f.sha256 == WHOLE and sorted(f.parts_received) == [0, 1, 2]
    if not keep_bytes:
        assert list(store.spool_dir.rglob("*.*")) == [] and not any(store.spool_dir.rglob("0000*"))


async def test_an_inline_part_then_early_parts_from_the_spool(store: SandboxStore) -> None:
    f, state = _file(False), PartHasher(len(PARTS))
    _store(store, f, 2)
    assert await advance(store, f, state, 2, None) is False
    assert state.claim(1) is None  # not next: it must be stored
    assert await advance(store, f, state, 0, _inline(state, 0)) is False
    state.release(0)
    assert await advance(store, f, state, 1, _inline(state, 1)) is True
    assert f.sha256 == WHOLE and not any(store.spool_dir.rglob("0000*"))


async def test_a_part_whose_bytes_are_gone_leaves_the_hash_unknown(store: SandboxStore) -> None:
    f, state = _file(False), PartHasher(len(PARTS))
    f.parts_received = [0]  # counted before a restart; its bytes went with the old process
    _store(store, f, 2)
    assert await advance(store, f, state, 2, None) is True  # done: nothing more can be hashed
    assert state.broken and f.sha256 is None
    assert not any(store.spool_dir.rglob("0000*"))  # spooled parts freed at once
