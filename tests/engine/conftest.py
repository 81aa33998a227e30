"""Engine tests: an in-process engine harness on a sandbox with small parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
