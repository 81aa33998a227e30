"""What a presigned part URL says about itself. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit


def url_expiry(url: str) -> float | None:
    """Epoch seconds at which a presigned URL stops working (X-Amz-Date + X-Amz-Expires)."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    try:
        start = datetime.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return start.timestamp() + int(query["x-amz-expires"])
    except (KeyError, ValueError):
        return None


def earliest_expiry(urls: Iterable[str]) -> float | None:
    expiries = [e for e in (url_expiry(u) for u in urls) if e is not None]
    return min(expiries) if expiries else None
