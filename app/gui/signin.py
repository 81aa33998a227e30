"""Await a sign-in through the popup from a coroutine on the qasync loop (no nested exec())."""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QWidget

from app.auth.service import AuthService
from app.auth.tokens import TokenSet
from app.core.errors import SignInCancelled
from app.gui.signin_window import SignInWindow


async def sign_in_with_popup(auth: AuthService, parent: QWidget | None = None) -> TokenSet:
    flow = auth.new_flow()
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    window = SignInWindow(flow.authorize_url, flow.matches_redirect, parent)

    def on_redirect(url: str) -> None:
        if not answer.done():
            answer.set_result(url)

    def on_cancel() -> None:
        if not answer.done():
            answer.set_exception(SignInCancelled("Sign-in cancelled."))

    window.redirect_caught.connect(on_redirect)
    window.cancelled.connect(on_cancel)
    window.show()
    try:
        url = await answer
    finally:
        window.close()
        window.deleteLater()
    return await auth.finish(flow, url)
