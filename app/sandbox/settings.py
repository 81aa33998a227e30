"""``/_sandbox/settings``: the knobs a test or the demo may turn on a running sandbox.

Each setting has one type and one lower bound, checked before anything is applied: a request
with one bad value changes nothing and answers 400 with a sentence naming the setting, instead
of half-applying or failing with a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.sandbox.context import Sandbox

Value = bool | int | float


class SettingError(ValueError):
    """A setting the sandbox does not know, or a value it cannot take; the text says which."""


@dataclass(frozen=True)
class Setting:
    kind: type[bool] | type[int] | type[float]
    get: Callable[[Sandbox], Value]
    put: Callable[[Sandbox, Any], None]
    minimum: float | None = None


def _config(name: str, minimum: float | None, kind: type[int] | type[float] | type[bool]) -> Setting:
    """A setting that is a plain ``SandboxConfig`` field."""

    def put(sb: Sandbox, value: Any) -> None:
        setattr(sb.config, name, value)

    return Setting(kind, lambda sb: getattr(sb.config, name), put, minimum)


def _set_refresh(sb: Sandbox, value: Any) -> None:
    sb.issue_refresh_tokens = value


def _set_retry_after(sb: Sandbox, value: Any) -> None:
    sb.retry_after_header = value


def _set_scale(sb: Sandbox, value: Any) -> None:
    sb.limiter.scale = value
    sb.limiter.reset()


def _set_window_scale(sb: Sandbox, value: Any) -> None:
    sb.limiter.window_scale = value
    sb.limiter.reset()


def _set_fail_next(sb: Sandbox, value: Any) -> None:
    sb.fail_next_uploads = value


def _set_fail_transcodes(sb: Sandbox, value: Any) -> None:
    sb.fail_next_transcodes = value


SETTINGS: Mapping[str, Setting] = {
    "access_token_lifetime": _config("access_token_lifetime", 0, float),
    "refresh_token_lifetime": _config("refresh_token_lifetime", 0, float),
    "issue_refresh_tokens": Setting(bool, lambda sb: sb.issue_refresh_tokens, _set_refresh),
    "rate_limit_scale": Setting(float, lambda sb: sb.limiter.scale, _set_scale, 0),
    "rate_window_scale": Setting(float, lambda sb: sb.limiter.window_scale, _set_window_scale, 0.001),
    "retry_after_header": Setting(bool, lambda sb: sb.retry_after_header, _set_retry_after),
    "part_size": _config("part_size", 1, int),
    "part_url_lifetime": _config("part_url_lifetime", 0, float),
    "stall_seconds": _config("stall_seconds", 0, float),
    "transcode_delay": _config("transcode_delay", 0, float),
    "transcode_bytes_per_second": _config("transcode_bytes_per_second", 0, float),
    "fail_next_transcodes": Setting(int, lambda sb: sb.fail_next_transcodes, _set_fail_transcodes, 0),
    "assembly_delay": _config("assembly_delay", 0, float),
    "fail_next_uploads": Setting(int, lambda sb: sb.fail_next_uploads, _set_fail_next, 0),
    "keep_bytes": _config("keep_bytes", None, bool),
    "listing_lag": _config("listing_lag", 0, float),
    "remote_fetch_chunk": _config("remote_fetch_chunk", 0, int),
    "remote_fetch_parallel": _config("remote_fetch_parallel", 1, int),
    "remote_fetch_retries": _config("remote_fetch_retries", 0, int),
    "remote_fetch_timeout": _config("remote_fetch_timeout", 0.01, float),
}

_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number"}


def _check(key: str, setting: Setting, value: Any) -> Value:
    """The value as the setting's type; JSON ``true`` is not a number, ``1.5`` not an integer."""
    kind = setting.kind
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok or (kind is float and not math.isfinite(value)):
        raise SettingError(f"setting {key!r} must be {_KIND_NAMES[kind]}, got {value!r}")
    if setting.minimum is not None and value < setting.minimum:
        raise SettingError(f"setting {key!r} must be at least {setting.minimum:g}, got {value!r}")
    checked: Value = value
    return checked


def parse(doc: Mapping[str, Any]) -> dict[str, Value]:
    """Every value checked, or SettingError for the first bad one."""
    out: dict[str, Value] = {}
    for key, value in doc.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise SettingError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        out[key] = _check(key, setting, value)
    return out


def apply(sb: Sandbox, values: Mapping[str, Value]) -> None:
    for key, value in values.items():
        SETTINGS[key].put(sb, value)


def describe(sb: Sandbox) -> dict[str, Value]:
    return {key: setting.get(sb) for key, setting in SETTINGS.items()}
