"""The update notice against the sandbox's release feed: told once, bad feeds are a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import __version__
from app.core.events import EventBus, UpdateAvailable
from app.engine.queue_store import QueueStore
from app.engine.update_check import UpdateChecker, is_newer, parse_feed

SHA = "ab" * 32


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[QueueStore]:
    s = QueueStore(tmp_path / "q.sqlite3")
    await s.open()
    yield s
    await s.close()


def _feed(sandbox: Any, doc: Any) -> None:
    import httpx

    body = doc if isinstance(doc, str) else json.dumps(doc)
    assert httpx.post(f"{sandbox.url}/_sandbox/releases/feed.json", content=body).status_code == 200


def _checker(sandbox: Any, store: QueueStore, bus: EventBus) -> UpdateChecker:
    return UpdateChecker(store, bus, f"{sandbox.url}/_sandbox/releases/feed.json", "1.2.0")


async def test_a_newer_release_is_told_once_even_across_restarts(sandbox: Any, store: QueueStore) -> None:
    bus = EventBus()
    told: list[UpdateAvailable] = []
    bus.subscribe(lambda e: told.append(e) if isinstance(e, UpdateAvailable) else None)
    _feed(sandbox, {"version": "1.3.0", "notes": "Faster pulls.", "download_url": "https://example.com/p.dmg",
                    "sha256": SHA})  # fmt: skip
    first = _checker(sandbox, store, bus)
    notice = await first.check_now()
    assert notice is not None and notice.version == "1.3.0" and first.available == notice
    assert await first.check_now() == notice  # checked again: still shown in the menu, not told again
    assert first.unannounced  # news until the tray app has shown it
    await first.acknowledge("1.3.0")
    again = _checker(sandbox, store, bus)  # "a restart"
    assert await again.check_now() == notice and not again.unannounced
    assert [e.notice.version for e in told] == ["1.3.0"]
    _feed(sandbox, {"version": "1.4.0", "download_url": "https://example.com/q.dmg", "sha256": SHA})
    await first.check_now()
    assert [e.notice.version for e in told] == ["1.3.0", "1.4.0"]  # a newer one is news again


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("<html>gateway</html>", "the feed is not JSON"),
        ('["1.3.0"]', "not a JSON object"),
        ('{"version": "1.3.0", "download_url": "https://e.com/p.dmg"}', "lacks sha256"),
        (
            '{"version": "next", "download_url": "https://e.com/p.dmg", "sha256": "' + SHA + '"}',
            "not a release",
        ),
        (
            '{"version": "1.3.0", "download_url": "http://e.com/p.dmg", "sha256": "' + SHA + '"}',
            "not an https",
        ),
        ('{"version": "1.3.0", "download_url": "https://e.com/p.dmg", "sha256": "abc"}', "not a SHA-256"),
    ],
)
async def test_a_bad_feed_is_one_clear_log_line_never_a_crash(
    sandbox: Any, store: QueueStore, caplog: pytest.LogCaptureFixture, body: str, words: str
) -> None:
    _feed(sandbox, body)
    bus = EventBus()
    told: list[Any] = []
    bus.subscribe(told.append)
    with caplog.at_level(logging.WARNING, logger="app.engine.update_check"):
        assert await _checker(sandbox, store, bus).check_now() is None
    lines = [r.getMessage() for r in caplog.records if r.name == "app.engine.update_check"]
    assert len(lines) == 1 and words in lines[0] and "tries again tomorrow" in lines[0]
    assert not [e for e in told if isinstance(e, UpdateAvailable)]


async def test_an_unreachable_feed_is_quiet(store: QueueStore) -> None:
    checker = UpdateChecker(store, EventBus(), "http://127.0.0.1:9/feed.json", "1.2.0")
    assert await checker.check_now() is None


def test_versions_compare_as_numbers() -> None:
    assert is_newer("1.10.0", "1.9.9") and not is_newer("1.2", "1.2.0") and is_newer("2", "1.99")
    assert parse_feed({"version": __version__, "download_url": "http://127.0.0.1:1/p", "sha256": SHA})


async def test_the_demo_feed_offers_nothing_newer(sandbox: Any, store: QueueStore) -> None:
    checker = UpdateChecker(store, EventBus(), f"{sandbox.url}/_sandbox/releases/feed.json", __version__)
    assert await checker.check_now() is None
