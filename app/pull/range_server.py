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
import queue
import secrets
import select
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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
SEND_PIECE = 8 << 20  # bytes per sender-thread task: progress and activity are counted per piece
FINAL_PIECE = 64 << 10  # the response's last bytes, sent once the file is seen unchanged
CHECK_EVERY = 0.25  # seconds a sender thread waits on a full socket before it looks for a stop


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
        self._sending: dict[str, set[threading.Event]] = {}  # by token: the stop flag of each send
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
        for stops in self._sending.values():
            for stop in stops:
                stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._senders is not None:
            self._senders.shutdown(wait=False, cancel_futures=True)  # each sees its stop flag
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

    def unpublish(self, token: str) -> None:
        """Ends the publication, and any answer still being sent from it (a failed or
        cancelled upload's fetcher gets a short answer, not the rest of the file)."""
        publication = self._published.pop(token, None)
        for stop in self._sending.get(token, ()):
            stop.set()
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
        except ConnectionResetError as exc:
            # The client went away, or the answer had to end short (the file changed, the
            # publication ended): the connection closes, so no client can take a short body for
            # a whole one, and the answer below is never sent (aiohttp logs a raised error).
            log.debug("range server: %s: the answer ended early: %s", publication.label, exc)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503, headers=NO_STORE)
        except asyncio.CancelledError:
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
        """The body goes by ``sendfile`` from a sender thread, piece by piece: a slice of a file
        on a network volume that is not cached yet can take seconds to read (LucidLink streams
        from the cloud), which would freeze the event loop, and the tray with it; in a thread it
        waits alone, and many readers' sends run on every core. The loop paces the pieces (the
        bandwidth limit) at most ``AHEAD`` in front of the thread, counts progress as each one
        leaves, and checks the file: the last piece goes only once the file is seen unchanged,
        so a rewrite during the send ends the response short and no fetcher ever holds a
        complete answer made of two versions."""
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None:
            raise ConnectionResetError("the client went away")
        if not _SENDFILE or self._senders is None:  # Windows: read in a thread, write on the loop
            await self._send_by_copy(response, fobj, publication, offset, count)
            return
        served = self.served.get(publication.token)
        end = offset + count
        await _flushed(transport)  # the headers leave before the thread writes on the socket
        sender = _Sender(sock.fileno(), fobj.fileno(), asyncio.get_running_loop())
        self._sending.setdefault(publication.token, set()).add(sender.stop)
        try:
            sender.start(self._senders)
            for piece, size in _pieces(offset, count, end):
                if piece + size >= end:
                    await sender.wait_all_sent(served, self._clock)
                    if await _current(fobj) != _identity_of(publication):
                        self._changed(publication)  # checked before the last few bytes leave
                        raise ConnectionResetError("the file changed while it was sent")
                if self._throttle is not None:
                    await self._throttle(size)
                if sender.stop.is_set() or transport.is_closing():
                    raise ConnectionResetError("the publication ended, or the client went away")
                await sender.send(piece, size, served, self._clock)
            await sender.wait_all_sent(served, self._clock)
        finally:
            sender.finish()  # a thread still at work ends at its next look
            senders = self._sending.get(publication.token)
            if senders is not None:
                senders.discard(sender.stop)
                if not senders:
                    del self._sending[publication.token]

    async def _send_by_copy(self, response: web.StreamResponse, fobj: IO[bytes],
                            publication: Publication, offset: int, count: int) -> None:  # fmt: skip
        """Where the OS has no ``sendfile``: each piece read in a thread, then written."""
        served, fd, end = self.served.get(publication.token), fobj.fileno(), offset + count
        for piece, size in _pieces(offset, count, end):
            if piece + size >= end and await _current(fobj) != _identity_of(publication):
                self._changed(publication)
                raise ConnectionResetError("the file changed while it was sent")
            if self._throttle is not None:
                await self._throttle(size)
            data = await asyncio.to_thread(os.pread, fd, size, piece)
            if not data:
                raise ConnectionResetError("the file got shorter while it was sent")
            await response.write(data)
            if served is not None:
                served.add(piece, len(data))
                served.last_request = self._clock()

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


