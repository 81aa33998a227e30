"""One Discord webhook, spoken to as Discord documents it: what an answer means for the sender.

- 2xx: posted; ``x-ratelimit-remaining: 0`` means wait ``x-ratelimit-reset-after`` first.
- 429: wait ``retry_after`` (seconds, in the body; ``Retry-After`` as a fallback), then again.
- 401 / 404: the webhook was deleted or its token is wrong. Nothing heals that but a new
  address, so the sender stops (no retry storm) and the health says what to do.
- other 4xx: Discord refuses this message; sending it again cannot help.
- 5xx, network: try later, with growing waits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(15.0, connect=10.0)


@dataclass(frozen=True)
class Answer:
    outcome: str  # "sent", "rate_limited", "gone", "refused", "later"
    wait: float = 0.0  # seconds before the next request to this webhook
    detail: str = ""


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _detail(response: httpx.Response) -> str:
    try:
        doc = response.json()
        return f"{doc.get('message', '')} (code {doc.get('code', '?')})".strip()
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


def read_answer(response: httpx.Response) -> Answer:
    status = response.status_code
    headers = response.headers
    if status < 300:
        wait = 0.0
        if headers.get("x-ratelimit-remaining") == "0":
            wait = _float(headers.get("x-ratelimit-reset-after")) or 1.0
        return Answer("sent", wait)
    if status == 429:
        retry_after = None
        with contextlib.suppress(ValueError, AttributeError):
            retry_after = _float(response.json().get("retry_after"))
        if retry_after is None:
            retry_after = _float(headers.get("retry-after"))
        return Answer("rate_limited", retry_after if retry_after is not None else 5.0, "rate limited")
    if status in (401, 403, 404):
        return Answer("gone", 0.0, f"HTTP {status}: {_detail(response)}")
    if status < 500:
        return Answer("refused", 0.0, f"HTTP {status}: {_detail(response)}")
    return Answer("later", 0.0, f"HTTP {status}")


class DiscordWebhook:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def post(self, url: str, payload: dict[str, Any]) -> Answer:
        try:
            response = await self._http.post(url, params={"wait": "true"}, json=payload)
        except httpx.HTTPError as exc:  # unreachable, cut off, or an answer that is not HTTP
            return Answer("later", 0.0, f"Discord cannot be reached ({type(exc).__name__})")
        return read_answer(response)

    async def check(self, url: str) -> Answer:
        """Does the webhook still exist? (``GET`` with its token: Discord answers its name.)"""
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            return Answer("later", 0.0, f"Discord cannot be reached ({type(exc).__name__})")
        if response.status_code < 300:
            try:
                name = str(response.json().get("name") or "")
            except (ValueError, AttributeError):
                name = ""
            return Answer("sent", 0.0, name)
        return read_answer(response)
