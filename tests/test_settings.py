"""Settings precedence (defaults < file < environment < flags) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import ConfigError
from app.core.paths import resolve_paths
from app.core.settings import DEFAULT_API_URL, describe_settings, load_settings


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
