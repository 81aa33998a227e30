"""What the destination picker browses: accounts → workspaces → projects → folders, a page at
a time (a studio account can hold thousands of projects; the picker must not wait for all)."""

from __future__ import annotations

from dataclasses import dataclass

from app.frameio.client import FrameioClient

PAGE_SIZE = 50


@dataclass(frozen=True)
class Choice:
    kind: str  # "account", "workspace", "project", "folder"
    id: str
    name: str
    folder_id: str = ""  # a project's root folder, where browsing its folders starts


@dataclass(frozen=True)
class ChoicePage:
    items: tuple[Choice, ...]
    next_cursor: str | None  # pass back for the next page; None: no more


class DestinationBrowser:
    def __init__(self, client: FrameioClient) -> None:
        self._client = client

    async def accounts(self, cursor: str | None = None, page_size: int = PAGE_SIZE) -> ChoicePage:
        return await self._page("accounts.index", "/v4/accounts", "account", cursor, page_size)

    async def workspaces(
        self, account_id: str, cursor: str | None = None, page_size: int = PAGE_SIZE
    ) -> ChoicePage:
        path = f"/v4/accounts/{account_id}/workspaces"
        return await self._page("workspaces.index", path, "workspace", cursor, page_size)

    async def projects(
        self, account_id: str, workspace_id: str, cursor: str | None = None, page_size: int = PAGE_SIZE
    ) -> ChoicePage:
        path = f"/v4/accounts/{account_id}/workspaces/{workspace_id}/projects"
        return await self._page("projects.index", path, "project", cursor, page_size)

    async def folders(
        self, account_id: str, folder_id: str, cursor: str | None = None, page_size: int = PAGE_SIZE
    ) -> ChoicePage:
        """Sub-folders of a folder (start with a project's ``folder_id``)."""
        path = f"/v4/accounts/{account_id}/folders/{folder_id}/folders"
        return await self._page("folders.list", path, "folder", cursor, page_size)

    async def _page(self, operation: str, path: str, kind: str, cursor: str | None, size: int) -> ChoicePage:
        docs, after = await self._client.page(operation, path, after=cursor, page_size=max(1, min(size, 100)))
        items = tuple(
            Choice(kind, str(d.get("id", "")), str(d.get("name", "")), str(d.get("root_folder_id") or ""))
            for d in docs
        )
        return ChoicePage(items, after)
