"""Engine tests: an in-process engine harness on a sandbox with small parts, and a home for an
engine run in its own process (``EngineProcess``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness


@pytest.fixture
async def harness(sandbox: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    sandbox.control("/_sandbox/settings", {"part_size": 256 * 1024})
    h = Harness(sandbox, tmp_path / "watch")
    h.watch.mkdir()
    yield h
    await h.close()


@pytest.fixture
def engine_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "engine"
    (home / "watch").mkdir(parents=True)
    yield home
