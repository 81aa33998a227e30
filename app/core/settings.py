"""One typed settings object: defaults, then the TOML file, then environment, then CLI flags.

Every setting is declared once in ``SETTINGS`` with its TOML key, its environment variables and
its parser, so the loader, the error messages and docs/configuration.md cannot drift apart.
Secrets never live here: tokens, client secrets and webhook URLs belong to the keychain.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.core.bandwidth_schedule import parse_rules
from app.core.errors import ConfigError
from app.core.jobs import WatchRoot
from app.core.naming import PRESETS, check_template, compile_rules
from app.core.paths import AppPaths, resolve_paths
from app.core.roots import make_root

DEFAULT_API_URL = "https://api.frame.io"
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
DEFAULT_SCOPES = ("openid", "email", "profile", "offline_access", "additional_info.roles")
SANDBOX_CLIENT_ID = "postflow-sandbox"
CREDENTIAL_TYPES = ("spa", "native", "web")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_EXTENSIONS = (
    ".mov", ".mp4", ".mxf", ".m4v", ".avi", ".mkv", ".r3d", ".braw", ".ari",
    ".wav", ".aif", ".aiff", ".mp3", ".m4a",
    ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".dpx", ".psd", ".pdf",
)  # fmt: skip
DEFAULT_IGNORE = (
    "*.tmp", "*.part", ".*", ".DS_Store", "._*", "*.crdownload", "*~",
    # render temporaries and caches of the editing tools (files and folders)
    "*.prtemp", "*.aep.tmp", "*.tmp.*", "~*", "*.pek", "*.cfa", "*.ims", "*.mcdb", "*.prmdc", "*.prproj",
    "Adobe Premiere Pro Auto-Save", "Adobe Premiere Pro Video Previews", "Adobe Premiere Pro Audio Previews",
    "Adobe After Effects Auto-Save", "Media Cache", "Media Cache Files", "Peak Files",
    "CacheClip", "OptimizedMedia", ".gallery", "Avid Attic", "*.pmr", "*.mdb", "*.avb", "*.avb.tmp",
    "*.resolve.tmp", "*.drp.tmp",
)  # fmt: skip
DISCORD_EVENTS = ("uploaded", "ready", "failed", "signin", "summary")
DEFAULT_DISCORD_EVENTS = ("ready", "failed", "signin", "summary")


@dataclass(frozen=True)
class Settings:
    """Everything a user or administrator can set. Frozen: change it with ``replace``."""

    api_url: str = DEFAULT_API_URL
    ims_url: str = DEFAULT_IMS_URL
    client_id: str = ""
    credential_type: str = "spa"
    redirect_uri: str = "https://localhost:8765/callback"
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    account_id: str = ""
    sandbox: bool = False
    sandbox_url: str = ""
    keyring_backend: str = ""
    log_level: str = "INFO"
    stable_seconds: float = 30.0
    scan_interval: float = 15.0
    quiet_seconds: float = 3.0
    check_media: bool = True
    use_events: bool = True
    max_volume_reads: int = 4
    mirror_moves: bool = False
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    ignore_patterns: tuple[str, ...] = DEFAULT_IGNORE
    max_concurrent_files: int = 2
    parts_per_file: int = 4
    bandwidth_limit: int = 0
    bandwidth_schedule: tuple[str, ...] = ()
    upload_order: str = "oldest"
    prevent_sleep: bool = True
    part_timeout: float = 120.0
    listing_settle: float = 30.0
    notifications: bool = True
    min_free_mb: int = 500
    health_interval: float = 60.0
    control_port: int = 0
    discord_events: tuple[str, ...] = DEFAULT_DISCORD_EVENTS
    discord_coalesce_seconds: float = 10.0
    discord_summary_time: str = "18:00"
    machine_name: str = ""
    cloudflared_path: str = ""
    update_feed_url: str = ""
    proxy_url: str = ""
    pac_url: str = ""
    pull_link_lifetime: float = 24 * 3600.0
    pull_stall_seconds: float = 300.0
    pull_ready_timeout: float = 30.0
    watch_roots: tuple[WatchRoot, ...] = ()
    paths: AppPaths = field(default_factory=resolve_paths)

    @property
    def effective_client_id(self) -> str:
        return self.client_id or (SANDBOX_CLIENT_ID if self.sandbox else "")


# ---- parsers: each returns the typed value or raises ValueError("what is expected") ----


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("an http:// or https:// URL")
    return value.rstrip("/")


def _optional_url(value: Any) -> str:
    """Empty, or an http(s) address with a host a client can open."""
    if isinstance(value, str) and not value.strip():
        return ""
    url = _url(value.strip() if isinstance(value, str) else value)
    try:
        parts = urlsplit(url)
        ok = bool(parts.hostname) and parts.port != -1
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("an http:// or https:// URL with a host, e.g. https://example.com/feed.json")
    return url


def _pac_url(value: Any) -> str:
    """Empty, or where a proxy script is: an http(s) address, or a file:// path. No user name or
    password in it: it is shown and logged."""
    if isinstance(value, str) and "@" in urlsplit(value.strip()).netloc:
        raise ValueError("a proxy script address without user name or password (it is shown and logged)")
    if isinstance(value, str) and value.strip().lower().startswith("file:"):
        parts = urlsplit(value.strip())
        if not parts.path or parts.netloc not in ("", "localhost"):
            raise ValueError("a proxy script address: http://…/proxy.pac, or file:///path/to/proxy.pac")
        return value.strip()
    try:
        return _optional_url(value)
    except ValueError:
        raise ValueError("a proxy script address: http://…/proxy.pac, or file:///path/to/proxy.pac") from None


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value.strip()


def _show_option(option: str) -> str:
    """An empty option is written so it can be seen: ``"" (automatic)``, not a stray comma."""
    return option if option else '"" (automatic)'


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in options:
            raise ValueError("one of " + ", ".join(_show_option(o) for o in options))
        return text

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _port(value: Any) -> int:
    port: int = _number(0, integer=True)(value)
    if port > 65535:
        raise ValueError("a port number from 0 to 65535")
    return port


MAX_COUNT = 2**53  # whole numbers above this lose precision once used as floats
MAX_SECONDS = 1_000_000  # about 11 days: far below every platform's timeout limit


def _show_number(number: float) -> str:
    return f"{number:g}" if number < 1e6 else str(int(number))


def _to_number(value: str | float, integer: bool) -> int | float:
    """Whole-number text as an exact ``int`` (any size), anything else as a ``float``."""
    if integer and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    return float(value)  # "8.0" and "1e3" are whole numbers too


def _number(minimum: float, integer: bool = False) -> Callable[[Any], Any]:
    """A finite number in [minimum, MAX_COUNT] (whole numbers) or [minimum, MAX_SECONDS] (seconds).

    TOML allows ``nan`` and ``inf`` and integers of any size; ``float()`` takes "nan", "inf" and
    "1e400": none of them is a usable count or duration, so all are refused here, not later.
    """
    kind = "a whole number" if integer else "a number"
    maximum = MAX_COUNT if integer else MAX_SECONDS
    expected = f"{kind} ≥ {_show_number(minimum)}"

    def parse(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(expected)
        try:
            number = value if isinstance(value, int) else _to_number(value, integer)
        except ValueError:
            raise ValueError(expected) from None
        if isinstance(number, float):
            if not math.isfinite(number):
                raise ValueError(expected if integer else f"a finite number ≥ {_show_number(minimum)}")
            if integer:
                if not number.is_integer():
                    raise ValueError(expected)  # 2.5 parts is not 2 parts
                number = int(number)
        if number < minimum:
            raise ValueError(f"a number ≥ {_show_number(minimum)}")
        if number > maximum:
            raise ValueError(f"a number ≤ {_show_number(maximum)}")
        return number if integer else float(number)

    return parse


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ValueError("a list of strings (or a comma-separated string)")
    return tuple(v for v in items if v)


def _proxy(value: Any) -> str:
    """An http(s) proxy address without credentials (they belong in the keychain)."""
    if not isinstance(value, str):
        raise ValueError("a proxy address such as http://proxy:3128")
    url = value.strip()
    if not url:
        return ""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError("a proxy address such as http://proxy:3128")
    if parts.scheme == "https":
        raise ValueError("an http:// proxy address (PostFlow talks to the proxy in plain HTTP and goes "
                         "through it to Frame.io over TLS); https:// proxies are not supported")  # fmt: skip
    if parts.username or parts.password:
        raise ValueError("a proxy address without user name or password (`postflow proxy-login` keeps them "
                         "in the keychain)")  # fmt: skip
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _schedule(value: Any) -> tuple[str, ...]:
    """Rules such as "Mon-Fri 09:00-19:00 20MB/s"; in one string (an environment variable) they
    are separated by semicolons, since a rule's days may hold commas (Sat,Sun)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(";")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ValueError('a list of rules such as "Mon-Fri 09:00-19:00 20MB/s"')
    rules = tuple(v for v in items if v)
    try:
        parse_rules(rules)
    except ConfigError as exc:
        raise ValueError(
            exc.message.replace("bandwidth rule ", 'rules such as "Mon-Fri 09:00-19:00 20MB/s"; ', 1)
        ) from None
    return rules


