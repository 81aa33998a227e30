"""The sign-in popup against the sandbox's real authorize page, in a real QtWebEngine view."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from support_keyrings import MemoryKeyring
from tests_auth_helpers import sandbox_settings

from app.composition import Connections, connect
from app.core.errors import AuthError, SignInCancelled
from app.core.events import EventBus
from app.gui.signin import sign_in_with_popup
from app.gui.signin_window import SignInWindow

HTTPS_REDIRECT = "https://localhost:8765/callback"


def _service(sandbox: Any) -> Connections:
    return connect(sandbox_settings(sandbox, POSTFLOW_REDIRECT_URI=HTTPS_REDIRECT), EventBus())


async def test_popup_catches_the_https_loopback_redirect_and_stores_tokens(
    sandbox: Any, qapp: Any, test_keyring: MemoryKeyring
) -> None:
    auth = _service(sandbox)
    try:
        tokens = await asyncio.wait_for(sign_in_with_popup(auth.auth), 60)
        assert tokens.user_email == "editor@sandbox.postflow.invalid"
        assert any(service == "PostFlow Sandbox" for service, _ in test_keyring.entries)
        stats = sandbox.control("/_sandbox/ims")["token_requests"]
        assert stats == {"authorization_code": 1}
    finally:
        await auth.aclose()


async def test_wrong_state_is_refused_and_nothing_is_stored(
    sandbox: Any, qapp: Any, test_keyring: MemoryKeyring
) -> None:
    auth = _service(sandbox)
    try:
        ours = auth.auth.new_flow()
        forged = auth.auth.new_flow()  # another attempt's URL carries another state
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        window = SignInWindow(forged.authorize_url, ours.matches_redirect)
        window.redirect_caught.connect(answer.set_result)
        window.show()
        url = await asyncio.wait_for(answer, 60)
        with pytest.raises(AuthError) as info:
            await auth.auth.finish(ours, url)
        assert "state mismatch" in info.value.message
        assert test_keyring.entries == {}
        assert sandbox.control("/_sandbox/ims")["token_requests"] == {}
        window.deleteLater()
    finally:
        await auth.aclose()


async def test_closing_the_window_cancels_quietly(
    sandbox: Any, qapp: Any, test_keyring: MemoryKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.control("/_sandbox/settings", {"stall_seconds": 30})
    sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": "stall"}})  # page never loads
    auth = _service(sandbox)
    caplog.set_level(logging.INFO)
    try:
        task = asyncio.ensure_future(sign_in_with_popup(auth.auth))
        window = None
        while window is None:  # wait for the window to appear, then close it like a user
            await asyncio.sleep(0.01)
            window = next(
                (w for w in qapp.topLevelWidgets() if isinstance(w, SignInWindow) and w.isVisible()), None
            )
        window.close()
        with pytest.raises(SignInCancelled) as info:
            await asyncio.wait_for(task, 30)
        assert info.value.message == "Sign-in cancelled."
        assert test_keyring.entries == {}
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        await auth.aclose()
