"""Sign in against the sandbox the way a browser would, without a browser."""

from __future__ import annotations

import os
from typing import Any

import httpx

from app.composition import Connections, connect
from app.core.events import EventBus
from app.core.settings import Settings, load_settings

LOOPBACK = "http://127.0.0.1:9/callback"


def sandbox_settings(sandbox: Any, **env: str) -> Settings:
    """Settings for the sandbox, inside the test's isolated config and data folders."""
    isolated = {k: v for k, v in os.environ.items() if k in ("POSTFLOW_CONFIG_DIR", "POSTFLOW_DATA_DIR")}
    assert len(isolated) == 2, "tests must never touch the user's real PostFlow folders"
    return load_settings(
        environ={**isolated, "POSTFLOW_SANDBOX": "1", "POSTFLOW_SANDBOX_URL": sandbox.url, **env}
    )


async def follow_authorize(url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def signed_in_service(sandbox: Any, bus: EventBus | None = None) -> Connections:
    connections = connect(sandbox_settings(sandbox), bus or EventBus())
    flow = connections.auth.new_flow(LOOPBACK)
    await connections.auth.finish(flow, await follow_authorize(flow.authorize_url))
    return connections
