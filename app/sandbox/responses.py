"""Frame.io-shaped JSON responses and the ``errors`` array every failure carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web


class ApiError(Exception):
    """Raised by handlers; turned into ``{"errors": [{"detail", "title", "source"}]}``."""

    def __init__(
        self, status: int, detail: str, *, title: str | None = None, pointer: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.pointer = pointer


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def error_body(err: ApiError) -> dict[str, Any]:
    item: dict[str, Any] = {"detail": err.detail, "title": err.title or _TITLES.get(err.status, "")}
    if err.pointer is not None:
        item["source"] = {"pointer": err.pointer}
    return {"errors": [item]}


def error_response(err: ApiError, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response(error_body(err), err.status, headers)


def s3_error(status: int, code: str, message: str) -> web.Response:
    """An S3-style XML error, as presigned storage URLs answer."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        "<RequestId>SANDBOX</RequestId><HostId>sandbox</HostId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")
