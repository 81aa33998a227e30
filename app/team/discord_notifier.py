"""Tells the team's Discord channel what happened: delivered, ready to review, failed, sign-in
needed, and the daily summary, each switchable (``discord.events``).

Events become persisted notices at once; notices arriving within ``discord.coalesce_seconds``
of each other are gathered into one or a few messages (40 renders finishing together are one
list, not 40 pings); messages wait in the outbox until Discord took them. One message is in
flight at a time, at the pace Discord's headers and 429 answers set. A deleted webhook stops
the sending (messages keep waiting) and turns the ``discord`` health red until a new address
is saved or the webhook answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from app.auth.token_store import TokenStore
from app.core.errors import ConfigError, PostFlowError
from app.core.event_wait import wait_set
from app.core.events import (
    AttemptEnded,
    AuthState,
    AuthStateChanged,
    EventBus,
    FileReviewed,
    Health,
    JobStateChanged,
)
from app.core.jobs import JobState
from app.core.logging_setup import SECRETS
from app.core.settings import Settings, machine_name
from app.engine.health_monitor import HealthMonitor
from app.engine.scheduler import TOUCHED_NOTE
from app.team import discord_messages as messages
from app.team.discord_webhook import TIMEOUT, Answer, DiscordWebhook
from app.team.outbox import DEAD, PENDING, SENDING, SENT, Outbox
from app.team.webhook_secret import load_webhook_url, parse_webhook_url, save_webhook_url, secret_parts

log = logging.getLogger(__name__)
EVENTS = ("uploaded", "ready", "failed", "signin", "summary")
MAX_GATHER = 30.0  # seconds: however busy, notices wait no longer than this
RETRY_CAP = 300.0
HEALTH = "discord"


class DiscordNotifier:
    def __init__(
        self,
        settings: Callable[[], Settings],
        outbox: Outbox,
        store: TokenStore,
        bus: EventBus,
        health: HealthMonitor,
        destination: Callable[[str, str], str],
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``settings()``: the engine's current settings (the events and timing are live);
        ``destination(root_id, rel_path)``: where a file went on Frame.io, in words."""
        self._settings = settings
        self._outbox = outbox
        self._store = store
        self._bus = bus
        self._health = health
        self._destination = destination
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT, headers={"User-Agent": "PostFlow"})
        self._webhook = DiscordWebhook(self._http)
        self.url: str | None = None
        self._gone = False
        self._incoming: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._notices_due = asyncio.Event()
        self._send_due = asyncio.Event()
        self._bucket_until = 0.0
        self._attempt_seconds: dict[int, float] = {}
        self._announced: set[tuple[str, int]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # The engine's health probe calls check() on its own task: stop() lets a check in flight
        # finish before the client closes (closed under it, its connection would leak).
        self._stopped = False
        self._checks = 0
        self._no_check = asyncio.Event()
        self._no_check.set()
        self._unsubscribe: Callable[[], None] | None = None
        self._in_flight: asyncio.Task[Answer] | None = None

    # ---- lifecycle ----
    def listen(self) -> None:
        """Hear events from now on (before the engine starts: nothing it says is missed); they
        wait in memory until ``start`` can write them."""
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self._on_event)

    async def start(self) -> None:
        self.listen()
        try:
            self.url = await asyncio.to_thread(load_webhook_url, self.settings, self._store)
            SECRETS.add(*secret_parts(self.url))  # never in a log line, whatever logs it
        except PostFlowError as exc:
            log.warning("Discord: the webhook address cannot be read from the keychain: %s", exc.message)
        recovered = await self._outbox.recover()
        if recovered:
            log.info("Discord: %d message(s) interrupted by a crash will be sent again", recovered)
        await self._outbox.retry_now()  # a restart tries at once, whatever the last backoff was
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._persist_loop()), loop.create_task(self._gather_loop()),
                       loop.create_task(self._send_loop())]  # fmt: skip
        if await self._outbox.notices():
            self._notices_due.set()
        self._send_due.set()

    async def stop(self) -> None:
        """A message in flight is let finish (a few seconds at most): cut off, it could be
        sent twice after the restart."""
        self._stopped = True
        if self._in_flight is not None and not self._in_flight.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._in_flight), TIMEOUT.read or 15.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_check.wait(), TIMEOUT.read or 15.0)
        if self._unsubscribe is not None:  # still listening until here: nothing heard is dropped
            self._unsubscribe()
            self._unsubscribe = None
        while not self._incoming.empty():  # events heard, not yet written: keep them
            kind, data = self._incoming.get_nowait()
            with contextlib.suppress(Exception):
                await self._outbox.add_notice(kind, data)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    @property
    def settings(self) -> Settings:
        return self._settings()

    @property
    def configured(self) -> bool:
        return self.url is not None

    # ---- what the user does (settings page) ----
    async def set_webhook(self, text: str | None) -> None:
        """Save (or, with None / "", forget) the webhook address in the keychain."""
        url = parse_webhook_url(text, self.settings.sandbox) if text and text.strip() else None
        SECRETS.add(*secret_parts(url))
        await asyncio.to_thread(save_webhook_url, self._store, url)
        self.url = url
        self._gone = False
        if url is None:
            self._health.set(HEALTH, None, "No Discord webhook: the team hears nothing from this PostFlow.")
            self._health.forget(HEALTH)
        else:
            await self.check()
        self._send_due.set()

    async def send_test(self) -> str:
        """Post a test message now (not through the outbox: the user is waiting for the answer)."""
        if self.url is None:
            raise ConfigError("No Discord webhook address is saved yet: paste one first.")
        url = self.url
        answer = await self._webhook.post(url, messages.test_message(machine_name(self.settings)))
        self._observe(answer, url)
        if answer.outcome != "sent":
            raise PostFlowError(self._words(answer))
        return "Test message posted. Check the channel."

    async def check(self) -> None:
        """The health probe: does the webhook still exist?"""
        url = self.url
        if url is None or self._stopped:
            return
        self._checks += 1
        self._no_check.clear()
        try:
            answer = await self._webhook.check(url)
        finally:
            self._checks -= 1
            if not self._checks:
                self._no_check.set()
        if url != self.url:
            return  # the address was changed meanwhile: this answer is about the old one
        if answer.outcome == "sent":
            current = self._health.get(HEALTH)
            troubled = self._gone or current is None or not current.ok
            self._gone = False
            self._health.set(HEALTH, None, f"Posting to Discord as {answer.detail or 'the webhook'}.")
            if troubled:
                await self._outbox.retry_now()  # Discord answers again: no need to wait out a backoff
            self._send_due.set()
        elif answer.outcome == "gone":
            self._observe(answer, url)
        elif answer.outcome == "later" and not self._gone:
            log.info("Discord check: %s", answer.detail)
            self._health.set(HEALTH, "Discord does not answer right now: messages wait and are sent later.")

    def health(self) -> Health | None:
        """The webhook's last word (None: no webhook)."""
        return self._health.get(HEALTH)

    async def counts(self) -> dict[str, int]:
        return await self._outbox.counts()

    # ---- events → notices ----
    def enabled(self, kind: str) -> bool:
        return self.url is not None and kind in self.settings.discord_events

    def _on_event(self, event: Any) -> None:
        if isinstance(event, AttemptEnded) and event.outcome == "delivered":
            self._attempt_seconds[event.job_id] = event.seconds
        elif isinstance(event, JobStateChanged):
            self._job_changed(event)
        elif isinstance(event, FileReviewed):
            kind = "ready" if event.ready else "transcode_failed"
            if self.enabled("ready") and (kind, event.job_id) not in self._announced:
                self._announced.add((kind, event.job_id))
                where = self._destination(event.root_id, event.rel_path)
                self._queue(kind, {"name": event.rel_path.rsplit("/", 1)[-1], "rel_path": event.rel_path,
                                   "size": event.size, "destination": where, "link": event.link,
                                   "seconds": event.waited_seconds, "message": event.message})  # fmt: skip
        elif (isinstance(event, AuthStateChanged) and event.state is AuthState.SIGNED_OUT and event.reason
              and self.enabled("signin")):  # fmt: skip
            self._queue("signin", {"message": event.reason})

    def _job_changed(self, event: JobStateChanged) -> None:
        job = event.view.job
        if job.state is not JobState.FAILED:
            self._announced.discard(("failed", job.id))  # a retry that fails again is told again
        if job.state is JobState.DONE and job.note != TOUCHED_NOTE:
            seconds = self._attempt_seconds.pop(job.id, None)
            if self.enabled("uploaded") and ("uploaded", job.id) not in self._announced:
                self._announced.add(("uploaded", job.id))
                self._queue("uploaded", {**self._file(job), "seconds": seconds})
        elif job.state is JobState.FAILED and self.enabled("failed"):
            key = ("failed", job.id)
            if key not in self._announced:
                self._announced.add(key)
                error = job.error
                self._queue("failed", {**self._file(job), "message": error.message if error else None})

    def _file(self, job: Any) -> dict[str, Any]:
        return {"name": job.name, "rel_path": job.rel_path, "size": job.size, "link": job.remote_url,
                "destination": self._destination(job.root_id, job.rel_path)}  # fmt: skip

    def _queue(self, kind: str, data: dict[str, Any]) -> None:
        data = {**data, "machine": machine_name(self.settings), "at": time.time()}
        self._incoming.put_nowait((kind, data))

    async def add_message(self, payload: dict[str, Any], once: tuple[str, str] | None = None) -> bool:
        """A message composed elsewhere (the daily summary), sent like the others; ``once``: see
        ``Outbox.add_message``."""
        added = await self._outbox.add_message(payload, once)
        self._send_due.set()
        return added

    async def _persist_loop(self) -> None:
        while True:
            kind, data = await self._incoming.get()
            try:
                await self._outbox.add_notice(kind, data)
            except Exception:  # our disk is full: the engine's health says so; keep the notice
                log.exception("Discord: a notice could not be saved")
                self._incoming.put_nowait((kind, data))
                await asyncio.sleep(5)
                continue
            self._notices_due.set()

    async def _gather_loop(self) -> None:
        while True:
            try:
                await self._gather_once()
            except Exception:  # the database: the notices stay, and are gathered at the next try
                log.exception("Discord: notices could not be gathered")
                await asyncio.sleep(5)
                self._notices_due.set()

    async def _gather_once(self) -> None:
        """Wait for notices, gather those that arrive together, write them as messages."""
        await self._notices_due.wait()
        first = time.monotonic()
        window = max(0.0, self.settings.discord_coalesce_seconds)
        quiet = min(3.0, window)
        # Gather when it has been quiet a moment, or the window since the first is over.
        while True:
            self._notices_due.clear()
            elapsed = time.monotonic() - first
            left = min(window, MAX_GATHER) - elapsed
            if left <= 0:
                break
            if not await wait_set(self._notices_due, min(quiet, left)) and self._incoming.empty():
                break
        self._notices_due.clear()
        notices = await self._outbox.notices()
        if not notices:
            return
        wanted = [(n.kind, n.data) for n in notices if n.kind in ("transcode_failed",) or
                  n.kind in self.settings.discord_events]  # fmt: skip
        payloads = messages.compose(wanted)
        await self._outbox.gather([n.id for n in notices], payloads)
        log.info("Discord: %d notice(s) gathered into %d message(s)", len(notices), len(payloads))
        self._send_due.set()

    # ---- messages → Discord ----
    async def _send_loop(self) -> None:
        while True:
            await self._send_due.wait()
            self._send_due.clear()
            try:
                await self._send_waiting()
            except Exception:  # the database: the message stays in the outbox, sent at the next try
                log.exception("Discord: sending stopped by an error; trying again shortly")
                await asyncio.sleep(5)
                self._send_due.set()

    async def _send_waiting(self) -> None:
        while (url := self.url) is not None and not self._gone:
            message = await self._outbox.next_message()
            if message is None:
                return
            wait = max(message.not_before, self._bucket_until) - time.time()
            if wait > 0:
                await wait_set(self._send_due, wait)
                self._send_due.clear()
                continue
            await self._send(url, message.id, message.payload, message.attempts)

    async def _send(self, url: str, message_id: int, payload: dict[str, Any], attempts: int) -> None:
        await self._outbox.mark(message_id, SENDING)
        self._in_flight = asyncio.get_running_loop().create_task(self._webhook.post(url, payload))
        try:
            answer = await asyncio.shield(self._in_flight)
        except Exception:
            await self._outbox.mark(message_id, PENDING)
            raise
        self._observe(answer, url)
        if url != self.url and answer.outcome != "sent":
            await self._outbox.mark(message_id, PENDING)  # meant for the old address: send it anew
            return
        now = time.time()
        if answer.outcome == "sent":
            await self._outbox.mark(message_id, SENT)
            self._bucket_until = now + answer.wait
        elif answer.outcome == "rate_limited":
            log.info("Discord: rate limited, waiting %.2fs as asked", answer.wait)
            self._bucket_until = now + answer.wait
            await self._outbox.mark(message_id, PENDING)
        elif answer.outcome == "refused":
            log.error("Discord refused a message (%s); it is dropped", answer.detail)
            await self._outbox.mark(message_id, DEAD, error=answer.detail, attempt=True)
        elif answer.outcome == "gone":
            await self._outbox.mark(message_id, PENDING)
        else:
            wait = min(RETRY_CAP, 2.0 * 2 ** min(attempts, 8))
            log.info("Discord: %s; message sent again in %.0fs", answer.detail, wait)
            await self._outbox.mark(
                message_id, PENDING, error=answer.detail, not_before=now + wait, attempt=True
            )

    def _observe(self, answer: Answer, url: str) -> None:
        if url != self.url:
            return  # the address was changed meanwhile: this answer is about the old one
        if answer.outcome == "gone":
            if not self._gone:
                log.error("Discord: the webhook is gone (%s); messages wait for a new address", answer.detail)
            self._gone = True
            self._health.set(HEALTH, self._words(answer))
        elif answer.outcome == "sent":
            if self._gone:
                self._send_due.set()  # it works again: what waited may go
            self._gone = False
            current = self._health.get(HEALTH)
            if current is None or not current.ok:
                self._health.set(HEALTH, None, "Posting to Discord works.")

    @staticmethod
    def _words(answer: Answer) -> str:
        if answer.outcome == "gone":
            return (f"Discord no longer accepts this webhook ({answer.detail}): it was deleted or "
                    "its address is wrong. Messages wait until a new address is saved.")  # fmt: skip
        if answer.outcome == "rate_limited":
            return "Discord asks PostFlow to slow down; try again in a few seconds."
        return f"Discord did not take the message: {answer.detail}."
