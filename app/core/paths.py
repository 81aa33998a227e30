"""Where PostFlow keeps its files: settings, state, logs.

``POSTFLOW_CONFIG_DIR`` and ``POSTFLOW_DATA_DIR`` relocate them so tests and side-by-side
installs never touch the user's real folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "PostFlow"
APP_AUTHOR = "PostFlow"
CONFIG_FILE_NAME = "config.toml"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE_NAME

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "postflow.log"

    def ensure(self) -> None:
        for d in (self.config_dir, self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)


def resolve_paths(environ: dict[str, str] | None = None) -> AppPaths:
    env = os.environ if environ is None else environ
    config_dir = env.get("POSTFLOW_CONFIG_DIR")
    data_dir = env.get("POSTFLOW_DATA_DIR")
    config = Path(config_dir) if config_dir else Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR))
    if data_dir:
        data = Path(data_dir)
        logs = data / "logs"
    else:
        data = Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
        logs = Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))
    return AppPaths(config_dir=config, data_dir=data, log_dir=logs)
