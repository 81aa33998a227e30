"""Silent refresh, single flight, rotation across restarts, signed-out state, sign-out."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from support_keyrings import MemoryKeyring
from tests_auth_helpers import sandbox_settings, signed_in_service

from app.auth.ims_client import ImsClient
from app.composition import Connections, connect
from app.core.errors import ServiceUnavailable, SignedOut
from app.core.events import AuthState, AuthStateChanged, EventBus


def ims_log(sandbox: Any) -> dict[str, Any]:
    return dict(sandbox.control("/_sandbox/ims"))


async def expire_now(auth: Connections) -> None:
    """Make the held access token look expired to the app (the server still accepts it)."""
    assert auth.provider.tokens is not None
    await auth.provider.adopt(dataclasses.replace(auth.provider.tokens, expires_at=time.time() - 1))


async def test_sign_in_keeps_tokens_and_identity(sandbox: Any, test_keyring: MemoryKeyring) -> None:
    events: list[Any] = []
    bus = EventBus()
    bus.subscribe(events.append)
    auth = await signed_in_service(sandbox, bus)
    try:
        tokens = auth.provider.tokens
        assert tokens is not None and tokens.user_email == "editor@sandbox.postflow.invalid"
        assert tokens.account_id == sandbox.sandbox.default_account_id()
        assert any(service == "PostFlow Sandbox" for service, _ in test_keyring.entries)
        last = events[-1]
        assert isinstance(last, AuthStateChanged) and last.state is AuthState.SIGNED_IN
        assert last.user_name == "Sandbox Editor"
    finally:
        await auth.aclose()


async def test_a_hundred_concurrent_callers_share_one_refresh(sandbox: Any) -> None:
    auth = await signed_in_service(sandbox)
    try:
        await expire_now(auth)
        tokens = await asyncio.gather(*(auth.provider.access_token() for _ in range(100)))
        assert len(set(tokens)) == 1
        assert ims_log(sandbox)["token_requests"].get("refresh_token") == 1
    finally:
        await auth.aclose()


async def test_a_401_refreshes_once_and_replays(sandbox: Any) -> None:
    auth = await signed_in_service(sandbox)
    try:
        assert auth.provider.tokens is not None
        sandbox.http.post(
            "/ims/revoke", data={"client_id": "postflow-sandbox", "token": auth.provider.tokens.access_token}
        )
        me = await auth.frameio.me()
        assert me.email and auth.provider.refresh_count == 1
    finally:
        await auth.aclose()


async def test_stream_of_calls_over_expiring_tokens_never_sees_a_401(sandbox: Any) -> None:
    """3 s tokens, 50 concurrent tasks calling the API for 60 s: no failure, one refresh per expiry."""
    sandbox.control("/_sandbox/settings", {"access_token_lifetime": 3, "rate_limit_scale": 0})
    auth = await signed_in_service(sandbox)
    errors: list[BaseException] = []
    calls = 0
    started = time.monotonic()
    deadline = started + 60

    async def worker() -> None:
        nonlocal calls
        while time.monotonic() < deadline:
            try:
                await auth.frameio.me()
                calls += 1
            except Exception as exc:  # any failure reaching a caller fails the test
                errors.append(exc)

    try:
        await asyncio.gather(*(worker() for _ in range(50)))
        elapsed = time.monotonic() - started  # calls queued before the deadline finish after it
        refreshes = ims_log(sandbox)["token_requests"].get("refresh_token", 0)
        assert errors == []
        assert calls > 100
        assert refreshes == auth.provider.refresh_count
        # A 3 s token is replaced once it is within 0.3 s of expiry: one refresh per 2.7–3 s.
        assert elapsed / 3 - 2 <= refreshes <= elapsed / 2.7 + 2
        # A call answered 401 is replayed once after the refresh; never more than one per refresh.
        replays = sandbox.sandbox.stats["users.show"] - (calls + 1)  # +1: the sign-in's /v4/me
        assert 0 <= replays <= refreshes
        assert auth.provider.state is AuthState.SIGNED_IN
    finally:
        await auth.aclose()


async def test_rotation_survives_a_restart(sandbox: Any, test_keyring: MemoryKeyring) -> None:
    first = await signed_in_service(sandbox)
    await expire_now(first)
    await first.provider.access_token()  # rotates: the old refresh token is now dead
    await first.aclose()
    second = connect(sandbox_settings(sandbox), EventBus())
    try:
        await second.provider.load()
        assert second.provider.state is AuthState.SIGNED_IN
        await expire_now(second)
        await second.provider.access_token()  # works only with the rotated refresh token
        assert ims_log(sandbox)["token_requests"]["refresh_token"] == 2
        assert (await second.frameio.me()).email
    finally:
        await second.aclose()


async def test_revoked_refresh_token_means_signed_out(sandbox: Any, test_keyring: MemoryKeyring) -> None:
    events: list[Any] = []
    bus = EventBus()
    bus.subscribe(events.append)
    auth = await signed_in_service(sandbox, bus)
    try:
        assert auth.provider.tokens is not None and auth.provider.tokens.refresh_token
        sandbox.http.post(
            "/ims/revoke", data={"client_id": "postflow-sandbox", "token": auth.provider.tokens.refresh_token}
        )
        await expire_now(auth)
        with pytest.raises(SignedOut) as info:
            await auth.provider.access_token()
        assert "Sign in again" in info.value.message
        assert events[-1].state is AuthState.SIGNED_OUT and events[-1].reason
        assert test_keyring.entries == {}
    finally:
        await auth.aclose()


async def test_without_refresh_token_expiry_signs_out(sandbox: Any) -> None:
    sandbox.control("/_sandbox/settings", {"issue_refresh_tokens": False})
    auth = await signed_in_service(sandbox)
    try:
        assert auth.provider.tokens is not None and auth.provider.tokens.refresh_token is None
        await expire_now(auth)
        with pytest.raises(SignedOut):
            await auth.provider.access_token()
        assert auth.provider.state is AuthState.SIGNED_OUT
        assert ims_log(sandbox)["token_requests"].get("refresh_token") is None
    finally:
        await auth.aclose()


@pytest.mark.parametrize("kind", ["503", "garbage", "reset"])
async def test_ims_trouble_is_a_clear_retryable_error(sandbox: Any, kind: str) -> None:
    auth = await signed_in_service(sandbox)
    try:
        await expire_now(auth)
        sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": kind}})
        with pytest.raises(ServiceUnavailable) as info:
            await auth.provider.access_token()
        assert info.value.retryable and "PostFlow will try again" in info.value.message
        assert auth.provider.state is AuthState.SIGNED_IN  # not signed out by an outage
        await auth.provider.access_token()  # IMS is back: the refresh goes through
        assert auth.provider.refresh_count == 2
    finally:
        await auth.aclose()


async def test_ims_slow_times_out_with_a_clear_message(sandbox: Any) -> None:
    sandbox.control("/_sandbox/settings", {"stall_seconds": 30})
    sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": "stall"}})
    ims = ImsClient(sandbox.url, "postflow-sandbox", timeout=0.5)
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await ims.refresh("whatever")
        assert "did not answer in time" in info.value.message
    finally:
        await ims.aclose()


async def test_refresh_failure_keeps_using_a_still_valid_token(sandbox: Any) -> None:
    auth = await signed_in_service(sandbox)
    try:
        assert auth.provider.tokens is not None
        current = auth.provider.tokens
        # Inside the refresh margin but not yet expired.
        await auth.provider.adopt(
            dataclasses.replace(current, expires_at=time.time() + 30, issued_at=time.time() - 3600)
        )
        sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": "503"}})
        assert await auth.provider.access_token() == current.access_token
    finally:
        await auth.aclose()


async def test_sign_out_revokes_both_tokens_and_wipes_the_keychain(
    sandbox: Any, test_keyring: MemoryKeyring
) -> None:
    auth = await signed_in_service(sandbox)
    try:
        await auth.auth.sign_out()
        assert test_keyring.entries == {}
        assert sorted(ims_log(sandbox)["revoked"]) == ["access", "refresh"]
        with pytest.raises(SignedOut):
            await auth.provider.access_token()
    finally:
        await auth.aclose()


async def test_signing_out_during_a_refresh_stays_signed_out(
    sandbox: Any, test_keyring: MemoryKeyring
) -> None:
    auth = await signed_in_service(sandbox)
    try:
        await expire_now(auth)
        sandbox.control("/_sandbox/settings", {"stall_seconds": 2})
        sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": "stall"}})
        refreshing = asyncio.ensure_future(auth.provider.access_token())
        while auth.provider.refresh_count == 0:  # until the refresh is waiting on IMS
            await asyncio.sleep(0.01)
        await auth.auth.sign_out()
        with pytest.raises((SignedOut, ServiceUnavailable, asyncio.CancelledError)):
            await refreshing
        assert auth.provider.tokens is None and test_keyring.entries == {}
        await auth.provider.load()
        assert auth.provider.state is AuthState.SIGNED_OUT
    finally:
        await auth.aclose()


class _GatedIms:
    """The real IMS client, whose refresh answers only when the test opens the gate."""

    def __init__(self, real: ImsClient) -> None:
        self._real = real
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def refresh(self, refresh_token: str) -> Any:
        self.started.set()
        await self.gate.wait()
        return await self._real.refresh(refresh_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_a_sign_in_during_a_refresh_that_then_fails_stays_signed_in(sandbox: Any) -> None:
    """Defect 7: the old session's refresh failing late (invalid_grant) must not sign out the
    new session, nor leave callers thinking they are signed out."""
    from tests_auth_helpers import LOOPBACK, follow_authorize

    auth = await signed_in_service(sandbox)
    try:
        old = auth.provider.tokens
        assert old is not None and old.refresh_token
        sandbox.http.post("/ims/revoke", data={"client_id": "postflow-sandbox", "token": old.refresh_token})
        gated = _GatedIms(auth.auth.ims)
        auth.provider._ims = gated  # type: ignore[assignment]
        await expire_now(auth)
        caller = asyncio.ensure_future(auth.provider.access_token())
        await gated.started.wait()  # the refresh is in flight ...
        flow = auth.auth.new_flow(LOOPBACK)
        fresh = await auth.auth.finish(
            flow, await follow_authorize(flow.authorize_url)
        )  # ... and a new sign-in
        gated.gate.set()  # the old refresh now fails with invalid_grant
        assert await caller == fresh.access_token
        assert auth.provider.tokens is not None and auth.provider.tokens.access_token == fresh.access_token
        assert auth.store.load() is not None  # the keychain still holds the new sign-in
    finally:
        await auth.aclose()


async def test_a_sign_in_while_a_refresh_is_being_saved_is_what_the_keychain_keeps(sandbox: Any) -> None:
    """The refresh's keychain write is slow (a macOS prompt); a new sign-in lands meanwhile. The
    keychain must end with the new sign-in, and callers get its token."""
    import threading

    from tests_auth_helpers import LOOPBACK, follow_authorize

    auth = await signed_in_service(sandbox)
    try:
        real_save = auth.store.save
        entered, release = threading.Event(), threading.Event()
        calls = {"n": 0}

        def slow_first_save(tokens: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                entered.set()
                release.wait(30)
            real_save(tokens)

        await expire_now(auth)
        auth.store.save = slow_first_save  # type: ignore[method-assign]
        caller = asyncio.ensure_future(auth.provider.access_token())
        await asyncio.to_thread(entered.wait, 30)  # the refresh is saving, slowly
        refreshed = auth.provider.tokens
        flow = auth.auth.new_flow(LOOPBACK)
        finishing = asyncio.ensure_future(auth.auth.finish(flow, await follow_authorize(flow.authorize_url)))
        while auth.provider.tokens is refreshed:  # the new sign-in is adopted, its write waiting
            await asyncio.sleep(0.01)
        release.set()
        fresh = await finishing
        assert await caller == fresh.access_token
        stored = auth.store.load()
        assert stored is not None and stored.access_token == fresh.access_token
        assert auth.provider.tokens is not None and auth.provider.tokens.access_token == fresh.access_token
    finally:
        await auth.aclose()