_EXTENSION = re.compile(r"^\.?[A-Za-z0-9][A-Za-z0-9_+-]*$")


def _extensions(value: Any) -> tuple[str, ...]:
    items = _list(value)
    bad = [e for e in items if not _EXTENSION.match(e)]
    if bad:
        raise ValueError(f"file extensions such as .mov or mxf, separated by commas (not {', '.join(bad)})")
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in items)


def _discord_events(value: Any) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(v.lower() for v in _list(value)))
    bad = [e for e in items if e not in DISCORD_EVENTS]
    if bad:
        raise ValueError(f"a list of {', '.join(DISCORD_EVENTS)} (not {', '.join(bad)})")
    return items


_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def _clock_time(value: Any) -> str:
    match = _CLOCK.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError('a local time of day such as "18:00" (24-hour clock)')
    return f"{int(match[1]):02d}:{match[2]}"


@dataclass(frozen=True)
class SettingSpec:
    name: str  # attribute of Settings
    key: str  # dotted key in config.toml
    env: tuple[str, ...]  # environment variables, first wins
    parse: Callable[[Any], Any]
    doc: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("api_url", "frameio.api_url", ("POSTFLOW_API_URL",), _url, "Frame.io API base URL"),
    SettingSpec("ims_url", "auth.ims_url", ("POSTFLOW_IMS_URL",), _url, "Adobe IMS base URL"),
    SettingSpec(
        "client_id", "auth.client_id", ("POSTFLOW_CLIENT_ID", "FRAMEIO_CLIENT_ID"), _str,
        "Adobe Developer Console client id",
    ),
    SettingSpec(
        "credential_type", "auth.credential_type", ("POSTFLOW_CREDENTIAL_TYPE",),
        _choice(CREDENTIAL_TYPES), "spa, native or web (web needs a client secret in the keychain)",
    ),
    SettingSpec(
        "redirect_uri", "auth.redirect_uri", ("POSTFLOW_REDIRECT_URI",), _str,
        "OAuth redirect URI registered for the client",
    ),
    SettingSpec("scopes", "auth.scopes", ("POSTFLOW_SCOPES",), _list, "OAuth scopes"),
    SettingSpec(
        "account_id", "frameio.account_id", ("POSTFLOW_ACCOUNT_ID", "FRAMEIO_ACCOUNT_ID"), _str,
        "Frame.io account to use when the user has several",
    ),
    SettingSpec(
        "sandbox", "sandbox.enabled", ("POSTFLOW_SANDBOX",), _bool,
        "Use the built-in sandbox instead of Frame.io and Adobe",
    ),
    SettingSpec(
        "sandbox_url", "sandbox.url", ("POSTFLOW_SANDBOX_URL",), _str,
        "URL of an already running sandbox (empty: start one)",
    ),
    SettingSpec(
        "keyring_backend", "auth.keyring_backend", ("POSTFLOW_KEYRING_BACKEND",),
        _choice(("", "system", "encrypted-file")), "system keychain, or encrypted-file opt-in",
    ),
    SettingSpec(
        "log_level", "logging.level", ("POSTFLOW_LOG_LEVEL", "LOG_LEVEL"),
        _choice(LOG_LEVELS, upper=True), "DEBUG, INFO, WARNING or ERROR",
    ),
    SettingSpec(
        "stable_seconds", "watch.stable_seconds", ("POSTFLOW_STABLE_SECONDS",), _number(0),
        "seconds a file's size and mtime must stay unchanged before upload",
    ),
    SettingSpec(
        "scan_interval", "watch.scan_interval", ("POSTFLOW_SCAN_INTERVAL",), _number(0.1),
        "seconds between full scans of watched folders",
    ),
    SettingSpec(
        "quiet_seconds", "watch.quiet_seconds", ("POSTFLOW_QUIET_SECONDS",), _number(0),
        "seconds a MOV/MP4/MXF whose container is verifiably complete must stay unchanged (instead of the "
        "whole stability window)",
    ),
    SettingSpec(
        "check_media", "watch.check_media", ("POSTFLOW_CHECK_MEDIA",), _bool,
        "look inside MOV/MP4/MXF files: a half-written render waits, a complete one goes after quiet_seconds",
    ),
    SettingSpec(
        "use_events", "watch.use_events", ("POSTFLOW_USE_EVENTS",), _bool,
        "use the system's file events (off: scanning alone finds files)",
    ),
    SettingSpec(
        "max_volume_reads", "watch.max_volume_reads", ("POSTFLOW_MAX_VOLUME_READS",),
        _number(1, integer=True), "looks at the watched volumes (scans, container checks) at the same time",
    ),
    SettingSpec(
        "mirror_moves", "watch.mirror_moves", ("POSTFLOW_MIRROR_MOVES",), _bool,
        "a delivered file moved or renamed in a watch folder is moved or renamed on Frame.io too",
    ),
    SettingSpec(
        "extensions", "watch.extensions", ("POSTFLOW_EXTENSIONS",), _extensions,
        "file extensions to upload (empty list: all)",
    ),
    SettingSpec(
        "ignore_patterns", "watch.ignore", ("POSTFLOW_IGNORE",), _list,
        "glob patterns of names never uploaded",
    ),
    SettingSpec(
        "max_concurrent_files", "upload.max_concurrent_files", ("POSTFLOW_MAX_CONCURRENT_FILES",),
        _number(1, integer=True), "files uploaded at the same time",
    ),
    SettingSpec(
        "parts_per_file", "upload.parts_per_file", ("POSTFLOW_PARTS_PER_FILE",),
        _number(1, integer=True), "parts of one file uploaded in parallel",
    ),
    SettingSpec(
        "part_timeout",
        "upload.part_timeout",
        ("POSTFLOW_PART_TIMEOUT",),
        _number(1),
        "seconds without progress before a part upload is abandoned and retried",
    ),
    SettingSpec(
        "bandwidth_limit", "upload.bandwidth_limit", ("POSTFLOW_BANDWIDTH_LIMIT",),
        _number(0, integer=True), "bytes per second across all uploads (0: no limit)",
    ),
    SettingSpec(
        "bandwidth_schedule", "upload.bandwidth_schedule", ("POSTFLOW_BANDWIDTH_SCHEDULE",), _schedule,
        "limits by weekday and local time, e.g. [\"Mon-Fri 09:00-19:00 20MB/s\"]; the first rule that "
        "covers the moment wins, outside them upload.bandwidth_limit applies",
    ),
    SettingSpec(
        "prevent_sleep", "upload.prevent_sleep", ("POSTFLOW_PREVENT_SLEEP",), _bool,
        "keep the computer from sleeping while files upload (released when idle or paused)",
    ),
    SettingSpec(
        "upload_order", "upload.order", ("POSTFLOW_UPLOAD_ORDER",), _choice(("oldest", "smallest")),
        "which waiting file starts first (after those put first and by folder priority): oldest or smallest",
    ),
    SettingSpec(
        "listing_settle", "upload.listing_settle", ("POSTFLOW_LISTING_SETTLE",), _number(0),
        "seconds Frame.io listings may lag behind a create; an interrupted create is looked for after this",
    ),
    SettingSpec(
        "notifications", "notifications.enabled", ("POSTFLOW_NOTIFICATIONS",), _bool,
        "desktop notifications for delivered files and problems that need you",
    ),
    SettingSpec(
        "min_free_mb", "health.min_free_mb", ("POSTFLOW_MIN_FREE_MB",), _number(0, integer=True),
        "free space (MB) below which the disk holding PostFlow's queue and logs is a health problem",
    ),
    SettingSpec(
        "health_interval", "health.interval", ("POSTFLOW_HEALTH_INTERVAL",), _number(1),
        "seconds between health checks (sign-in, Frame.io, clock, free disk, Discord)",
    ),
    SettingSpec(
        "control_port", "control.port", ("POSTFLOW_CONTROL_PORT",), _port,
        "also serve the control endpoint (status, /metrics) on 127.0.0.1:PORT (0: Unix socket only)",
    ),
    SettingSpec(
        "discord_events", "discord.events", ("POSTFLOW_DISCORD_EVENTS",), _discord_events,
        "what the Discord channel hears: uploaded, ready (to review), failed, signin, summary",
    ),
    SettingSpec(
        "discord_coalesce_seconds", "discord.coalesce_seconds", ("POSTFLOW_DISCORD_COALESCE_SECONDS",),
        _number(0), "files finishing within this many seconds share one Discord message (at most 30 s wait)",
    ),
    SettingSpec(
        "discord_summary_time", "discord.summary_time", ("POSTFLOW_DISCORD_SUMMARY_TIME",), _clock_time,
        "local time of the daily summary (HH:MM, 24-hour clock)",
    ),
    SettingSpec(
        "machine_name", "discord.machine_name", ("POSTFLOW_MACHINE_NAME",), _str,
        "this computer's name in Discord messages (empty: its host name)",
    ),
    SettingSpec(
        "proxy_url", "network.proxy", ("POSTFLOW_PROXY",), _proxy,
        "a proxy for every request PostFlow makes (sign-in, Frame.io, uploads, Discord); its user name and "
        "password go in the keychain with `postflow proxy-login`. Empty: the environment and system proxies",
    ),
    SettingSpec(
        "pac_url", "network.pac_url", ("POSTFLOW_PAC_URL",), _pac_url,
        "a proxy auto-config script (PAC) deciding per address which proxy PostFlow's requests take "
        "(used when network.proxy is empty). Empty: the environment, then the system's own script or WPAD",
    ),
    SettingSpec(
        "update_feed_url", "updates.feed_url", ("POSTFLOW_UPDATE_FEED",), _optional_url,
        "release feed read once a day to say when a newer PostFlow is out (empty: no check; the sandbox "
        "serves one in demo mode); PostFlow never installs anything by itself",
    ),
    SettingSpec(
        "cloudflared_path", "pull.cloudflared", ("POSTFLOW_CLOUDFLARED",), _str,
        "cloudflared to run for pull mode when the app has none inside (empty: the bundled one, then PATH)",
    ),
    SettingSpec(
        "pull_link_lifetime", "pull.link_lifetime", ("POSTFLOW_PULL_LINK_LIFETIME",), _number(60),
        "seconds a file's pull link lives at most (it also ends when its upload ends)",
    ),
    SettingSpec(
        "pull_stall_seconds", "pull.stall_seconds", ("POSTFLOW_PULL_STALL_SECONDS",), _number(1),
        "seconds Frame.io may read nothing of a file being pulled before the pull is issued again",
    ),
    SettingSpec(
        "pull_ready_timeout", "pull.ready_timeout", ("POSTFLOW_PULL_READY_TIMEOUT",), _number(1),
        "seconds a pull waits for the tunnel before it is retried later (auto mode pushes instead)",
    ),
)  # fmt: skip

