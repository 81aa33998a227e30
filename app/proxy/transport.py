"""An httpx transport that sends each request the way the proxy router says.

httpx takes one proxy per client (or per URL pattern, fixed when the client is made); a proxy
script decides per host, may name a second proxy for when the first is down, and can change
while PostFlow runs. So every client gets this transport: it asks the router (in a thread
when the answer is not known yet: a script may look names up), keeps one pool of connections
per way out, and tries the next way the script offers when a proxy's port cannot be reached,
or DIRECT fails to connect. A proxy that answers but refuses (403, 407, a TLS failure beyond
it) is not walked around: the error is the user's to see.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import httpx

from app.proxy.router import ProxyRouter, ProxyUnusable, Route, origin, reachable

log = logging.getLogger(__name__)
UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout)


class RoutingTransport(httpx.AsyncBaseTransport):
    def __init__(self, router: ProxyRouter, **options: Any) -> None:
        """``options``: for each ``httpx.AsyncHTTPTransport`` (limits, retries, TLS)."""
        self._router = router
        self._options = options
        self._ways: dict[Route, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        routes = self._router.cached(url)
        if routes is None:
            try:
                routes = await self._ask(url)
            except ProxyUnusable as exc:
                raise httpx.ConnectError(str(exc), request=request) from None
        for index, route in enumerate(routes):
            try:
                return await self._way(route).handle_async_request(request)
            except UNREACHED:  # nothing of the request was sent yet: safe to send it another way
                if index == len(routes) - 1:
                    raise
                if route is not None:
                    if await asyncio.to_thread(reachable, route):
                        raise  # the proxy is there: what failed is beyond it
                    self._router.mark_down(route)  # the next way the script offers, for a minute
        raise AssertionError("a router answer always holds a route")  # pragma: no cover

    async def _ask(self, url: str) -> tuple[Route, ...]:
        """One thread asks the router per origin, however many requests wait for the answer (a
        burst of part uploads must not take every worker thread while a script is fetched)."""
        key = origin(url)
        asking = self._router.asking
        task = asking.get(key)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(asyncio.to_thread(self._router.routes, url))
            asking[key] = task
            task.add_done_callback(functools.partial(_settled, asking, key))
        return await asyncio.shield(task)  # a request cancelled leaves the others their answer

    def _way(self, route: Route) -> httpx.AsyncHTTPTransport:
        way = self._ways.get(route)
        if way is None:
            way = httpx.AsyncHTTPTransport(proxy=route, **self._options)
            self._ways[route] = way
        return way

    async def aclose(self) -> None:
        ways, self._ways = list(self._ways.values()), {}
        for way in ways:
            await way.aclose()


def _settled(asking: dict[str, Any], key: str, task: asyncio.Future[Any]) -> None:
    if asking.get(key) is task:
        del asking[key]
    if not task.cancelled():
        task.exception()  # seen here, whoever was waiting for it


def routed(router: ProxyRouter | None) -> dict[str, Any]:
    """Keyword arguments for an ``httpx.AsyncClient`` that goes out the router's way (nothing
    given: httpx's own reading of the environment)."""
    return {"transport": RoutingTransport(router)} if router is not None else {}
