"""Watch folders added, edited and removed while PostFlow runs: checked before anything changes,
then saved to config.toml, so what the user set in the window is what runs after a restart.

A folder is accepted when it exists and can be read, overlaps no other watched folder (the same
file must never belong to two roots: it would upload twice), and its destination project is
found on Frame.io (a typo is caught now, not at 2 a.m. on the first render).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.auth.token_provider import TokenProvider
from app.core.errors import ConfigError, PostFlowError
from app.core.jobs import WatchRoot
from app.core.roots import check_folder, check_overlaps, make_root
from app.engine.destinations import DestinationResolver
from app.engine.file_filter import FileFilter
from app.engine.live_settings import config_keys
from app.engine.watcher import scan_root

NO_LONGER_WATCHED = "Folder no longer watched."
DESTINATION_KEYS = ("project", "folder", "workspace", "account_id")


class RootRegistry:
    def __init__(
        self,
        roots: Mapping[str, WatchRoot],
        *,
        resolver: DestinationResolver,
        provider: TokenProvider,
        config_file: Path,
        persist: bool,
        default_account: str,
    ) -> None:
        self._roots = roots  # the engine's live mapping (read only here)
        self._resolver = resolver
        self._provider = provider
        self._config_file = config_file
        self._persist = persist
        self._default_account = default_account

    async def validate_new(self, root: WatchRoot) -> WatchRoot:
        """The root as it will be watched (its path resolved), or ``ConfigError`` saying why not."""
        await asyncio.to_thread(check_folder, root.path)
        root = await asyncio.to_thread(
            make_root, root.path, root.project, root.folder, root.workspace, root.account_id
        )
        if root.id in self._roots:
            raise ConfigError(f"{root.path} is already watched.")
        check_overlaps([*self._roots.values(), root])
        await self.check_destination(root)
        return root

    async def validate_edit(self, root_id: str, destination: Mapping[str, str]) -> WatchRoot:
        old = self._roots.get(root_id)
        if old is None:
            raise ConfigError(f"No watch folder with id {root_id!r}.")
        unknown = set(destination) - set(DESTINATION_KEYS)
        if unknown:
            raise ConfigError(
                f"Cannot change {sorted(unknown)} of a watch folder: expected {DESTINATION_KEYS}"
            )
        changes: dict[str, Any] = {k: str(v).strip() for k, v in destination.items()}
        edited = replace(old, **changes)
        if not edited.project:
            raise ConfigError("A watch folder needs a Frame.io project.")
        await self.check_destination(edited)
        return edited

    async def check_destination(self, root: WatchRoot) -> None:
        tokens = self._provider.tokens
        if tokens is None:
            raise ConfigError("Sign in first, so PostFlow can check that the Frame.io project exists.")
        account = root.account_id or tokens.account_id or self._default_account
        try:
            await self._resolver.project(account, root)
        except PostFlowError as exc:
            raise ConfigError(f"{root.path}: {exc.message}") from None

    async def current_files(self, root: WatchRoot, file_filter: FileFilter) -> list[tuple[str, int, int]]:
        """What the folder holds now (for "only files that appear from now on")."""
        found = await asyncio.to_thread(scan_root, root, file_filter)
        return [(f.rel_path, f.size, f.mtime_ns) for f in found]

    async def save(self, roots: Sequence[WatchRoot]) -> None:
        if self._persist:
            from app.core.config_file import save_roots

            await asyncio.to_thread(save_roots, self._config_file, list(roots))

    async def save_settings(self, parsed: Mapping[str, Any]) -> None:
        if self._persist:
            from app.core.config_file import save_values

            await asyncio.to_thread(save_values, self._config_file, config_keys(parsed))
