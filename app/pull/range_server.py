"""The range server: lets Frame.io pull a published file from this machine (through the tunnel).

It is the one door from the internet to an editor's disk, so it serves only what the engine
published, and nothing else can be learnt from it:
- it binds 127.0.0.1 only (the tunnel connects locally), on an ephemeral port;
- a file is published under a random path of 192 bits with no extension, looked up as a whole
  string in a table: no path is ever built from a request, so traversal has nothing to act on;
- a publication ends when the upload completes, fails or is cancelled (``unpublish``), after its
  lifetime, and at shutdown; "never existed", "expired" and "wrong method" are the same 404;
- no listings, ``Cache-Control: no-store, private``, at most ``max_in_flight`` requests at once
  (well under the tunnel's 200), the others a 503 with ``Retry-After``;
- GET and HEAD only, with ranges (``range_header``), ``ETag``/``Last-Modified``, ``If-Range`` and
  ``If-None-Match``; the bytes are read in a worker thread, a slice ahead of the socket;
- a file that changes while published (size, mtime, inode) is never served again: mixed bytes
  would make a corrupt upload that looks fine. ``on_changed`` tells the engine, whose job fails.
Access logs name the publication by a short digest of its token, never the token itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import IO

from aiohttp import web

from app.core.logging_setup import SECRETS
from app.pull.range_header import Outcome, parse_range, whole

log = logging.getLogger(__name__)
TOKEN_BYTES = 24  # 192 random bits
NOT_FOUND = b"Not found.\n"
NO_STORE = {"Cache-Control": "no-store, private"}
SLICE = 32 << 20  # bytes brought into the page cache by a worker thread, then sent by sendfile
SEND_PIECE = 8 << 20  # bytes per sendfile call: progress and activity are counted per piece
PROBE_EVERY = 1 << 20  # how finely a slice is probed for being in the page cache
FINAL_PIECE = 64 << 10  # the response's last bytes, sent once the file is seen unchanged
WARM_BUFFER = 256 << 10


@dataclass(frozen=True)
class Publication:
    token: str
    path: str
    size: int
    mtime_ns: int
    inode: int
    expires_at: float  # monotonic

    @property
    def etag(self) -> str:
        return f'"{self.size:x}-{self.mtime_ns:x}-{self.inode:x}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime_ns / 1e9, usegmt=True)

    @property
    def label(self) -> str:
        """How logs name it: enough to follow one file, useless to fetch it."""
        return hashlib.sha256(self.token.encode()).hexdigest()[:8]


@dataclass
class Served:
    """What one publication has served so far: the engine's progress and stall detection."""

    bytes_sent: int = 0  # every byte sent, retries included
    requests: int = 0
    last_request: float = 0.0  # monotonic
    changed: bool = False  # the file changed on disk: never served again
    spans: list[tuple[int, int]] = field(default_factory=list)  # distinct [start, end) sent, merged

    def add(self, start: int, length: int) -> None:
        self.bytes_sent += length
        merged: list[tuple[int, int]] = []
        lo, hi = start, start + length
        for a, b in self.spans:
            if b < lo or a > hi:
                merged.append((a, b))
            else:
                lo, hi = min(lo, a), max(hi, b)
        merged.append((lo, hi))
        merged.sort()
        self.spans = merged

    @property
    def covered(self) -> int:
        """Distinct bytes sent: how much of the file the fetcher has."""
        return sum(b - a for a, b in self.spans)


