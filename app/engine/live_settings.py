"""Which settings apply while PostFlow runs, and how a change is checked before anything moves.

Values are parsed by the same ``SettingSpec`` parsers the config file uses, so the settings
page, config.toml and environment variables accept and refuse exactly the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.errors import ConfigError
from app.core.settings import SETTINGS, SettingSpec

LIVE_SETTINGS = (
    "max_concurrent_files", "parts_per_file", "bandwidth_limit", "stable_seconds", "scan_interval",
    "extensions", "ignore_patterns", "notifications", "discord_events", "discord_coalesce_seconds",
    "discord_summary_time", "machine_name", "quiet_seconds", "check_media", "mirror_moves",
    "bandwidth_schedule", "upload_order", "prevent_sleep", "proxy_url", "pac_url",
)  # fmt: skip
_SPECS: dict[str, SettingSpec] = {s.name: s for s in SETTINGS if s.name in LIVE_SETTINGS}


def parse_live(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Every value checked first: one bad value raises ``ConfigError`` and changes nothing."""
    parsed: dict[str, Any] = {}
    for name, raw in changes.items():
        spec = _SPECS.get(name)
        if spec is None:
            raise ConfigError(
                f"{name!r} cannot be changed while PostFlow runs: expected one of {', '.join(LIVE_SETTINGS)}"
            )
        try:
            parsed[name] = spec.parse(list(raw) if isinstance(raw, tuple) else raw)
        except ValueError as exc:
            raise ConfigError(f"{spec.key} = {raw!r} is invalid: expected {exc}") from None
    return parsed


def config_keys(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Settings attribute names → their dotted config.toml keys."""
    return {_SPECS[name].key: list(v) if isinstance(v, tuple) else v for name, v in parsed.items()}
