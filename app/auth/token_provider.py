"""Hands out a valid access token: refreshes ahead of expiry and after a 401, one at a time.

One refresh in flight at most (single flight): 100 callers that need a fresh token share one
request to IMS. ``invalid_grant`` or a missing refresh token at expiry mean "signed out": the
keychain is wiped, an ``AuthStateChanged`` event is published and callers get ``SignedOut``.
IMS being down is not "signed out": the current token is used while it still works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from app.auth.ims_client import ImsClient
from app.auth.token_store import TokenStore
from app.auth.tokens import TokenSet
from app.core.errors import KeychainError, ServiceUnavailable, SignedOut
from app.core.events import AuthState, AuthStateChanged, EventBus
from app.core.logging_setup import SECRETS

log = logging.getLogger(__name__)
REFRESH_MARGIN = 60.0  # refresh about a minute before expiry (BRIEF §4)


class TokenProvider:
    def __init__(
        self,
        ims: ImsClient,
        store: TokenStore,
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN,
    ) -> None:
        self._ims = ims
        self._store = store
        self._bus = bus
        self._clock = clock
        self._margin = margin
        self._tokens: TokenSet | None = None
        self._keychain_lock = threading.Lock()
        self._refresh_task: asyncio.Task[TokenSet] | None = None
        self.refresh_count = 0
        self._announced = False

    @property
    def tokens(self) -> TokenSet | None:
        return self._tokens

    @property
    def state(self) -> AuthState:
        return AuthState.SIGNED_IN if self._tokens is not None else AuthState.SIGNED_OUT

    async def load(self) -> None:
        """Read the keychain (in a thread: it can block on a macOS prompt)."""
        before = self.state
        self._tokens = await asyncio.to_thread(self._store.load)
        if self._tokens is not None:
            SECRETS.add(self._tokens.access_token, self._tokens.refresh_token)
        if self.state is not before or not self._announced:
            self._announce()

    async def adopt(self, tokens: TokenSet, *, announce: bool = True) -> None:
        """A fresh sign-in: keep it and (once its account is known) tell everyone."""
        SECRETS.add(tokens.access_token, tokens.refresh_token)
        previous, self._tokens = self._tokens, tokens
        try:
            await asyncio.to_thread(self._write_keychain)
        except BaseException:
            if self._tokens is tokens:
                self._tokens = previous
            raise
        if announce:
            self._announce()

    async def access_token(self) -> str:
        tokens = self._require()
        margin = min(self._margin, tokens.lifetime * 0.1)  # 60 s for a day-long token
        if not tokens.expires_within(margin, self._clock()):
            return tokens.access_token
        try:
            return (await self._refresh()).access_token
        except ServiceUnavailable:
            if not tokens.expires_within(0, self._clock()):
                log.info("token refresh failed, the current token is still valid for now")
                return tokens.access_token
            raise

    async def refresh_after_401(self, rejected: str) -> str:
        """The API refused ``rejected``: refresh once, unless someone already did."""
        tokens = self._require()
        if tokens.access_token != rejected:
            return tokens.access_token
        return (await self._refresh()).access_token

    async def sign_out(self, reason: str | None = None, *, revoke: bool = True) -> None:
        """Forget locally first (keychain, then any refresh in flight), then revoke remotely:
        a slow revoke or a refresh finishing late must never bring the session back."""
        tokens = self._tokens
        self._tokens = None
        refreshing = self._refresh_task
        if refreshing is not None and not refreshing.done() and refreshing is not asyncio.current_task():
            refreshing.cancel()
        await asyncio.to_thread(self._write_keychain)
        self._announce(reason)
        if revoke and tokens is not None:
            for token, kind in (
                (tokens.access_token, "access_token"),
                (tokens.refresh_token, "refresh_token"),
            ):
                if token:
                    try:
                        await self._ims.revoke(token, kind)
                    except Exception as exc:  # best effort: the local wipe is what protects the user
                        log.info("could not revoke the %s: %s", kind, exc)

    # ---- internals ----
    def _require(self) -> TokenSet:
        if self._tokens is None:
            raise SignedOut("You are signed out of Adobe. Sign in to continue uploading.")
        return self._tokens

    def _refresh(self) -> asyncio.Future[TokenSet]:
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._do_refresh())
        return asyncio.shield(self._refresh_task)

    async def _do_refresh(self) -> TokenSet:
        current = self._require()
        if not current.refresh_token:
            await self.sign_out("Your Adobe session has expired. Sign in again.", revoke=False)
            raise SignedOut("Your Adobe session has expired. Sign in again to continue uploading.")
        self.refresh_count += 1
        try:
            fresh = await self._ims.refresh(current.refresh_token)
        except SignedOut as exc:
            if self._tokens is not current:  # a new sign-in arrived meanwhile: it stands
                return self._after_new_sign_in(exc)
            await self.sign_out(exc.message, revoke=False)
            raise
        fresh = fresh.with_identity(current.account_id, current.user_name, current.user_email)
        SECRETS.add(fresh.access_token, fresh.refresh_token)
        if self._tokens is not current:  # signed out (or in again) meanwhile: keep out of it
            return self._after_new_sign_in(SignedOut("You signed out while the sign-in was being renewed."))
        self._tokens = fresh  # in memory first: a keychain hiccup must not lose the rotated token
        try:
            await asyncio.to_thread(self._write_keychain)
        except KeychainError as exc:
            log.warning("the renewed sign-in could not be saved to the keychain: %s", exc.message)
        if self._tokens is not fresh:  # signed out, or in again, during the save: that one stands
            return self._after_new_sign_in(SignedOut("You signed out while the sign-in was being renewed."))
        log.info("access token refreshed")
        return fresh

    def _write_keychain(self) -> None:
        """Blocking: make the keychain say what memory says *now*. Writes are serialised and
        each reads the latest state, so the last one to run leaves the latest sign-in (or
        none), whatever order a refresh, a new sign-in and a sign-out finished in."""
        with self._keychain_lock:
            tokens = self._tokens
            if tokens is None:
                self._store.clear()
            else:
                self._store.save(tokens)

    def _after_new_sign_in(self, otherwise: SignedOut) -> TokenSet:
        """A refresh of the old session finished after a new sign-in: callers get the new one."""
        if self._tokens is None:
            raise otherwise
        return self._tokens

    def _announce(self, reason: str | None = None) -> None:
        self._announced = True
        t = self._tokens
        if t is None:
            self._bus.publish(AuthStateChanged(AuthState.SIGNED_OUT, reason=reason))
        else:
            self._bus.publish(AuthStateChanged(AuthState.SIGNED_IN, t.user_name, t.user_email, t.account_id))
