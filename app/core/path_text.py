"""Names from disk as text that SQLite, JSON and Frame.io can carry."""

from __future__ import annotations


def text_form(name: str) -> str:
    """Linux and SMB volumes allow names whose bytes are not UTF-8; Python keeps those bytes as
    lone surrogates, which SQLite and JSON refuse (one such file would fail a whole batch of
    inserts). They become U+FFFD, which the name check then reports plainly."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return name
