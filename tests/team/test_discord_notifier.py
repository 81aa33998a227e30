"""The Discord notifier against the sandbox's Discord: coalescing, Discord's rate limits and 429s,
the persisted outbox across restarts, a deleted webhook, the test message, the daily summary."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_harness import Harness, wait_for, write

from app.core.errors import ConfigError, PostFlowError
from app.core.events import FileReviewed
from app.core.settings import machine_name
from app.engine.service import EngineService
from app.team.daily_summary import LAST_SENT_KEY, DailySummary
from app.team.discord_notifier import DiscordNotifier
from app.team.outbox import Outbox

WEBHOOK_PATH = "/discord/api/webhooks/100000000000000042/sandbox-token"


class Team:
    """A notifier on the harness's engine, as ``composition`` wires it, whose HTTP requests to
    Discord are recorded (method, path, status, monotonic time)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.requests: list[tuple[str, str, int, float]] = []
        self.notifier: DiscordNotifier | None = None
        self.url = harness.sandbox.url + WEBHOOK_PATH

    @property
    def engine(self) -> EngineService:
        assert self.harness.engine is not None
        return self.harness.engine

    async def _record(self, response: httpx.Response) -> None:
        request = response.request
        self.requests.append((request.method, request.url.path, response.status_code, time.monotonic()))

    async def start(self) -> DiscordNotifier:
        assert self.harness.auth is not None
        engine = self.engine
        http = httpx.AsyncClient(timeout=15, event_hooks={"response": [self._record]})
        self.notifier = DiscordNotifier(
            lambda: engine.settings, Outbox(engine.store), self.harness.auth.store, self.harness.bus,
            engine.health_monitor, engine.destination_of, http=http,
        )  # fmt: skip
        await self.notifier.start()
        engine.add_health_check("discord", self.notifier.check)
        return self.notifier

    async def stop(self) -> None:
        if self.notifier is not None:
            await self.notifier.stop()
            self.notifier = None

    def posts(self) -> list[tuple[str, str, int, float]]:
        return [r for r in self.requests if r[0] == "POST"]

    def messages(self) -> list[dict[str, Any]]:
        doc = self.harness.sandbox.control("/_sandbox/discord/messages")
        return [m["payload"] for m in doc["messages"]]

    async def settled(self) -> dict[str, int]:
        """Wait until nothing is waiting to be sent."""
        assert self.notifier is not None
        notifier = self.notifier

        async def done() -> dict[str, int] | None:
            counts = await notifier.counts()
            busy = counts["notices"] + counts["pending"] + counts["sending"]
            return None if busy or not notifier._incoming.empty() else counts

        result: dict[str, int] = await wait_for(done, 60, "the outbox to empty")
        return result


def text_of(payload: dict[str, Any]) -> str:
    parts = [payload.get("content") or ""]
    for embed in payload.get("embeds", []):
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


@pytest.fixture
async def team(sandbox: Any, tmp_path: Path) -> AsyncIterator[Team]:
    sandbox.control("/_sandbox/settings", {"part_size": 256 * 1024})
    harness = Harness(sandbox, tmp_path / "watch", POSTFLOW_DISCORD_COALESCE_SECONDS="10",
                      POSTFLOW_MACHINE_NAME="Edit Bay 3")  # fmt: skip
    harness.watch.mkdir()
    await harness.start()
    team = Team(harness)
    try:
        yield team
    finally:
        await team.stop()
        await harness.close()


async def test_forty_renders_finishing_together_are_at_most_three_messages_naming_all(team: Team) -> None:
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    names = [f"SC{n:03d}_v001.mov" for n in range(40)]
    for n, name in enumerate(names):
        write(team.harness.watch / "Batch" / name, bytes([n]) * (1000 + n))
    reviewed = lambda: [e for e in team.harness.events if isinstance(e, FileReviewed)]  # noqa: E731
    await wait_for(lambda: len(reviewed()) == 40, 90, "40 files ready to review")
    await team.settled()
    messages = team.messages()
    assert 1 <= len(messages) <= 3, [text_of(m)[:200] for m in messages]
    text = "\n".join(map(text_of, messages))
    assert all(name in text for name in names), [n for n in names if n not in text]
    assert "40 files are ready to review" in text
    assert "Demo Project / Incoming / Batch" in text and "Edit Bay 3" in text
    assert all(m["allowed_mentions"] == {"parse": []} for m in messages)  # a file named @here pings nobody
    assert len({e.job_id for e in reviewed()}) == len(reviewed()) == 40  # each file announced once