class _Sender:
    """One answer's sender thread: it sends the pieces the loop allows, in order, and tells the
    loop of each as it leaves. It reads and writes through its own duplicates of the file's and
    the socket's descriptors, closed only when it ends: if the answer is abandoned meanwhile
    (client gone, server stopping), the numbers the loop closes cannot be handed to another
    file or another client's socket while this thread still uses them."""

    AHEAD = 2  # pieces allowed before the thread reached them: it never waits on the loop

    def __init__(self, sock_fd: int, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.stop = threading.Event()
        self._sock_fd, self._fd, self._loop = sock_fd, fd, loop  # the loop's: duplicated at start
        self._allowed: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._done: asyncio.Queue[tuple[int, int, int] | BaseException] = asyncio.Queue()
        self._pending = 0

    def start(self, pool: ThreadPoolExecutor) -> None:
        own_sock = os.dup(self._sock_fd)
        own_file = os.dup(self._fd)
        try:
            pool.submit(self._run, own_sock, own_file)
        except RuntimeError:  # the pool is shut down: the server is stopping
            os.close(own_sock)
            os.close(own_file)
            raise ConnectionResetError("the range server is stopping") from None

    async def send(self, piece: int, size: int, served: Served | None, clock: Callable[[], float]) -> None:
        self._allowed.put((piece, size))
        self._pending += 1
        while self._pending >= self.AHEAD:
            await self._settle_one(served, clock)

    async def wait_all_sent(self, served: Served | None, clock: Callable[[], float]) -> None:
        while self._pending:
            await self._settle_one(served, clock)

    def finish(self) -> None:
        self.stop.set()
        self._allowed.put(None)

    async def _settle_one(self, served: Served | None, clock: Callable[[], float]) -> None:
        outcome = await self._done.get()
        self._pending -= 1
        if isinstance(outcome, ConnectionError):  # reset, broken pipe: the client went away
            raise ConnectionResetError("the client went away") from outcome
        if isinstance(outcome, OSError):  # the file cannot be read now (a network volume's hiccup)
            log.warning("range server: reading the file failed (%s); the answer ends short", outcome.strerror)
            raise ConnectionResetError("the file could not be read") from outcome
        if isinstance(outcome, BaseException):
            raise outcome
        piece, size, sent = outcome
        if served is not None:
            served.add(piece, sent)
            served.last_request = clock()
        if sent < size:
            raise ConnectionResetError("the file got shorter, or the send was stopped")

    def _run(self, own_sock: int, own_file: int) -> None:
        """Blocking: the thread's whole life."""
        try:
            while not self.stop.is_set():
                try:
                    allowed = self._allowed.get(timeout=CHECK_EVERY)
                except queue.Empty:
                    continue
                if allowed is None:
                    return
                piece, size = allowed
                try:
                    outcome: tuple[int, int, int] | BaseException = (
                        piece, size, _sendfile_piece(own_sock, own_file, piece, size, self.stop),
                    )  # fmt: skip
                except OSError as exc:
                    outcome = exc
                try:
                    self._loop.call_soon_threadsafe(self._done.put_nowait, outcome)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return
                if not isinstance(outcome, tuple) or outcome[2] < size:
                    return
        finally:
            os.close(own_sock)
            os.close(own_file)


def _sendfile_piece(sock_fd: int, fd: int, offset: int, count: int, stop: threading.Event) -> int:
    """Blocking: ``count`` bytes of the file from ``offset`` to the socket, which stays
    non-blocking (the event loop shares it): a full socket is waited on with ``poll``, looking
    every ``CHECK_EVERY`` for the stop flag. Returns how many bytes went (fewer: the file got
    shorter, or the send was stopped)."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    done = 0
    while done < count and not stop.is_set():
        try:
            sent = os.sendfile(sock_fd, fd, offset + done, count - done)
        except BlockingIOError:
            poller.poll(CHECK_EVERY * 1000)
            continue
        if sent == 0:
            break
        done += sent
    return done


async def _flushed(transport: asyncio.BaseTransport) -> None:
    """What asyncio still buffers for this socket (the headers, to a client slow to read) must
    leave before a thread writes the body on the socket itself."""
    assert isinstance(transport, asyncio.WriteTransport)
    while transport.get_write_buffer_size() > 0:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        await asyncio.sleep(0.005)


_SENDFILE = hasattr(os, "sendfile") and hasattr(select, "poll")


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
