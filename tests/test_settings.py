"""Settings precedence (defaults < file < environment < flags) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import ConfigError
from app.core.paths import resolve_paths
from app.core.settings import (
    DEFAULT_API_URL,
    SETTINGS,
    Settings,
    SettingSpec,
    describe_settings,
    load_settings,
)


def write_config(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(text)


def test_defaults_without_a_file(isolated_env: Path) -> None:
    s = load_settings(environ={"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")})
    assert s.api_url == DEFAULT_API_URL and s.stable_seconds == 30 and s.max_concurrent_files == 2
    assert s.parts_per_file == 4 and "*.tmp" in s.ignore_patterns


def test_file_then_environment_then_flags(isolated_env: Path) -> None:
    write_config(
        isolated_env,
        '[frameio]\napi_url = "http://file:1"\naccount_id = "from-file"\n'
        '[logging]\nlevel = "debug"\n[upload]\nparts_per_file = 8\n',
    )
    env = {
        "POSTFLOW_CONFIG_DIR": str(isolated_env / "config"),
        "POSTFLOW_API_URL": "http://env:2",
        "FRAMEIO_ACCOUNT_ID": "legacy-env",
        "LOG_LEVEL": "warning",
    }
    s = load_settings(environ=env, overrides={"api_url": "http://flag:3", "log_level": None})
    assert s.api_url == "http://flag:3"
    assert s.account_id == "legacy-env"
    assert s.log_level == "WARNING"
    assert s.parts_per_file == 8


def test_new_variable_wins_over_legacy_one(isolated_env: Path) -> None:
    env = {"POSTFLOW_CLIENT_ID": "new", "FRAMEIO_CLIENT_ID": "old"}
    assert load_settings(environ=env).client_id == "new"
    assert load_settings(environ={"FRAMEIO_CLIENT_ID": "old"}).client_id == "old"


def test_sandbox_mode_uses_the_sandbox_client(isolated_env: Path) -> None:
    assert load_settings(environ={"POSTFLOW_SANDBOX": "1"}).effective_client_id == "postflow-sandbox"


def test_sandbox_is_the_default_until_an_account_is_configured(isolated_env: Path) -> None:
    assert load_settings(environ={}).sandbox is True
    assert load_settings(environ={"POSTFLOW_CLIENT_ID": "abc"}).sandbox is False
    assert load_settings(environ={"POSTFLOW_SANDBOX": "0"}).sandbox is False  # explicit wins


def test_watch_roots_from_the_file(isolated_env: Path) -> None:
    write_config(
        isolated_env,
        '[[watch.roots]]\npath = "/Volumes/fs/Renders"\nproject = "Demo Project"\nfolder = "Incoming/"\n',
    )
    env = {"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")}
    (root,) = load_settings(environ=env).watch_roots
    assert root.path == "/Volumes/fs/Renders" and root.project == "Demo Project" and root.folder == "Incoming"
    assert root.id == load_settings(environ=env).watch_roots[0].id  # stable across loads
    write_config(isolated_env, '[[watch.roots]]\npath = "/x"\n')
    with pytest.raises(ConfigError, match="watch.roots #1: project"):
        load_settings(environ=env)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ('naming = "versioned"', None),
        ('naming = ["shot_task", "(?P<shot>SC\\\\d+)_v(?P<version>\\\\d+)"]', None),
        ('naming = ["(?P<shot>SC\\\\d+"]', "is not a valid regular expression"),
        ('naming = ["SC\\\\d+"]', "has no named group"),
        ("naming = [1]", "expected a list of rules"),
        ('stack_versions = "yes"', "stack_versions = 'yes' is invalid: expected true or false"),
        ('comment = "{shot} {version} from {machine}"', "names {shot}"),  # no rule has a shot group
        ('naming = "shot_task"\ncomment = "{shot} {version} from {machine}"', None),
        ('comment = "{unknown}"', "names {unknown}, which PostFlow cannot fill"),
        ('comment = "{"', "is not valid"),
        ('naming = "shot_task"\nroute_by = "shot"', None),
        (
            'route_by = "shot"',
            "route_by = 'shot' is invalid: expected a naming field (none: add a naming rule",
        ),
        ('naming = "shot_task"\nroute_by = "shoot"', "expected a naming field (sequence, shot, show, task)"),
    ],
)
def test_a_roots_naming_options_are_checked_when_loaded(
    isolated_env: Path, options: str, needle: str | None
) -> None:
    write_config(isolated_env, f'[[watch.roots]]\npath = "/r"\nproject = "P"\n{options}\n')
    env = {"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")}
    if needle is None:
        load_settings(environ=env)
        return
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env)
    assert needle in str(info.value) and "watch.roots #1" in str(info.value)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            "[upload]\nparts_per_file = 0\n",
            "upload.parts_per_file = 0 is invalid: expected a number ≥ 1",
        ),
        ('[auth]\ncredential_type = "magic"\n', "expected one of spa, native, web"),
        ('[watch]\nstable_seconds = "soon"\n', "watch.stable_seconds = 'soon'"),
        ('[frameio]\napi_urll = "x"\n', "unknown key 'frameio.api_urll'"),
        ("[upload\n", "not valid TOML"),
    ],
)
def test_file_errors_name_the_file_key_and_value(isolated_env: Path, toml: str, needle: str) -> None:
    write_config(isolated_env, toml)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")})
    message = str(info.value)
    assert needle in message and str(isolated_env / "config" / "config.toml") in message
    assert "\n" not in message


def test_relocated_dirs(tmp_path: Path) -> None:
    paths = resolve_paths(
        {"POSTFLOW_CONFIG_DIR": str(tmp_path / "c"), "POSTFLOW_DATA_DIR": str(tmp_path / "d")}
    )
    assert paths.config_file == tmp_path / "c" / "config.toml"
    assert paths.state_db.parent == tmp_path / "d" and paths.log_dir == tmp_path / "d" / "logs"


def test_every_setting_is_described() -> None:
    rows = describe_settings()
    assert all(key and doc for key, _env, _default, doc in rows)
    assert any(key == "frameio.api_url" and "POSTFLOW_API_URL" in env for key, env, _d, _doc in rows)


NUMERIC = [s for s in SETTINGS if Settings.__dataclass_fields__[s.name].type in ("int", "float")]


def test_every_numeric_setting_is_covered_below() -> None:
    assert {s.name for s in NUMERIC} >= {
        "stable_seconds", "scan_interval", "part_timeout",
        "max_concurrent_files", "parts_per_file", "bandwidth_limit",
    }  # fmt: skip


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.name)
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_numbers_from_the_environment_are_refused(
    isolated_env: Path, spec: SettingSpec, text: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={spec.env[0]: text})
    message = str(info.value)
    assert f"environment variable {spec.env[0]}: {spec.key} = {text!r} is invalid: expected a" in message
    assert "number ≥" in message and "\n" not in message


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.name)
@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "+inf"])
def test_non_finite_numbers_in_the_file_are_refused(
    isolated_env: Path, spec: SettingSpec, literal: str
) -> None:
    section, key = spec.key.split(".")
    write_config(isolated_env, f"[{section}]\n{key} = {literal}\n")
    with pytest.raises(ConfigError, match=rf"{spec.key} = [-+]?(nan|inf) is invalid: expected a"):
        load_settings(environ={"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")})


def test_a_non_finite_duration_says_finite(isolated_env: Path) -> None:
    with pytest.raises(ConfigError, match="stable_seconds = 'nan' is invalid: expected a finite number ≥ 0$"):
        load_settings(environ={"POSTFLOW_STABLE_SECONDS": "nan"})


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[upload]\nbandwidth_limit = 99999999999999999999999\n", "expected a number ≤ 9007199254740992"),
        ("[upload]\nmax_concurrent_files = 9007199254740993\n", "expected a number ≤ 9007199254740992"),
        ("[upload]\npart_timeout = 1e300\n", "expected a number ≤ 1000000"),
        ("[watch]\nstable_seconds = 1e10\n", "expected a number ≤ 1000000"),
        ("[upload]\nparts_per_file = 2.5\n", "expected a whole number ≥ 1"),
        ("[upload]\nparts_per_file = true\n", "expected a whole number ≥ 1"),
        ("[upload]\nparts_per_file = [4]\n", "expected a whole number ≥ 1"),
    ],
)
def test_absurd_numbers_in_the_file_are_refused(isolated_env: Path, toml: str, needle: str) -> None:
    write_config(isolated_env, toml)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")})
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_edge_numbers_that_are_fine(isolated_env: Path) -> None:
    write_config(
        isolated_env,
        "[upload]\nbandwidth_limit = 9007199254740992\nparts_per_file = 8.0\npart_timeout = 1000000\n"
        "[watch]\nstable_seconds = 0\nscan_interval = 0.1\n",
    )
    s = load_settings(environ={"POSTFLOW_CONFIG_DIR": str(isolated_env / "config")})
    assert s.bandwidth_limit == 2**53 and s.parts_per_file == 8 and isinstance(s.parts_per_file, int)
    assert s.part_timeout == 1e6 and s.stable_seconds == 0.0 and isinstance(s.stable_seconds, float)
    env = {"POSTFLOW_MAX_CONCURRENT_FILES": " 3 ", "POSTFLOW_SCAN_INTERVAL": "2.5"}
    s = load_settings(environ=env)
    assert s.max_concurrent_files == 3 and s.scan_interval == 2.5


def test_a_choice_with_an_empty_option_reads_plainly(isolated_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"POSTFLOW_KEYRING_BACKEND": "vault"})
    message = str(info.value)
    assert message.endswith(
        "auth.keyring_backend = 'vault' is invalid: expected one of \"\" (automatic), system, encrypted-file"
    )
    assert "of ," not in message