async def test_a_429_is_waited_out_for_its_retry_after_and_the_message_still_goes(team: Team) -> None:
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    team.harness.sandbox.control("/_sandbox/faults", {"discord": {"burst": 1, "burst_kind": "429"}})
    await notifier.add_message({"content": "SC010_v003 is ready"})
    await team.settled()
    posts = team.posts()
    assert [p[2] for p in posts] == [429, 200]
    assert posts[1][3] - posts[0][3] >= 0.2  # the body's retry_after (0.2 s), not sooner
    assert posts[1][3] - posts[0][3] < 1.0  # nor the rounded-up Retry-After header (1 s)
    assert [m["content"] for m in team.messages()] == ["SC010_v003 is ready"]


async def test_discords_per_webhook_limit_is_kept_without_hitting_429(team: Team) -> None:
    """The sandbox allows 5 messages per 2 s per webhook, like Discord: twelve messages queued at
    once go out at that pace, read from the headers, not by bumping into 429s."""
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    for n in range(12):
        await notifier.add_message({"content": f"message {n}"})
    await team.settled()
    assert [m["content"] for m in team.messages()] == [f"message {n}" for n in range(12)]
    statuses = [p[2] for p in team.posts()]
    assert statuses.count(429) <= 1 and statuses.count(200) == 12, statuses
    times = [p[3] for p in team.posts() if p[2] == 200]
    for first, sixth in zip(times, times[5:], strict=False):
        assert sixth - first >= 1.9  # never six in any two seconds


async def test_a_restart_sends_every_pending_message_exactly_once(team: Team) -> None:
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    team.harness.sandbox.control("/_sandbox/faults", {"discord": {"burst": 100, "burst_kind": "500"}})
    for n in range(3):
        await notifier.add_message({"content": f"pending {n}"})

    async def all_tried() -> bool:
        rows = await team.engine.store.run(
            lambda db: db.execute("SELECT COUNT(*) FROM outbox WHERE attempts >= 1").fetchone()[0]
        )
        return bool(rows >= 1)

    await wait_for(all_tried, 30, "Discord's 500 to be met")
    # A file is delivered and ready while Discord is down; PostFlow quits before it is gathered.
    write(team.harness.watch / "late.mov", b"x" * 5000)
    await wait_for(lambda: any(isinstance(e, FileReviewed) for e in team.harness.events), 60, "ready")
    await team.stop()
    counts = await Outbox(team.engine.store).counts()
    assert counts["pending"] + counts["notices"] >= 4 and counts["sent"] == 0, counts
    assert team.messages() == []

    team.harness.sandbox.control("/_sandbox/faults", {"clear": True})
    await team.harness.restart()
    notifier = await team.start()
    await team.settled()
    texts = [text_of(m) for m in team.messages()]
    assert sorted(t for t in texts if t.startswith("pending")) == ["pending 0", "pending 1", "pending 2"]
    assert sum("late.mov" in t for t in texts) == 1

    await team.stop()  # and once more: nothing is sent again
    await team.harness.restart()
    notifier = await team.start()
    await notifier.add_message({"content": "after the second restart"})
    await team.settled()
    texts = [text_of(m) for m in team.messages()]
    assert texts[-1] == "after the second restart" and len(texts) == 5, texts


