"""Frame.io failures, with the detail from its ``errors`` array in words a user can act on."""

from __future__ import annotations

import httpx

from app.core.errors import ServiceError


class FrameioError(ServiceError):
    title = "Frame.io error"


class Forbidden(FrameioError):
    title = "Frame.io refused access"


class NotFound(FrameioError):
    title = "Not found on Frame.io"


class Rejected(FrameioError):
    """400/422: Frame.io refused what we sent (a bad name, or our bug)."""

    title = "Frame.io refused the request"


class OutcomeUnknown(FrameioError):
    """A non-idempotent call may or may not have happened (lost response): check before redoing."""

    title = "Frame.io did not confirm"
    retryable = True


def detail_of(response: httpx.Response) -> str:
    try:
        doc = response.json()
        items = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(items, list) and items:
            parts = []
            for item in items[:3]:
                detail = str(item.get("detail") or item.get("title") or "")
                pointer = (item.get("source") or {}).get("pointer")
                parts.append(f"{detail} ({pointer})" if pointer else detail)
            return "; ".join(p for p in parts if p)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code}"