class RangeServer:
    def __init__(
        self,
        *,
        max_in_flight: int = 64,
        clock: Callable[[], float] = time.monotonic,
        throttle: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """``throttle(n)`` is awaited before n bytes leave: the uploads' shared bandwidth limit
        (and its schedule) holds for pulls too."""
        self.max_in_flight = max_in_flight
        self._throttle = throttle
        self._clock = clock
        self._published: dict[str, Publication] = {}
        self.served: dict[str, Served] = {}  # by token, kept after unpublish until ``forget``
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: told when a published file changed on disk (its token, its path): the job fails
        self.on_changed: Callable[[str, str], None] | None = None

    # ---- lifecycle ----
    async def start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.port

    async def stop(self) -> None:
        SECRETS.discard(*self._published, *self.served)
        self._published.clear()  # nothing is served past this point
        self.served.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- what is served ----
    def publish(self, path: str, lifetime: float) -> Publication:
        """Serve this file (as it is now) under a new random path until ``unpublish``, the
        lifetime, or shutdown. Raises ``OSError`` if it cannot be read."""
        st = os.stat(path)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        SECRETS.add(token)  # whoever logs a URL that holds it (a library, an error), it is masked
        publication = Publication(
            token, path, st.st_size, st.st_mtime_ns, st.st_ino, self._clock() + lifetime
        )
        self._published[token] = publication
        self.served[token] = Served(last_request=self._clock())
        log.info(
            "range server: published %s (%d bytes) as %s",
            os.path.basename(path),
            st.st_size,
            publication.label,
        )
        return publication

    def unpublish(self, token: str) -> None:
        publication = self._published.pop(token, None)
        if publication is not None:
            log.info("range server: %s no longer served", publication.label)

    def forget(self, token: str) -> None:
        """Unpublished, and its counters no longer needed."""
        self.unpublish(token)
        self.served.pop(token, None)
        SECRETS.discard(token)

    def url_path(self, publication: Publication) -> str:
        return "/" + publication.token

    def _lookup(self, request: web.Request) -> Publication | None:
        if request.method not in ("GET", "HEAD"):
            return None
        publication = self._published.get(request.path[1:]) if request.path.startswith("/") else None
        if publication is None:
            return None
        if self._clock() >= publication.expires_at:
            self.unpublish(publication.token)
            return None
        return publication

    # ---- answering ----
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        publication = self._lookup(request)
        if publication is None:
            return web.Response(status=404, body=NOT_FOUND, content_type="text/plain", headers=NO_STORE)
        if self._in_flight >= self.max_in_flight:
            return web.Response(status=503, text="Busy.\n", headers={**NO_STORE, "Retry-After": "1"})
        self._in_flight += 1
        served = self.served.get(publication.token)
        if served is not None:
            served.requests += 1
            served.last_request = self._clock()
        try:
            return await self._serve(request, publication)
        except (ConnectionResetError, asyncio.CancelledError):
            log.debug("range server: %s: the client went away", publication.label)
            raise
        finally:
            self._in_flight -= 1

    async def _serve(self, request: web.Request, publication: Publication) -> web.StreamResponse:
        fobj: IO[bytes] = await asyncio.to_thread(open, publication.path, "rb")
        try:
            if await _current(fobj) != _identity_of(publication):
                self._changed(publication)
                return web.Response(status=404, body=NOT_FOUND, content_type="text/plain", headers=NO_STORE)
            headers = {
                **NO_STORE, "ETag": publication.etag, "Last-Modified": publication.last_modified,
                "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
            }  # fmt: skip
            if _none_match(request.headers.get("If-None-Match"), publication.etag):
                return web.Response(status=304, headers=headers)
            answer = parse_range(request.headers.get("Range"), publication.size)
            if "Range" in request.headers and not _if_range_holds(
                request.headers.get("If-Range"), publication
            ):
                answer = whole(publication.size)
            if answer.outcome is Outcome.UNSATISFIABLE:
                headers["Content-Range"] = answer.content_range(publication.size)
                return web.Response(status=416, headers=headers)
            response = web.StreamResponse(status=answer.outcome.value, headers=headers)
            response.content_length = max(0, answer.length)
            if answer.outcome is Outcome.PARTIAL:
                response.headers["Content-Range"] = answer.content_range(publication.size)
            await response.prepare(request)
            if request.method == "GET" and answer.length > 0:
                await self._send(request, response, fobj, publication, answer.start, answer.length)
            await response.write_eof()
            log.debug("range server: %s %s %s", publication.label, request.method, response.status)
            return response
        finally:
            fobj.close()

    async def _send(self, request: web.Request, response: web.StreamResponse, fobj: IO[bytes],
                    publication: Publication, offset: int, count: int) -> None:  # fmt: skip
        """Slice by slice: a worker thread first reads each slice (an uncached file on a network
        volume can take seconds to read: never on the event loop), then ``sendfile`` sends it
        from the page cache without a copy, piece by piece, while the thread already reads the
        next slice. The last piece goes only once the file is seen unchanged: a rewrite during
        the send ends the response short, so no fetcher ever holds a complete answer made of two
        versions."""
        transport = request.transport
        fd = fobj.fileno()
        end = offset + count
        served = self.served.get(publication.token)
        loop = asyncio.get_running_loop()
        warming = _warming(fd, offset, min(SLICE, count))
        position = offset
        try:
            while position < end:
                got = await warming
                if got <= 0:
                    raise ConnectionResetError("the file got shorter while it was sent")
                start, position = position, position + got
                if position < end:
                    warming = _warming(fd, position, min(SLICE, end - position))
                if transport is None or transport.is_closing():
                    raise ConnectionResetError("the client went away")
                for piece, size in _pieces(start, got, end):  # progress and activity as they go
                    if piece + size >= end and await _current(fobj) != _identity_of(publication):
                        self._changed(publication)  # checked before the last few bytes leave
                        raise ConnectionResetError("the file changed while it was sent")
                    if self._throttle is not None:
                        await self._throttle(size)
                    try:
                        await loop.sendfile(transport, fobj, piece, size)
                    except NotImplementedError:  # no sendfile here: read again, in a thread
                        await response.write(await asyncio.to_thread(os.pread, fd, size, piece))
                    if served is not None:
                        served.add(piece, size)
                        served.last_request = self._clock()
        finally:
            if not warming.done():
                warming.cancel()
                await asyncio.gather(warming, return_exceptions=True)

    def _changed(self, publication: Publication) -> None:
        log.warning("range server: %s changed on disk while published; no longer served", publication.label)
        self.unpublish(publication.token)
        served = self.served.get(publication.token)
        if served is not None:
            served.changed = True
        if self.on_changed is not None:
            self.on_changed(publication.token, publication.path)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def _pieces(start: int, count: int, end: int) -> list[tuple[int, int]]:
    """(offset, size) of each ``sendfile`` call for a slice; the response's final bytes are a
    small piece of their own, sent only after the last check."""
    stop = start + count
    bulk_end = max(start, end - FINAL_PIECE) if stop >= end else stop
    out = [(p, min(SEND_PIECE, bulk_end - p)) for p in range(start, bulk_end, SEND_PIECE)]
    if stop > bulk_end:
        out.append((bulk_end, stop - bulk_end))
    return out


def _warming(fd: int, offset: int, count: int) -> asyncio.Future[int]:
    """The slice's size once it is in the page cache: at once if it already is (a cheap probe),
    else after a worker thread brought it in."""
    if _cached(fd, offset, count):
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(count)
        return done
    return asyncio.ensure_future(asyncio.to_thread(_warm, fd, offset, count))


def _cached(fd: int, offset: int, count: int) -> bool:
    """Is the slice in the page cache? One byte read without waiting (``RWF_NOWAIT``) every
    ``PROBE_EVERY`` bytes and at the end: any that would wait means no. Never blocks; where the
    OS or the file system cannot tell, the answer is no (the thread reads it)."""
    if not _NOWAIT:
        return False
    probe = bytearray(1)
    offsets = [*range(offset, offset + count, PROBE_EVERY), offset + count - 1]
    try:
        return all(os.preadv(fd, [probe], at, os.RWF_NOWAIT) == 1 for at in offsets)
    except BlockingIOError:
        return False
    except OSError:  # EOPNOTSUPP and the like: this file system cannot say
        return False


def _warm(fd: int, offset: int, count: int) -> int:
    """Blocking (a worker thread): bring the slice into the page cache so ``sendfile`` sends it
    without waiting on the disk; returns how many bytes there are (fewer: the file got shorter).
    Linux pulls the pages with a ``sendfile`` to /dev/null (no copy); elsewhere they are read."""
    done = 0
    if _DEVNULL is not None:
        while done < count:
            n = os.sendfile(_DEVNULL, fd, offset + done, count - done)
            if n <= 0:
                break
            done += n
        return done
    scratch = bytearray(min(count, WARM_BUFFER))
    view = memoryview(scratch)
    while done < count:
        n = os.preadv(fd, [view[: min(len(scratch), count - done)]], offset + done)
        if n <= 0:
            break
        done += n
    return done


def _devnull() -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    return os.open(os.devnull, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))


_DEVNULL = _devnull()
_NOWAIT = hasattr(os, "RWF_NOWAIT")


async def _current(fobj: IO[bytes]) -> tuple[int, int, int]:
    return _identity(await asyncio.to_thread(os.fstat, fobj.fileno()))


def _identity_of(publication: Publication) -> tuple[int, int, int]:
    return publication.size, publication.mtime_ns, publication.inode


def _none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: a weak comparison, ``*`` matches any current file."""
    if header is None:
        return False
    tags = [t.strip() for t in header.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def _if_range_holds(header: str | None, publication: Publication) -> bool:
    """RFC 9110 §13.1.5: the Range applies only if the validator still matches (a strong ETag,
    or exactly the Last-Modified date); otherwise the whole file is sent."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith(("W/", '"')):
        return value == publication.etag  # strong comparison: a weak tag never matches
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(when.timestamp()) == int(publication.mtime_ns // 1_000_000_000)
