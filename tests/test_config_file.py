"""Run-time changes saved into config.toml: the user's own text kept, bad files never overwritten."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.config_file import save_roots, save_values
from app.core.errors import ConfigError
from app.core.paths import AppPaths
from app.core.settings import load_settings, make_root

HAND_WRITTEN = """# PostFlow settings, edited by the assistant editor
[upload]
max_concurrent_files = 2 # two at a time, the link is slow

[[watch.roots]]
path = "/old"
project = "Old"
"""


def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")


def test_roots_and_values_round_trip_and_keep_the_users_comments(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.config_dir.mkdir()
    p.config_file.write_text(HAND_WRITTEN, encoding="utf-8")
    roots = [make_root(str(tmp_path / "Ünïcode renders"), "Démo", "a/b"), make_root(str(tmp_path / "b"), "P")]
    save_roots(p.config_file, roots)
    save_values(p.config_file, {"upload.max_concurrent_files": 3, "watch.extensions": (".mov", ".mxf")})
    text = p.config_file.read_text(encoding="utf-8")
    assert "# PostFlow settings, edited by the assistant editor" in text and "the link is slow" in text
    loaded = load_settings(environ={}, paths=p)
    assert loaded.watch_roots == tuple(roots)
    assert loaded.max_concurrent_files == 3 and loaded.extensions == (".mov", ".mxf")
    assert '"/old"' not in text


def test_a_roots_own_options_survive_a_save(tmp_path: Path) -> None:
    """Done marker, naming rules, stacking and comment template are the user's: saving the
    roots from the settings window must not drop them."""
    p = paths(tmp_path)
    options = {"done_marker": ".done", "naming": ("shot_task", "versioned"), "stack_versions": False,
               "comment": "{shot} {version} from {machine}", "route_by": "shot"}  # fmt: skip
    root = replace(make_root(str(tmp_path / "r"), "P"), **options)
    save_roots(p.config_file, [root, make_root(str(tmp_path / "plain"), "P")])
    assert load_settings(environ={}, paths=p).watch_roots == (root, make_root(str(tmp_path / "plain"), "P"))


def test_removing_every_root_leaves_a_loadable_file(tmp_path: Path) -> None:
    p = paths(tmp_path)
    save_roots(p.config_file, [make_root(str(tmp_path), "P")])
    assert oct(p.config_file.stat().st_mode & 0o777) == "0o600"
    save_roots(p.config_file, [])
    assert load_settings(environ={}, paths=p).watch_roots == ()
    assert "watch" not in p.config_file.read_text(encoding="utf-8")


def test_a_file_that_is_not_toml_is_never_overwritten(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.config_dir.mkdir()
    p.config_file.write_text("[upload\nbroken = ", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        save_values(p.config_file, {"upload.bandwidth_limit": 5})
    assert "not valid TOML" in info.value.message and "left it as it is" in info.value.message
    assert p.config_file.read_text(encoding="utf-8") == "[upload\nbroken = "
    p.config_file.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        save_roots(p.config_file, [])


def test_permissions_are_kept(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.config_dir.mkdir()
    p.config_file.write_text("", encoding="utf-8")
    os.chmod(p.config_file, 0o640)
    save_values(p.config_file, {"upload.parts_per_file": 8})
    assert p.config_file.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_a_plain_error_and_leaves_nothing(tmp_path: Path) -> None:
    p = paths(tmp_path)
    p.config_dir.mkdir()
    p.config_file.write_text(HAND_WRITTEN, encoding="utf-8")
    os.chmod(p.config_dir, 0o500)
    try:
        with pytest.raises(ConfigError, match="cannot be written"):
            save_values(p.config_file, {"upload.parts_per_file": 8})
        assert p.config_file.read_text(encoding="utf-8") == HAND_WRITTEN
        assert os.listdir(p.config_dir) == ["config.toml"]
    finally:
        os.chmod(p.config_dir, 0o700)


def test_only_setting_keys_are_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_values(paths(tmp_path).config_file, {"upload.whatever": 1})
