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
  ``If-None-Match``; the bytes go by ``sendfile`` from sender threads, never the event loop;
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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import IO, Protocol

from aiohttp import web

from app.core.logging_setup import SECRETS
from app.core.unabandoned import made_or_released
from app.pull.body_sender import THREADED, Answer, BodySender, Shorter, flushed, read_piece
from app.pull.range_header import Outcome, parse_range, whole

log = logging.getLogger(__name__)
TOKEN_BYTES = 24  # 192 random bits
NOT_FOUND = b"Not found.\n"
NO_STORE = {"Cache-Control": "no-store, private"}
SEND_PIECE = 8 << 20  # bytes per piece with no bandwidth limit: progress is counted per piece
MIN_PIECE = 256 << 10  # under a limit a piece is a quarter second's worth, but no less than this
FINAL_PIECE = 64 << 10  # the response's last bytes, sent once the file is seen unchanged


class Pacer(Protocol):
    """The shared bandwidth limit, as the range server needs it (the engine's limiter)."""

    @property
    def rate(self) -> int: ...  # bytes per second in force now; 0: no limit

    async def consume(self, amount: int) -> None: ...


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
        pacer: Pacer | None = None,
    ) -> None:
        """``pacer``: the uploads' shared bandwidth limit (and its schedule), which holds for
        pulls too: ``consume(n)`` is awaited before n bytes leave, and its rate sizes them."""
        self.max_in_flight = max_in_flight
        self._pacer = pacer
        self._clock = clock
        self._published: dict[str, Publication] = {}
        self.served: dict[str, Served] = {}  # by token, kept after unpublish until ``forget``
        self._in_flight = 0
        self._answering: dict[str, set[Answer]] = {}  # by token: the requests being answered
        self._senders: ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: told when a published file changed on disk (its token, its path): the job fails
        self.on_changed: Callable[[str, str], None] | None = None

    # ---- lifecycle ----
    async def start(self) -> int:
        # One thread per answer being sent; a few spare for those ending after a stop.
        self._senders = ThreadPoolExecutor(self.max_in_flight + 4, thread_name_prefix="range-send")
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
        for answers in self._answering.values():
            for answer in answers:
                answer.end()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._senders is not None:
            # Not cancelled: a thread still queued starts, sees its stop flag, closes its copies.
            self._senders.shutdown(wait=False)
            self._senders = None

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

    def unpublish(self, token: str, *, keep: Answer | None = None) -> None:
        """Ends the publication, and any answer still being sent from it (a failed or
        cancelled upload's fetcher gets a short answer, not the rest of the file), except
        ``keep``: the one that saw the file change, whose 404 must still go."""
        publication = self._published.pop(token, None)
        for answer in self._answering.get(token, ()):
            if answer is not keep:
                answer.end()
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
        # Registered before anything is awaited: an unpublish from now on stops this answer.
        reply = Answer(request.transport)
        answers = self._answering.setdefault(publication.token, set())
        answers.add(reply)
        try:
            return await self._serve(request, publication, reply)
        except ConnectionResetError as exc:
            # The client went away, or the answer had to end short (the file changed, the
            # publication ended): the connection closes, so no client can take a short body for
            # a whole one, and the answer below is never sent (aiohttp logs a raised error).
            log.debug("range server: %s: the answer ended early: %s", publication.label, exc)
            reply.end()
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503, headers=NO_STORE)
        except asyncio.CancelledError:
            log.debug("range server: %s: the client went away", publication.label)
            raise
        finally:
            self._in_flight -= 1
            reply.stop.set()  # a sender thread still at work ends at its next look
            answers.discard(reply)
            if not answers and self._answering.get(publication.token) is answers:
                del self._answering[publication.token]

    async def _serve(
        self, request: web.Request, publication: Publication, reply: Answer
    ) -> web.StreamResponse:
        fobj: IO[bytes] = await made_or_released(
            asyncio.to_thread(open, publication.path, "rb"), lambda f: f.close()
        )
        try:
            if await _current(fobj) != _identity_of(publication):
                self._changed(publication, keep=reply)
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
                await self._send(request, response, fobj, publication, answer.start, answer.length, reply)
            await response.write_eof()
            log.debug("range server: %s %s %s", publication.label, request.method, response.status)
            return response
        finally:
            await asyncio.to_thread(fobj.close)  # on a FUSE volume, a round trip to its daemon

    async def _send(self, request: web.Request, response: web.StreamResponse, fobj: IO[bytes],
                    publication: Publication, offset: int, count: int, reply: Answer) -> None:  # fmt: skip
        """Piece by piece, from a sender thread (``body_sender``), so that no read of the file
        ever holds up the event loop. The loop paces the pieces (the bandwidth limit), counts
        progress as each one leaves, and checks the file: the last piece goes only once the
        file is seen unchanged, so a rewrite during the send ends the answer short and no
        fetcher ever holds a complete answer made of two versions."""
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None:
            raise ConnectionResetError("the client went away")
        if not THREADED or self._senders is None:  # Windows: read in a thread, write on the loop
            await self._send_by_copy(response, fobj, publication, offset, count, reply)
            return
        end = offset + count
        await flushed(transport)  # the headers leave before the thread writes on the socket
        sent = self._counter(publication)
        sender = BodySender(sock.fileno(), fobj.fileno(), reply.stop, sent)
        sender.start(self._senders)
        try:
            for piece, size in _pieces(offset, count, end, self._piece_size()):
                if piece + size >= end:
                    await sender.drain()
                    await self._unchanged_or_end(fobj, publication)
                if self._pacer is not None:
                    await self._pacer.consume(size)
                if reply.stop.is_set() or transport.is_closing():
                    raise ConnectionResetError("the publication ended, or the client went away")
                await sender.send(piece, size)
            await sender.drain()
        except Shorter:
            await self._unchanged_or_end(fobj, publication)  # it did change: the job hears of it
            raise
        finally:
            sender.finish()  # a thread still at work ends at its next look

    async def _send_by_copy(self, response: web.StreamResponse, fobj: IO[bytes], publication: Publication,
                            offset: int, count: int, reply: Answer) -> None:  # fmt: skip
        """Where the OS has no ``sendfile`` (Windows): each piece read in a thread, through a
        duplicate of its own (a read still running when the answer is abandoned cannot touch
        another file), then written by the loop."""
        sent, end = self._counter(publication), offset + count
        for piece, size in _pieces(offset, count, end, self._piece_size()):
            if piece + size >= end:
                await self._unchanged_or_end(fobj, publication)
            if self._pacer is not None:
                await self._pacer.consume(size)
            if reply.stop.is_set():
                raise ConnectionResetError("the publication ended")
            # Shielded: a cancelled wait must not cancel a read not started yet, which alone
            # closes the duplicate it is given.
            reading = asyncio.ensure_future(asyncio.to_thread(read_piece, os.dup(fobj.fileno()), piece, size))
            data = await asyncio.shield(reading)
            if len(data) < size:
                await self._unchanged_or_end(fobj, publication)
                raise Shorter("the file got shorter while it was sent")
            await response.write(data)
            sent(piece, len(data))

    def _counter(self, publication: Publication) -> Callable[[int, int], None]:
        """Counts each piece as it leaves: the job's progress, and the activity its stall
        check watches."""
        served = self.served.get(publication.token)

        def sent(piece: int, size: int) -> None:
            if served is not None:
                served.add(piece, size)
                served.last_request = self._clock()

        return sent

    def _piece_size(self) -> int:
        return piece_size(self._pacer.rate if self._pacer is not None else 0)

    async def _unchanged_or_end(self, fobj: IO[bytes], publication: Publication) -> None:
        if await _current(fobj) != _identity_of(publication):
            self._changed(publication)
            raise ConnectionResetError("the file changed while it was sent")

    def _changed(self, publication: Publication, *, keep: Answer | None = None) -> None:
        log.warning("range server: %s changed on disk while published; no longer served", publication.label)
        self.unpublish(publication.token, keep=keep)
        served = self.served.get(publication.token)
        if served is not None:
            served.changed = True
        if self.on_changed is not None:
            self.on_changed(publication.token, publication.path)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


def piece_size(rate: int) -> int:
    """Bytes per piece: big with no limit (fewer hand-offs between the loop and the thread),
    about a quarter second's worth under one, so a limited pull leaves smoothly instead of in
    bursts at full speed between pauses."""
    if rate <= 0:
        return SEND_PIECE
    return max(MIN_PIECE, min(SEND_PIECE, rate // 4))


def _pieces(start: int, count: int, end: int, piece: int) -> list[tuple[int, int]]:
    """(offset, size) of each ``sendfile`` call for a slice; the response's final bytes are a
    small piece of their own, sent only after the last check."""
    stop = start + count
    bulk_end = max(start, end - FINAL_PIECE) if stop >= end else stop
    out = [(p, min(piece, bulk_end - p)) for p in range(start, bulk_end, piece)]
    if stop > bulk_end:
        out.append((bulk_end, stop - bulk_end))
    return out


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
