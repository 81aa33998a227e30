"""Part PUTs sent from worker threads: the bytes of a 100 GB upload never cross the event loop.

The engine shares its process, its event loop and its GIL with the tray app. Streamed through
an async HTTP client, every chunk costs a thread hand-off to read it, a copy into the
transport's buffer and several loop wake-ups, all holding the GIL the window needs to paint.
Here one worker thread per part reads the file into a reused buffer (``preadv``) and writes it
to the socket (``sendall``); both release the GIL, as curl's loop would. The loop hears only
progress, a few times a second, and the answer.

Behaviour matches what the uploader expects of an HTTP client: ``httpx`` exceptions for
transport failures (``ConnectError``/``ConnectTimeout`` when the storage cannot be reached,
other ``TransportError`` subclasses mid-request), an ``httpx.Response`` for any answer (an early
answer to a body not fully sent is read too, as httpcore does), ``part_timeout`` seconds
without progress on the socket, the shared bandwidth budget, and cancellation that aborts the
socket at once (the thread reads through its own duplicate of the file descriptor, so the
caller may close its handle whatever the thread is doing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError as CancelledFuture
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from app.core.read_at import read_at
from app.engine.bandwidth import BandwidthLimiter
from app.engine.read_buffer import SIZE as CHUNK
from app.engine.read_buffer import thread_buffer
from app.engine.upload_errors import FileChanged, SourceUnavailable
from app.proxy.router import ProxyRouter, ProxyUnusable, reachable
from app.proxy.system_pac import SystemPac

MIN_CHUNK = 64 * 1024
PROGRESS_EVERY = 0.2  # seconds between progress reports to the loop
CONNECT_TIMEOUT = 15.0  # as the httpx client had it
SEND_SLICE = 1024 * 1024  # the progress timeout applies to each slice
EARLY_ANSWER_WAIT = 5.0  # seconds to read an answer the storage may have sent before failing
ABORT_WAIT = 2.0  # seconds a cancel waits for the thread to notice (a connect cannot be cut short)


class _Aborted(Exception):
    """The part was cancelled from the loop; the socket was shut down under the thread."""


def _tls_context() -> ssl.SSLContext:
    """httpx's own context (certifi, and SSL_CERT_FILE / SSL_CERT_DIR), so the parts trust
    exactly the servers the API calls do, TLS-inspecting company proxies included."""
    return httpx.create_ssl_context()


class PartSender:
    def __init__(
        self, timeout: float, bandwidth: BandwidthLimiter, max_parts: int = 64,
        proxies: ProxyRouter | None = None,
    ) -> None:  # fmt: skip
        """``proxies``: the way out of every part, as of the API calls (None: the environment's)."""
        self.timeout = timeout
        self.proxies = proxies or ProxyRouter(system=SystemPac)  # no router given: no system script
        self._bandwidth = bandwidth
        self._executor = ThreadPoolExecutor(max_workers=max_parts, thread_name_prefix="part")
        self._tls = _tls_context()

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def put(
        self, url: str, *, headers: Mapping[str, str], fd: int, offset: int, size: int,
        sent: Callable[[int], None], name: str = "the file",
    ) -> httpx.Response:  # fmt: skip
        loop = asyncio.get_running_loop()
        # The thread reads through its own descriptor: the caller may close its handle the
        # moment this returns, and a number reused by another open file must never be read.
        try:
            own_fd = os.dup(fd)
        except OSError as exc:  # out of descriptors: a retry later, not a crash
            raise SourceUnavailable(f"{name} cannot be read right now: {exc.strerror}") from None
        part = _Part(self, loop, url, headers, own_fd, offset, size, sent, name)
        future = loop.run_in_executor(self._executor, part.run)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            part.abort()  # a blocked send or read fails at once; nothing more is read or sent
            with contextlib.suppress(BaseException):
                # A connect cannot be interrupted: do not make a pause or a quit wait for it.
                await asyncio.wait_for(asyncio.shield(future), ABORT_WAIT)
            raise

    def chunk_size(self) -> int:
        rate = self._bandwidth.rate
        return CHUNK if rate <= 0 else max(MIN_CHUNK, min(CHUNK, rate // 8))


class _Part:
    def __init__(
        self, sender: PartSender, loop: asyncio.AbstractEventLoop, url: str, headers: Mapping[str, str],
        fd: int, offset: int, size: int, sent: Callable[[int], None], name: str,
    ) -> None:  # fmt: skip
        self._sender = sender
        self._loop = loop
        self._url = url
        self._headers = dict(headers)
        self._fd = fd
        self._offset = offset
        self._size = size
        self._sent = sent
        self._name = name
        self._aborted = threading.Event()
        self._sock: socket.socket | None = None
        self._budget: Future[None] | None = None
        self._lock = threading.Lock()
        self._route: str | None = None

    # ---- from the loop ----
    def abort(self) -> None:
        self._aborted.set()
        with self._lock:
            if self._budget is not None:
                self._budget.cancel()  # a wait for bandwidth ends at once
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    # The plain socket's shutdown, even under TLS: SSLSocket.shutdown first drops
                    # its TLS state, and a send racing it would go out unencrypted.
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    # ---- in the worker thread ----
    def run(self) -> httpx.Response:
        try:
            return self._run()
        finally:
            os.close(self._fd)

    def _run(self) -> httpx.Response:
        try:
            conn = self._connection()
        except (ValueError, http.client.HTTPException, ProxyUnusable) as exc:  # a URL or proxy unusable
            raise httpx.ConnectError(f"the upload address cannot be used: {exc}") from None
        try:
            self._connect(conn)
            try:
                self._send_body(conn)
            except httpx.WriteTimeout:
                raise  # nothing moves on this connection: no answer is coming either
            except httpx.TransportError:
                early = self._early_answer(conn)  # the server may have answered already: say so
                if early is None:
                    raise
                return early
            return self._answer(conn)
        finally:
            with self._lock:
                self._sock = None
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self._url)
        self._route = self._sender.proxies.first(self._url)  # blocking, as this thread may
        proxy = _proxy_at(self._route)
        host, port = parts.hostname or "", parts.port
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        where = (proxy.host, proxy.port) if proxy else (host, port)
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                *where, timeout=CONNECT_TIMEOUT, context=self._sender._tls
            )
            if proxy is not None:  # CONNECT through the proxy, then TLS with the storage itself
                conn.set_tunnel(host, port, headers=proxy.headers)
        else:
            conn = http.client.HTTPConnection(*where, timeout=CONNECT_TIMEOUT)
            if proxy is not None:
                self._target = self._url  # a plain-HTTP proxy takes the absolute URL
                self._headers.update(proxy.headers)
        return conn

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if self._aborted.is_set():
            raise _Aborted
        try:
            try:
                conn.connect()
            except OSError as exc:
                refused = str(exc).startswith("Tunnel connection failed")  # the proxy answered CONNECT
                if not refused and self._route is not None and not reachable(self._route):
                    self._sender.proxies.mark_down(self._route)  # the next try takes the script's next way
                if refused:
                    raise http.client.HTTPException(
                        str(exc).removeprefix("Tunnel connection failed: ")
                    ) from None
                raise
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"the upload storage did not answer in {CONNECT_TIMEOUT:.0f}s"
            ) from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS with the upload storage failed: {exc}") from None
        except http.client.HTTPException as exc:  # the proxy's answer to CONNECT (e.g. 407)
            raise httpx.ConnectError(f"the proxy refused the way to the upload storage: {exc}") from None
        except OSError as exc:
            raise httpx.ConnectError(f"the upload storage cannot be reached: {exc}") from None
        assert conn.sock is not None
        conn.sock.settimeout(self._sender.timeout)  # from now on: seconds without progress
        with self._lock:
            self._sock = conn.sock
        if self._aborted.is_set():
            raise _Aborted

    def _send_body(self, conn: http.client.HTTPConnection) -> None:
        try:
            conn.putrequest("PUT", self._target, skip_accept_encoding=True)
            for key, value in self._headers.items():
                conn.putheader(key, value)
            conn.endheaders()
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, writing=True) from None
        buffer = thread_buffer()
        view = memoryview(buffer)
        position, end = self._offset, self._offset + self._size
        unreported, reported_at = 0, time.monotonic()
        while position < end:
            if self._aborted.is_set():
                raise _Aborted
            want = min(self._sender.chunk_size(), end - position, len(buffer))
            try:
                got = read_at(self._fd, view[:want], position)  # the thread's own duplicate
            except OSError as exc:  # the volume went away mid-read
                raise SourceUnavailable(f"{self._name} cannot be read right now: {exc.strerror}") from None
            if got == 0:
                raise FileChanged(f"{self._name} got shorter while it was being uploaded.")
            self._spend(got)
            try:
                assert conn.sock is not None
                # In slices: sendall's timeout is a deadline for the whole call, and "seconds
                # without progress" must not fail a 4 MiB chunk on a slow uplink.
                for start in range(0, got, SEND_SLICE):
                    if self._aborted.is_set():
                        raise _Aborted
                    conn.sock.sendall(view[start : min(got, start + SEND_SLICE)])
            except (OSError, ValueError) as exc:
                raise self._transport_error(exc, writing=True) from None
            position += got
            unreported += got
            now = time.monotonic()
            if now - reported_at >= PROGRESS_EVERY or position == end:
                self._report(unreported)
                unreported, reported_at = 0, now

    def _spend(self, amount: int) -> None:
        """The shared bandwidth budget (an asyncio object): waited for on the loop."""
        if self._sender._bandwidth.rate <= 0:
            return
        with self._lock:
            if self._aborted.is_set():
                raise _Aborted
            self._budget = asyncio.run_coroutine_threadsafe(
                self._sender._bandwidth.consume(amount), self._loop
            )
        try:
            self._budget.result()
        except CancelledFuture:
            raise _Aborted from None
        finally:
            with self._lock:
                self._budget = None

    def _report(self, amount: int) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed at quit
            self._loop.call_soon_threadsafe(self._sent, amount)

    def _answer(self, conn: http.client.HTTPConnection) -> httpx.Response:
        try:
            answer = conn.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, writing=False) from None
        return httpx.Response(answer.status, headers=answer.getheaders(), content=body)

    def _early_answer(self, conn: http.client.HTTPConnection) -> httpx.Response | None:
        if self._aborted.is_set() or conn.sock is None:
            return None
        with contextlib.suppress(OSError):
            conn.sock.settimeout(EARLY_ANSWER_WAIT)
        try:
            return self._answer(conn)
        except httpx.TransportError:
            return None

    def _transport_error(self, exc: BaseException, *, writing: bool) -> BaseException:
        if self._aborted.is_set():
            return _Aborted()
        words = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TimeoutError):
            return httpx.WriteTimeout(words) if writing else httpx.ReadTimeout(words)
        if isinstance(exc, http.client.HTTPException):
            return httpx.RemoteProtocolError(words)
        return httpx.WriteError(words) if writing else httpx.ReadError(words)


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    headers: dict[str, str]  # Proxy-Authorization when the address carries credentials


def _proxy_at(address: str | None) -> _Proxy | None:
    """The router's way out as host, port and credentials (None: direct)."""
    if not address:
        return None
    where = urllib.parse.urlsplit(address if "://" in address else f"http://{address}")
    if where.scheme not in ("http", ""):
        raise ValueError(f"proxy {where.scheme}://{where.hostname}: only http:// proxies carry uploads")
    headers = {}
    if where.username:
        user = urllib.parse.unquote(where.username)
        secret = urllib.parse.unquote(where.password or "")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    return _Proxy(where.hostname or "", where.port or 80, headers)
