"""What the Frame.io client needs from sign-in: a token, a fresh one after a 401, and a way
to say "this sign-in is dead". A protocol, so ``app.frameio`` never imports ``app.auth``:
the composition root hands the token provider in."""

from __future__ import annotations

from typing import Protocol


class TokenSource(Protocol):
    async def access_token(self) -> str: ...

    async def refresh_after_401(self, rejected: str) -> str: ...

    async def sign_out(self, reason: str | None = None, *, revoke: bool = True) -> None: ...
