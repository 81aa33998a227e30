"""Sizes, speeds and durations as an editor reads them (Finder's decimal units), for every
client: the tray, the window, ``postflow status``, Discord messages."""

from __future__ import annotations


def format_bytes(count: float) -> str:
    """Decimal units, as Finder and Frame.io show sizes."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}".replace(".0 ", " ")
        count /= 1000
    raise AssertionError("unreachable")


def format_speed(bytes_per_second: float) -> str:
    return f"{format_bytes(bytes_per_second)}/s"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return "less than a minute" if seconds >= 5 else "a few seconds"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
