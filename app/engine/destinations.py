"""Watch root + relative folder → Frame.io folder id: find before create, cache, one creator.

Frame.io allows two folders with the same name, so two jobs racing to create "Day 03" would
make two. Every (parent, name) has its own lock: the second job waits and finds the first's.
After a create whose answer was lost, the folder may exist without showing in listings yet
(listings lag): we look again for a while before creating it a second time.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections import defaultdict

from app.core.jobs import WatchRoot
from app.frameio.client import FrameioClient
from app.frameio.errors import NotFound, OutcomeUnknown
from app.frameio.models import Project

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class DestinationResolver:
    def __init__(self, client: FrameioClient) -> None:
        self._client = client
        self.lost_create_waits: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)  # listings may lag
        self._projects: dict[tuple[str, str, str], Project] = {}
        self._children: dict[tuple[str, str], dict[str, str]] = {}  # (account, parent) → name → id
        self._locks: defaultdict[tuple[str, ...], asyncio.Lock] = defaultdict(asyncio.Lock)

    def forget(self) -> None:
        """Drop caches (e.g. after a 404: someone deleted a folder on Frame.io)."""
        self._projects.clear()
        self._children.clear()

    async def project(self, account_id: str, root: WatchRoot) -> Project:
        key = (account_id, root.workspace, root.project)
        async with self._locks[("project", *key)]:
            if key not in self._projects:
                self._projects[key] = await self._find_project(account_id, root)
            return self._projects[key]

    async def _find_project(self, account_id: str, root: WatchRoot) -> Project:
        if _UUID.match(root.project):
            try:
                return await self._client.project(account_id, root.project)
            except NotFound:
                pass
        workspaces = await self._client.workspaces(account_id)
        if root.workspace:
            workspaces = [w for w in workspaces if root.workspace in (w.id, w.name)]
            if not workspaces:
                raise NotFound(
                    f"The Frame.io workspace {root.workspace!r} does not exist or is not shared with you."
                )
        for ws in workspaces:
            for project in await self._client.projects(account_id, ws.id):
                if root.project in (project.id, project.name):
                    return project
        raise NotFound(
            f"The Frame.io project {root.project!r} was not found. Check the name in the watch folder's "
            "settings, or that the project is shared with you."
        )

    async def folder_for(self, account_id: str, root: WatchRoot, rel_dir: str) -> str:
        """The id of the Frame.io folder mirroring ``rel_dir`` under the root's destination."""
        project = await self.project(account_id, root)
        folder_id = project.root_folder_id
        segments = [unicodedata.normalize("NFC", s) for s in root.folder.split("/") + rel_dir.split("/") if s]
        for name in segments:
            folder_id = await self._child(account_id, folder_id, name)
        return folder_id

    async def _child(self, account_id: str, parent_id: str, name: str) -> str:
        key = (account_id, parent_id)
        async with self._locks[("folder", account_id, parent_id, name)]:
            known = self._children.get(key)
            if known is None or name not in known:
                listing = await self._client.subfolders(account_id, parent_id)
                known = self._children.setdefault(key, {})
                for folder in listing:
                    known.setdefault(
                        unicodedata.normalize("NFC", folder.name), folder.id
                    )  # oldest wins when names repeat
            if name not in known:
                try:
                    created = await self._client.create_folder(account_id, parent_id, name)
                    known[name] = created.id
                except OutcomeUnknown:  # lost answer: it may exist now; look before creating again
                    if not await self._appears(account_id, parent_id, name, known):
                        known[name] = (await self._client.create_folder(account_id, parent_id, name)).id
            return known[name]

    async def _appears(self, account_id: str, parent_id: str, name: str, known: dict[str, str]) -> bool:
        """Look for a folder whose create answer was lost, giving the listing time to catch up."""
        for wait in (0.0, *self.lost_create_waits):
            await asyncio.sleep(wait)
            for folder in await self._client.subfolders(account_id, parent_id):
                known.setdefault(unicodedata.normalize("NFC", folder.name), folder.id)
            if name in known:
                return True
        return False
