"""Cursor pagination as Frame.io does it: ``links.next`` keeps only the ``after`` cursor.

Clients must re-send ``page_size``, ``include`` and filters on every page; one that follows
``links.next`` blindly falls back to the default page size, as on the real service.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from aiohttp import web

from app.sandbox.responses import ApiError

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode(cursor: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(422, "Invalid cursor", pointer="/after") from None
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(422, "Invalid cursor", pointer="/after")
    return offset


def page_size(request: web.Request, maximum: int) -> int:
    raw = request.query.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise ApiError(422, "page_size must be an integer", pointer="/page_size") from None
    if not 1 <= size <= maximum:
        raise ApiError(422, f"page_size must be between 1 and {maximum}", pointer="/page_size")
    return size


def paginate(request: web.Request, items: Sequence[T], maximum: int) -> tuple[list[T], dict[str, Any]]:
    """Return the page's items and the ``links`` (plus ``total_count`` when asked)."""
    size = page_size(request, maximum)
    after = request.query.get("after")
    start = _decode(after) if after else 0
    page = list(items[start : start + size])
    end = start + len(page)
    next_link = f"{request.path}?after={_encode(end)}" if end < len(items) else None
    extra: dict[str, Any] = {"links": {"next": next_link}}
    if request.query.get("include_total_count", "").lower() == "true":
        extra["total_count"] = len(items)
    return page, extra
