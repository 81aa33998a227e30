"""httpx auth flow for Frame.io: bearer from the provider; on a 401, refresh once and replay."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx

from app.frameio.token_source import TokenSource


class BearerAuth(httpx.Auth):
    def __init__(self, provider: TokenSource) -> None:
        self._provider = provider

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth is async only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._provider.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = await self._provider.refresh_after_401(token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
