"""``postflow login`` / ``postflow logout``: sign-in from a terminal, no Qt.

With a loopback redirect (sandbox, or an ``http://127.0.0.1`` / ``localhost`` redirect URI) a
one-shot listener catches the browser's redirect. Otherwise the user pastes the address the
browser was sent to (Adobe only allows HTTPS or its own scheme for public clients).
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from urllib.parse import urlsplit

import keyring.errors

from app.auth.loopback import LoopbackReceiver
from app.auth.token_store import NO_KEYCHAIN_HELP
from app.composition import Connections, connect
from app.core.errors import AuthError, KeychainError
from app.core.events import EventBus
from app.core.settings import Settings

LOGIN_TIMEOUT = 300.0


def _loopback_target(redirect_uri: str, sandbox: bool) -> tuple[int, str] | None:
    parts = urlsplit(redirect_uri)
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"):
        return parts.port or 0, parts.path or "/callback"
    return (0, "/callback") if sandbox else None


async def _read_pasted_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    if not line.strip():
        raise AuthError("No address was pasted; sign-in was not finished.")
    return line.strip()


def _connect(settings: Settings) -> Connections:
    """Sign-in and Frame.io, with a keychain failure while they start (reading a web client's
    secret) as the usual one-line ``KeychainError``."""
    try:
        return connect(settings, EventBus())
    except keyring.errors.NoKeyringError:
        raise KeychainError(NO_KEYCHAIN_HELP) from None
    except keyring.errors.KeyringError as exc:
        raise KeychainError(f"The keychain refused to read PostFlow's client secret: {exc}") from None


async def login(settings: Settings, open_browser: bool) -> int:
    connections = _connect(settings)
    auth = connections.auth
    receiver: LoopbackReceiver | None = None
    try:
        # Before the browser opens: a keychain that cannot keep the sign-in would otherwise only
        # show up after the user has signed in.
        await asyncio.to_thread(auth.store.check_usable)
        target = _loopback_target(auth.endpoints.redirect_uri, auth.endpoints.sandbox)
        redirect = auth.endpoints.redirect_uri
        if target is not None:
            receiver = LoopbackReceiver("127.0.0.1", target[0], target[1])
            redirect = await receiver.start()
        flow = auth.new_flow(redirect)
        print("Open this address in your browser to sign in with Adobe:", flush=True)
        print(flow.authorize_url, flush=True)
        if open_browser:
            webbrowser.open(flow.authorize_url)
        waiters: list[asyncio.Future[str]] = []
        if receiver is not None:
            waiters.append(asyncio.ensure_future(receiver.wait()))
        if receiver is None or sys.stdin.isatty():
            print("Or paste here the address your browser ended on, then press Enter:", flush=True)
            waiters.append(asyncio.ensure_future(_read_pasted_line()))
        done, pending = await asyncio.wait(waiters, timeout=LOGIN_TIMEOUT, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        if not done:
            raise AuthError("Sign-in timed out after 5 minutes. Run `postflow login` again.")
        if receiver is not None:
            await receiver.close()
        tokens = await auth.finish(flow, done.pop().result())
        print(f"Signed in as {tokens.user_name} <{tokens.user_email}>, account {tokens.account_id}.")
        return 0
    finally:
        if receiver is not None:
            await receiver.close()
        await connections.aclose()


async def logout(settings: Settings) -> int:
    connections = _connect(settings)
    auth = connections.auth
    try:
        await auth.provider.load()
        if auth.provider.tokens is None:
            print("You were not signed in. Nothing to do.")
            return 0
        who = auth.provider.tokens.user_email or "you"
        await auth.sign_out()
        print(f"Signed out {who}. The upload queue is kept and resumes after the next sign-in.")
        return 0
    finally:
        await connections.aclose()
