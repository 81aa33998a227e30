"""Whether uploads may go out at all: signed in, and to the account the queue was meant for.

Signed out → every transfer halts (part PUTs need no token) and the keychain is polled for a
sign-in made by another process (``postflow login``). Signed in to another account → the
queue holds until the user confirms (``confirm_account``, or ``postflow confirm-account`` from
another process, noticed by polling the stored choice).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from app.auth.token_provider import TokenProvider
from app.core.errors import PostFlowError
from app.core.events import EventBus, HealthChanged
from app.engine.maintenance import ACCOUNT_KEY, account_identity
from app.engine.queue_store import QueueStore

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0


class AccountGuard:
    def __init__(
        self,
        store: QueueStore,
        provider: TokenProvider,
        bus: EventBus,
        *,
        halt_everything: Callable[[str | None], Awaitable[None]],
        changed: Callable[[], None],
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._provider = provider
        self._bus = bus
        self._halt_everything = halt_everything  # stop uploads and clean-ups, with this reason
        self._changed = changed  # the engine's state changed: announce it
        self._wake = wake
        self.waiting_for_sign_in = False
        self.account_mismatch: str | None = None  # signed in to another account than the queue's
        self._keychain_poll: asyncio.Task[None] | None = None
        self._account_poll: asyncio.Task[None] | None = None

    @property
    def blocked(self) -> bool:
        return self.waiting_for_sign_in or self.account_mismatch is not None

    async def stop(self) -> None:
        for task in (self._keychain_poll, self._account_poll):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def signed_out(self) -> None:
        self.enter_signed_out()
        await self._halt_everything("Waiting for you to sign in again.")

    async def signed_in(self) -> None:
        await self.check_account()
        if self.waiting_for_sign_in:
            log.info("signed in again: uploads resume")
            self.waiting_for_sign_in = False
            self._changed()
        self._wake()

    def enter_signed_out(self) -> None:
        if not self.waiting_for_sign_in:
            log.warning("signed out: uploads wait until you sign in again; nothing is lost")
            self.waiting_for_sign_in = True
            self._changed()
        if self._keychain_poll is None or self._keychain_poll.done():
            self._keychain_poll = asyncio.get_running_loop().create_task(self._poll_keychain())

    async def confirm_account(self) -> None:
        """The user confirmed: the queue now goes to the account signed in at present."""
        tokens = self._provider.tokens
        if tokens is None:
            return
        await self._store.set_meta(ACCOUNT_KEY, account_identity(tokens.account_id, tokens.user_email))
        await self.check_account()
        self._wake()

    async def check_account(self) -> None:
        """A sign-in into another account holds the queue until the user confirms where it goes."""
        tokens = self._provider.tokens
        if tokens is None:
            return
        current = account_identity(tokens.account_id, tokens.user_email)
        meant = await self._store.meta(ACCOUNT_KEY)
        if meant is None:
            await self._store.set_meta(ACCOUNT_KEY, current)
            meant = current
        before = self.account_mismatch
        if json.loads(meant).get("account_id") == tokens.account_id:
            self.account_mismatch = None
        else:
            was = json.loads(meant)
            self.account_mismatch = (
                f"You are signed in as {tokens.user_email} (account {tokens.account_id}), but the queued "
                f"files were meant for {was.get('email')} (account {was.get('account_id')}). Confirm the "
                "destination to upload them into this account, or sign in to the other one."
            )
            await self._halt_everything(None)  # never the other account's leftovers either
            if self._account_poll is None or self._account_poll.done():
                self._account_poll = asyncio.get_running_loop().create_task(self._poll_account())
        if self.account_mismatch != before:
            if self.account_mismatch:
                log.warning("%s", self.account_mismatch)
            self._bus.publish(HealthChanged("account", self.account_mismatch is None, self.account_mismatch))
            self._changed()

    async def _poll_account(self) -> None:
        """``postflow confirm-account`` (another process) may settle it."""
        while self.account_mismatch is not None:
            await asyncio.sleep(POLL_SECONDS)
            await self.check_account()
        self._wake()

    async def _poll_keychain(self) -> None:
        """Another process (``postflow login``) may sign in: pick its tokens up. A sign-in that
        happened while a refresh was in flight is noticed here too."""
        while self.waiting_for_sign_in:
            if self._provider.tokens is not None:
                await self.signed_in()
                return
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._provider.load()
            except PostFlowError as exc:
                log.info("keychain check failed: %s", exc.message)
