"""How an injected fault looks on the wire, per scope."""

from __future__ import annotations

import asyncio

from aiohttp import web

from app.sandbox.context import Sandbox
from app.sandbox.responses import ApiError, error_response, json_response, s3_error


class ConnectionDropped(Exception):
    """Raised after the transport was aborted: no response must be written."""


async def drop_connection(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
    raise ConnectionDropped


async def fault_response(
    sb: Sandbox, request: web.Request, scope: str, kind: str, operation: str = ""
) -> web.Response:
    if kind == "stall":
        await asyncio.sleep(sb.config.stall_seconds)
        await drop_connection(request)
    if kind == "reset":
        if scope == "parts" and request.can_read_body:
            await request.content.read(64 * 1024)  # die mid-upload, as Wi-Fi does
        await drop_connection(request)
    if kind in ("lost", "lost_late"):  # outside the API, where the work is not split from the answer
        await drop_connection(request)
    if kind == "garbage":
        return web.Response(status=200, text="<html><body>Gateway says hi</body></html>",
                            content_type="text/html")  # fmt: skip
    status = int(kind)
    if scope == "parts":
        if status == 400:
            return s3_error(400, "InvalidRequest", "The request was refused (injected).")
        if status == 500:
            return s3_error(500, "InternalError", "We encountered an internal error.")
        return s3_error(503, "SlowDown", "Please reduce your request rate.")
    if scope == "ims":
        return json_response({"error": "server_error", "error_description": f"injected {kind}"}, status)
    if scope == "discord":
        if status == 429:
            return json_response(
                {"message": "You are being rate limited.", "retry_after": 0.2, "global": False},
                429, {"Retry-After": "1"},
            )  # fmt: skip
        return json_response({"message": "Internal Server Error", "code": 0}, status)
    detail = {
        400: "Bad request",
        429: "Too many requests",
        500: "Internal server error",
        503: "Service unavailable",
    }
    remaining = 0 if status == 429 else None
    headers = sb.limiter.nominal_headers(operation, remaining)
    return error_response(ApiError(status, detail[status]), headers)
