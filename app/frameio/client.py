"""The typed async Frame.io V4 client. Rate limits, pagination, retries and error mapping live
here, once; callers see ``app.frameio.models`` dataclasses and ``app.core.errors`` errors.

``local_upload`` is not idempotent: it is never retried after a request may have reached the
server; the caller gets ``OutcomeUnknown`` and looks for the placeholder before creating again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from app.core.errors import RateLimited, ServiceUnavailable, SignedOut
from app.frameio import models
from app.frameio.bearer import BearerAuth
from app.frameio.errors import Forbidden, FrameioError, NotFound, OutcomeUnknown, Rejected, detail_of
from app.frameio.rate_limiter import ClientRateLimiter
from app.frameio.retry_policy import Failure, RetryPolicy
from app.frameio.token_source import TokenSource
from app.proxy.router import ProxyRouter
from app.proxy.transport import RoutingTransport

log = logging.getLogger(__name__)
# Sent before any byte left: safe to retry even for a non-idempotent call.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
PING_TIMEOUT = 10.0


class FrameioClient:
    def __init__(
        self,
        base_url: str,
        provider: TokenSource,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
        http: httpx.AsyncClient | None = None,
        proxies: ProxyRouter | None = None,
    ) -> None:
        """``proxies``: the way out of every request (None: httpx's own reading of the environment)."""
        self.base_url = base_url.rstrip("/")
        self.proxies = proxies  # the engine's other clients (parts, release feed) go the same way
        self._provider = provider
        self._policy = policy or RetryPolicy()
        self._limiter = ClientRateLimiter()
        self._rng = random.Random()
        # Told when Frame.io stops answering at all (after a second failed try in a row, so a
        # blip says nothing) and when it answers again: the tray's "offline", long before the
        # retries of one request run out.
        self.on_reachability: Callable[[str | None], None] | None = None
        self._unreachable = False
        self._http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=15.0),
            auth=BearerAuth(provider),
            headers={"User-Agent": "PostFlow"},
            transport=RoutingTransport(proxies) if proxies is not None else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the one place requests are made ----
    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire(operation)
            try:
                response = await self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise OutcomeUnknown(
                        f"Frame.io did not answer {operation} ({type(exc).__name__}); "
                        "it may or may not have happened."
                    ) from None
                if attempt >= 2:
                    self._reachable(f"Frame.io cannot be reached ({type(exc).__name__}).")
                wait = self._policy.delay(Failure.NETWORK, attempt, rng=self._rng)
                if wait is None:
                    raise ServiceUnavailable(f"Frame.io cannot be reached ({type(exc).__name__}).") from None
                name = type(exc).__name__
                log.info("%s: network error %s, retry %d in %.1fs", operation, name, attempt, wait)
                await asyncio.sleep(wait)
                continue
            if self._unreachable:
                self._reachable(None)
            self._limiter.observe(operation, response)
            status = response.status_code
            if status < 400:
                return self._body(operation, response)
            if status == 401:
                await self._provider.sign_out(
                    "Frame.io no longer accepts your sign-in. Sign in again.", revoke=False
                )
                raise SignedOut("Frame.io no longer accepts your sign-in. Sign in again to continue.")
            if status == 429:
                self._limiter.penalize(operation)
                retry_after = _retry_after(response)
                wait = self._policy.delay(Failure.RATE_LIMITED, attempt, retry_after, self._rng)
                if wait is None:
                    raise RateLimited(f"Frame.io keeps asking PostFlow to slow down ({operation}).")
                log.info("%s: rate limited (429), backing off %.1fs (attempt %d)", operation, wait, attempt)
                await asyncio.sleep(wait)
                continue
            if status >= 500:
                if not idempotent:
                    raise OutcomeUnknown(
                        f"Frame.io failed {operation} (HTTP {status}); it may have gone through."
                    )
                wait = self._policy.delay(Failure.SERVER, attempt, rng=self._rng)
                if wait is None:
                    raise ServiceUnavailable(f"Frame.io is having trouble (HTTP {status}).", status=status)
                log.info("%s: HTTP %d, backing off %.1fs (attempt %d)", operation, status, wait, attempt)
                await asyncio.sleep(wait)
                continue
            detail = detail_of(response)
            if status == 403:
                raise Forbidden(f"Frame.io refused access: {detail}", status=403)
            if status == 404:
                raise NotFound(f"Not found on Frame.io: {detail}", status=404)
            raise Rejected(f"Frame.io refused {operation}: {detail}", status=status)

    async def ping(self) -> float | None:
        """Does Frame.io answer at all (any HTTP answer counts, even a refusal)? Returns the
        server's clock (its ``Date`` header, epoch seconds) or None without one. No token is
        sent: the health check works while signed out. Raises ``ServiceUnavailable``."""
        try:
            response = await self._http.get("/v4/me", auth=None, timeout=PING_TIMEOUT)
        except httpx.TransportError as exc:
            problem = f"Frame.io cannot be reached ({type(exc).__name__})."
            self._reachable(problem)
            raise ServiceUnavailable(problem) from None
        self._reachable(None)
        try:
            return parsedate_to_datetime(response.headers["date"]).timestamp()
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def _reachable(self, problem: str | None) -> None:
        if (problem is not None) == self._unreachable:
            return
        self._unreachable = problem is not None
        if self.on_reachability is not None:
            self.on_reachability(problem)

    @staticmethod
    def _body(operation: str, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServiceUnavailable(
                f"Frame.io answered {operation} with something that is not JSON "
                f"({response.headers.get('content-type', 'no content type')})."
            ) from None

    async def paginate(
        self, operation: str, path: str, params: dict[str, Any] | None = None, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item across pages; ``page_size`` and filters are re-sent on each page."""
        base = {**(params or {}), "page_size": page_size}
        query = dict(base)
        while True:
            doc = await self.request(operation, "GET", path, params=query)
            if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
                raise FrameioError(f"Frame.io answered {operation} without a list.")
            for item in doc["data"]:
                yield item
            next_link = (doc.get("links") or {}).get("next")
            if not next_link:
                return
            cursor = dict(parse_qsl(urlsplit(next_link).query)).get("after")
            if not cursor:
                return
            query = {**base, "after": cursor}

    async def page(
        self, operation: str, path: str, *, after: str | None = None, page_size: int = 50
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page and the cursor of the next (None: last page), for pickers that page as the
        user scrolls instead of loading everything."""
        query: dict[str, Any] = {"page_size": page_size}
        if after:
            query["after"] = after
        doc = await self.request(operation, "GET", path, params=query)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise FrameioError(f"Frame.io answered {operation} without a list.")
        next_link = (doc.get("links") or {}).get("next")
        cursor = dict(parse_qsl(urlsplit(next_link).query)).get("after") if next_link else None
        items = [item for item in doc["data"] if isinstance(item, dict)]
        return items, cursor or None

    # ---- endpoints ----
    async def me(self) -> models.Me:
        return models.me_from(_data(await self.request("users.show", "GET", "/v4/me")))

    async def accounts(self) -> list[models.Account]:
        return [models.account_from(a) async for a in self.paginate("accounts.index", "/v4/accounts")]

    async def workspaces(self, account_id: str) -> list[models.Workspace]:
        path = f"/v4/accounts/{account_id}/workspaces"
        return [models.workspace_from(w) async for w in self.paginate("workspaces.index", path)]

    async def projects(self, account_id: str, workspace_id: str) -> list[models.Project]:
        path = f"/v4/accounts/{account_id}/workspaces/{workspace_id}/projects"
        return [models.project_from(p) async for p in self.paginate("projects.index", path)]

    async def project(self, account_id: str, project_id: str) -> models.Project:
        doc = await self.request("projects.show", "GET", f"/v4/accounts/{account_id}/projects/{project_id}")
        return models.project_from(_data(doc))

    async def subfolders(self, account_id: str, folder_id: str) -> list[models.Folder]:
        path = f"/v4/accounts/{account_id}/folders/{folder_id}/folders"
        return [models.folder_from(f) async for f in self.paginate("folders.list", path, page_size=500)]

    async def create_folder(self, account_id: str, parent_id: str, name: str) -> models.Folder:
        doc = await self.request(
            "folders.create", "POST", f"/v4/accounts/{account_id}/folders/{parent_id}/folders",
            json={"data": {"name": name}}, idempotent=False,
        )  # fmt: skip
        return models.folder_from(_data(doc))

    async def files_in(self, account_id: str, folder_id: str) -> list[models.RemoteFile]:
        path = f"/v4/accounts/{account_id}/folders/{folder_id}/files"
        return [models.file_from(f) async for f in self.paginate("files.list", path, page_size=500)]

    async def create_local_upload(
        self, account_id: str, folder_id: str, name: str, size: int
    ) -> models.LocalUpload:
        doc = await self.request(
            "files.create_local_upload", "POST",
            f"/v4/accounts/{account_id}/folders/{folder_id}/files/local_upload",
            json={"data": {"name": name, "file_size": size}}, idempotent=False,
        )  # fmt: skip
        return models.local_upload_from(_data(doc))

    async def create_remote_upload(
        self, account_id: str, folder_id: str, name: str, source_url: str
    ) -> models.RemoteFile:
        """Frame.io fetches ``source_url`` itself (at most 50 GB). Not idempotent, like a local
        upload: a lost answer may have created the file. The URL is never logged (it is a key)."""
        doc = await self.request(
            "files.create_remote_upload", "POST",
            f"/v4/accounts/{account_id}/folders/{folder_id}/files/remote_upload",
            json={"data": {"name": name, "source_url": source_url}}, idempotent=False,
        )  # fmt: skip
        return models.file_from(_data(doc))

    async def upload_status(self, account_id: str, file_id: str) -> models.UploadStatus:
        doc = await self.request(
            "files.show_file_upload_status", "GET", f"/v4/accounts/{account_id}/files/{file_id}/status"
        )
        return models.status_from(_data(doc))

    async def file(self, account_id: str, file_id: str) -> models.RemoteFile:
        doc = await self.request("files.show", "GET", f"/v4/accounts/{account_id}/files/{file_id}")
        return models.file_from(_data(doc))

    async def move_file(self, account_id: str, file_id: str, parent_id: str) -> models.RemoteFile:
        """Into another folder (or a version stack). Setting a parent twice is harmless: safe to retry."""
        doc = await self.request(
            "files.move", "PATCH", f"/v4/accounts/{account_id}/files/{file_id}/move",
            json={"data": {"parent_id": parent_id}}, idempotent=True,
        )  # fmt: skip
        return models.file_from(_data(doc))

    async def rename_file(self, account_id: str, file_id: str, name: str) -> models.RemoteFile:
        doc = await self.request(
            "files.update", "PATCH", f"/v4/accounts/{account_id}/files/{file_id}",
            json={"data": {"name": name}}, idempotent=True,
        )  # fmt: skip
        return models.file_from(_data(doc))

    # ---- version stacks and comments ----
    async def create_version_stack(self, account_id: str, folder_id: str, file_ids: list[str]) -> str:
        """A stack of 2 to 10 files of this folder, oldest first (the last is its head). Not
        idempotent: after a lost answer, look at the files' parents before trying again."""
        doc = await self.request(
            "version_stacks.create", "POST", f"/v4/accounts/{account_id}/folders/{folder_id}/version_stacks",
            json={"data": {"file_ids": file_ids}}, idempotent=False,
        )  # fmt: skip
        return _str_id(_data(doc))

    async def version_stack_files(self, account_id: str, stack_id: str) -> list[models.RemoteFile]:
        """The stack's versions, oldest first. Raises ``NotFound`` when it is not a stack."""
        path = f"/v4/accounts/{account_id}/version_stacks/{stack_id}/children"
        return [models.file_from(d) async for d in self.paginate("version_stacks.index", path)]

    async def create_comment(self, account_id: str, file_id: str, text: str) -> str:
        doc = await self.request(
            "comments.create", "POST", f"/v4/accounts/{account_id}/files/{file_id}/comments",
            json={"data": {"text": text}}, idempotent=False,
        )  # fmt: skip
        return _str_id(_data(doc))

    async def delete_file(self, account_id: str, file_id: str) -> None:
        """Delete a placeholder; already gone is fine."""
        with contextlib.suppress(NotFound):
            await self.request("files.delete", "DELETE", f"/v4/accounts/{account_id}/files/{file_id}")


def _data(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise FrameioError("Frame.io answered without the expected data.")
    data: dict[str, Any] = doc["data"]
    return data


def _str_id(data: dict[str, Any]) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not value:
        raise FrameioError("Frame.io answered without the new item's id.")
    return value


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
