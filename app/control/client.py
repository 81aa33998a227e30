"""The ``postflow`` commands' side of the control endpoint: find the running app, ask it.

``connect`` returns None when PostFlow is not running (no endpoint file, or one a crash left
behind that nothing answers on), so a command can fall back or say so plainly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.control import endpoint as ep
from app.core.errors import PostFlowError

TIMEOUT = httpx.Timeout(30.0, connect=3.0)


class ControlError(PostFlowError):
    title = "PostFlow refused"


class ControlClient:
    def __init__(self, endpoint: ep.Endpoint, secret: str) -> None:
        transport = httpx.HTTPTransport(uds=endpoint.address) if endpoint.transport == "unix" else None
        self.endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.base_url, transport=transport, timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {secret}"}, trust_env=False,
        )  # fmt: skip

    @classmethod
    def connect(cls, data_dir: Path) -> ControlClient | None:
        endpoint = ep.read(data_dir)
        secret = ep.read_secret(data_dir)
        if endpoint is None or secret is None:
            return None
        client = cls(endpoint, secret)
        try:
            client._http.get("/v1/queue", timeout=httpx.Timeout(5.0, connect=3.0))
        except httpx.TransportError:
            client.close()
            return None  # a stale endpoint file: nothing listens there any more
        return client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return self._answer(lambda: self._http.get(path, params=params))

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._answer(lambda: self._http.post(path, json=body or {}))

    def text(self, path: str) -> str:
        response = self._send(lambda: self._http.get(path))
        self._raise_for(response)
        return response.text

    def _answer(self, send: Any) -> dict[str, Any]:
        response = self._send(send)
        self._raise_for(response)
        doc = response.json()
        return doc if isinstance(doc, dict) else {}

    @staticmethod
    def _send(send: Any) -> httpx.Response:
        try:
            response: httpx.Response = send()
        except httpx.TimeoutException:
            raise PostFlowError("PostFlow is running but did not answer within 30 s.") from None
        except httpx.TransportError as exc:
            raise PostFlowError(f"PostFlow stopped answering ({type(exc).__name__}).") from None
        return response

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}"
        raise ControlError(message)