_SPEC_BY_NAME = {s.name: s for s in SETTINGS}


def _lookup(table: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = table
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _known_keys(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in table.items():
        full = f"{prefix}{k}"
        if isinstance(v, Mapping) and not any(s.key == full for s in SETTINGS):
            keys += _known_keys(v, full + ".")
        else:
            keys.append(full)
    return keys


def _parse(spec: SettingSpec, value: Any, origin: str) -> Any:
    try:
        return spec.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{origin}: {spec.key} = {value!r} is invalid: expected {exc}") from None


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    paths: AppPaths | None = None,
) -> Settings:
    """Read the file, then the environment, then ``overrides`` (CLI flags, by attribute name).

    Any invalid value raises ``ConfigError`` with one line naming where it came from, the key,
    the value and what is expected.
    """
    env = dict(os.environ if environ is None else environ)
    paths = paths or resolve_paths(env)
    values: dict[str, Any] = {}
    file = paths.config_file
    if file.exists():
        try:
            table = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        known = {s.key for s in SETTINGS}
        for key in _known_keys(table):
            if key not in known and not key.startswith("watch.roots"):
                raise ConfigError(f"{file}: unknown key {key!r}: expected one of {sorted(known)}")
        for spec in SETTINGS:
            found, raw = _lookup(table, spec.key)
            if found:
                values[spec.name] = _parse(spec, raw, str(file))
        found, raw_roots = _lookup(table, "watch.roots")
        if found:
            values["watch_roots"] = parse_roots(raw_roots, str(file))
    for spec in SETTINGS:
        for var in spec.env:
            if var in env:
                values[spec.name] = _parse(spec, env[var], f"environment variable {var}")
                break
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        spec = _SPEC_BY_NAME[name]
        values[name] = _parse(spec, raw, f"option --{name.replace('_', '-')}")
    if "sandbox" not in values and not values.get("client_id"):
        values["sandbox"] = True  # no Adobe account configured: the demo sandbox, never a dead end
    return Settings(paths=paths, **values)


ROOT_KEYS = (
    "path", "project", "folder", "workspace", "account_id", "done_marker",
    "naming", "stack_versions", "comment", "route_by", "upload_mode", "priority",
)  # fmt: skip
UPLOAD_MODES = ("push", "pull", "auto")


def parse_roots(raw: Any, origin: str) -> tuple[WatchRoot, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{origin}: watch.roots must be a list of [[watch.roots]] tables")
    roots = []
    for index, entry in enumerate(raw, start=1):
        where = f"{origin}: watch.roots #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with path and project")
        unknown = set(entry) - set(ROOT_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}: expected {', '.join(ROOT_KEYS)}")
        for key in ("path", "project"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigError(
                    f"{where}: {key} = {entry.get(key)!r} is invalid: expected a non-empty string"
                )
        extras = {k: str(entry.get(k, "")) for k in ("folder", "workspace", "account_id")}
        marker = entry.get("done_marker", "")
        if not isinstance(marker, str) or "/" in marker or "\\" in marker or marker.strip() != marker:
            why = "expected a suffix such as '.done'"
            raise ConfigError(f"{where}: done_marker = {marker!r} is invalid: {why}")
        root = replace(make_root(entry["path"], entry["project"], **extras), done_marker=marker)
        roots.append(replace(root, **naming_options(entry, where)))
    return tuple(roots)


def machine_name(settings: Settings) -> str:
    """How messages and comments name this computer."""
    return settings.machine_name or socket.gethostname() or "this computer"


def naming_options(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """A root's naming rules, version stacking and comment template, each checked now: a typo
    is a message at start, never a render that silently stops stacking."""
    out: dict[str, Any] = {}
    if "naming" in entry:
        rules = entry["naming"]
        if isinstance(rules, str):
            rules = [rules]
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ConfigError(f"{where}: naming = {rules!r} is invalid: expected a list of rules (presets "
                              f"{', '.join(PRESETS)}, or patterns with named groups)")  # fmt: skip
        try:
            compile_rules(rules)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        out["naming"] = tuple(rules)
    if "stack_versions" in entry:
        if not isinstance(entry["stack_versions"], bool):
            raise ConfigError(
                f"{where}: stack_versions = {entry['stack_versions']!r} is invalid: expected true or false"
            )
        out["stack_versions"] = entry["stack_versions"]
    if "comment" in entry:
        template = entry["comment"]
        if not isinstance(template, str):
            raise ConfigError(f"{where}: comment = {template!r} is invalid: expected a text template")
        rules = compile_rules(out.get("naming", WatchRoot.__dataclass_fields__["naming"].default))
        try:
            check_template(template, rules)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        out["comment"] = template
    if "route_by" in entry:
        field_name = entry["route_by"]
        rules = compile_rules(out.get("naming", WatchRoot.__dataclass_fields__["naming"].default))
        groups = sorted({g for r in rules for g in r.pattern.groupindex if g not in ("base", "version")})
        if not isinstance(field_name, str) or (field_name and field_name not in groups):
            offer = ", ".join(groups) if groups else "none: add a naming rule with named groups first"
            raise ConfigError(
                f"{where}: route_by = {field_name!r} is invalid: expected a naming field ({offer})"
            )
        out["route_by"] = field_name
    if "upload_mode" in entry:
        mode = entry["upload_mode"]
        if mode not in UPLOAD_MODES:
            raise ConfigError(
                f"{where}: upload_mode = {mode!r} is invalid: expected push, pull or auto "
                "(pull and auto let Frame.io fetch files through a Cloudflare quick tunnel)"
            )
        out["upload_mode"] = mode
    if "priority" in entry:
        priority = entry["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
            raise ConfigError(
                f"{where}: priority = {priority!r} is invalid: expected a whole number from -1000 to 1000 "
                "(folders with a higher priority upload first; default 0)"
            )
        out["priority"] = priority
    return out


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(toml key, environment variables, default, description) for docs and ``doctor``."""
    defaults = Settings.__dataclass_fields__
    rows = []
    for spec in SETTINGS:
        f = defaults[spec.name]
        default = "" if f.default is MISSING else repr(f.default)
        rows.append((spec.key, ", ".join(spec.env), default, spec.doc))
    return rows
