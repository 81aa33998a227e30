"""Sign in against the sandbox the way a browser would, without a browser."""

from __future__ import annotations

from typing import Any

import httpx

from app.auth.service import AuthService
from app.core.events import EventBus
from app.core.settings import Settings, load_settings

LOOPBACK = "http://127.0.0.1:9/callback"


def sandbox_settings(sandbox: Any, **env: str) -> Settings:
    return load_settings(environ={"POSTFLOW_SANDBOX": "1", "POSTFLOW_SANDBOX_URL": sandbox.url, **env})


async def follow_authorize(url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def signed_in_service(sandbox: Any, bus: EventBus | None = None) -> AuthService:
    auth = AuthService(sandbox_settings(sandbox), bus or EventBus())
    flow = auth.new_flow(LOOPBACK)
    await auth.finish(flow, await follow_authorize(flow.authorize_url))
    return auth
