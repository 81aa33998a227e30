"""docs/configuration.md names every setting the code knows."""

from __future__ import annotations

from pathlib import Path

from app.core.settings import SETTINGS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_configuration_reference_lists_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [s.key for s in SETTINGS if f"`{s.key}`" not in text]
    missing += [v for s in SETTINGS for v in s.env if v not in text]
    assert missing == []