async def test_a_deleted_webhook_turns_health_red_once_without_a_retry_storm(team: Team) -> None:
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    health = team.engine.health_monitor
    assert health.get("discord") is not None and health.get("discord").ok  # type: ignore[union-attr]
    httpx.delete(team.url).raise_for_status()  # someone removes it in the server's settings

    for n in range(5):
        await notifier.add_message({"content": f"lost? {n}"})
    await wait_for(lambda: not health.get("discord").ok, 30, "discord health red")  # type: ignore[union-attr]
    red = health.get("discord")
    assert red is not None and "deleted" in (red.message or "")
    assert red.action and "Settings" in red.action
    for _ in range(5):  # the scheduled checks keep asking (a GET each), and never post
        await team.engine.check_health()
    for n in range(5):
        await notifier.add_message({"content": f"more {n}"})
    assert len(team.posts()) == 1, team.posts()  # one refused post, then nothing
    assert (await notifier.counts())["pending"] == 10  # every message kept
    assert health.get("discord").since == red.since  # type: ignore[union-attr]  # red once, not flapping

    new_url = team.harness.sandbox.url + "/discord/api/webhooks/100000000000000043/new-token"
    await notifier.set_webhook(new_url)
    await team.settled()
    assert health.get("discord").ok  # type: ignore[union-attr]
    assert len(team.messages()) == 10


async def test_send_test_message_and_plain_errors(team: Team) -> None:
    notifier = await team.start()
    with pytest.raises(ConfigError, match="No Discord webhook"):
        await notifier.send_test()
    with pytest.raises(ConfigError, match="not a Discord webhook address"):
        await notifier.set_webhook("https://example.com/hooks/1")
    await notifier.set_webhook(team.url)
    assert await notifier.send_test() == "Test message posted. Check the channel."
    assert "Edit Bay 3" in text_of(team.messages()[-1])
    store = team.harness.auth.store  # type: ignore[union-attr]
    assert store.secret("discord-webhook") == team.url  # in the keychain…
    config = team.engine.settings.paths.config_file
    assert not config.exists() or team.url not in config.read_text()  # …never in config.toml
    httpx.delete(team.url).raise_for_status()
    with pytest.raises(PostFlowError, match="no longer accepts this webhook"):
        await notifier.send_test()
    await notifier.set_webhook("")
    assert store.secret("discord-webhook") is None and team.engine.health_monitor.get("discord") is None


async def test_the_daily_summary_is_posted_once_a_day_even_across_a_restart(team: Team) -> None:
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    for n in range(3):
        write(team.harness.watch / "Day" / f"A{n}.mov", b"y" * (2000 + n))
    await wait_for(lambda: sum(isinstance(e, FileReviewed) for e in team.harness.events) == 3, 60, "3 ready")

    due = (datetime.now().astimezone() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    await team.engine.update_settings({"discord_summary_time": due.strftime("%H:%M")})

    def summary(engine: EngineService, sender: DiscordNotifier) -> DailySummary:
        return DailySummary(lambda: engine.settings, engine.store, sender,
                            lambda root_id: engine.destination_of(root_id, ""),
                            lambda: machine_name(engine.settings))  # fmt: skip

    daily = summary(team.engine, notifier)
    assert not await daily.send_if_due(due - timedelta(seconds=1))  # not before its time
    assert await daily.send_if_due(due + timedelta(seconds=30))
    assert not await daily.send_if_due(due + timedelta(seconds=40))
    await team.settled()
    await team.stop()
    await team.harness.restart()
    notifier = await team.start()
    assert not await summary(team.engine, notifier).send_if_due(due + timedelta(minutes=5))
    assert await team.engine.store.meta(LAST_SENT_KEY) == due.date().isoformat()
    await team.settled()
    summaries = [text_of(m) for m in team.messages() if "Daily summary" in text_of(m)]
    assert len(summaries) == 1
    assert "**3** files delivered" in summaries[0] and "**0** failed" in summaries[0]
    assert "Demo Project / Incoming" in summaries[0] and "Edit Bay 3" in summaries[0]


async def test_events_switched_off_are_not_posted(team: Team) -> None:
    await team.engine.update_settings({"discord_events": ["failed"]})
    notifier = await team.start()
    await notifier.set_webhook(team.url)
    write(team.harness.watch / "quiet.mov", b"q" * 3000)
    await wait_for(lambda: any(isinstance(e, FileReviewed) for e in team.harness.events), 60, "ready")
    await team.settled()
    assert team.messages() == []
