"""An answer's body, sent by a thread of its own: the range server's bytes never touch the loop.

A slice of a file on a network volume that is not cached yet can take seconds to read
(LucidLink streams it from the cloud); on the event loop that read would freeze the tray. So
each answer being sent has a sender thread that moves the bytes with ``sendfile`` (no copy),
or reads and writes them where the file system cannot ``sendfile``. The event loop stays in
charge of everything else: it allows each piece (after the bandwidth limit), at most
``AHEAD`` in front of the thread so the thread never waits on it, and hears of each piece as
it leaves.

The thread works through its own duplicates of the file's and the socket's descriptors,
closed only when it ends: if the answer is abandoned meanwhile (client gone, server stopping),
a number the loop closes cannot be handed to another file or another client's socket while
the thread still uses it. Every piece the thread takes is answered, and its end is always
told, so the loop never waits for a piece that will not come.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import select
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.core.read_at import read_at

log = logging.getLogger(__name__)
CHECK_EVERY = 0.25  # seconds a thread waits on a full socket before it looks for a stop
COPY_BUFFER = 1 << 20  # where sendfile cannot work: bytes read, then written, at a time
#: "this file or socket cannot sendfile" (a FUSE or SMB volume, say): copy instead
_UNSUPPORTED = {
    getattr(errno, name) for name in ("EINVAL", "ENOSYS", "ENOTSUP", "EOPNOTSUPP") if hasattr(errno, name)
}
#: sendfile from a thread needs the call and a way to wait on a non-blocking socket (not Windows)
THREADED = hasattr(os, "sendfile") and hasattr(select, "poll")
_ENDED = object()  # the thread's last word, whatever happened


class Shorter(ConnectionResetError):
    """The file ended before the answer did: it got shorter while it was sent."""


class Stopped(ConnectionResetError):
    """The answer was stopped (publication ended, client gone, server stopping)."""


class Answer:
    """One request being answered: the flag that stops its sending, and its connection."""

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self.stop = threading.Event()
        self._transport = transport

    def end(self) -> None:
        """Stop now: the thread stops at its next look, and the client sees the connection
        close at once (shut down through the loop's own descriptor, still open here), not
        once a thread caught in a slow read lets go of its duplicate."""
        self.stop.set()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)


class BodySender:
    AHEAD = 2  # pieces allowed before the thread reached them

    def __init__(self, sock_fd: int, fd: int, stop: threading.Event,
                 on_sent: Callable[[int, int], None]) -> None:  # fmt: skip
        self.stop = stop
        self._sock_fd, self._fd = sock_fd, fd  # the loop's: duplicated at start
        self._on_sent = on_sent
        self._loop = asyncio.get_running_loop()
        self._allowed: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._done: asyncio.Queue[object] = asyncio.Queue()
        self._pending = 0
        self._ended = False
        self._sendfile = True  # until the file system says it cannot

    def start(self, pool: ThreadPoolExecutor) -> None:
        own_sock = os.dup(self._sock_fd)
        own_file = os.dup(self._fd)
        try:
            pool.submit(self._run, own_sock, own_file)
        except RuntimeError:  # the pool is shut down: the server is stopping
            os.close(own_sock)
            os.close(own_file)
            raise Stopped("the range server is stopping") from None

    async def send(self, piece: int, size: int) -> None:
        """Allow this piece; returns once the thread is at most ``AHEAD`` - 1 pieces behind."""
        self._allowed.put((piece, size))
        self._pending += 1
        while self._pending >= self.AHEAD:
            await self._settle_one()

    async def drain(self) -> None:
        """Every piece allowed so far has left."""
        while self._pending:
            await self._settle_one()

    def finish(self) -> None:
        self.stop.set()
        self._allowed.put(None)

    async def _settle_one(self) -> None:
        if self._ended:
            raise Stopped("the sender thread ended")
        outcome = await self._done.get()
        if outcome is _ENDED:
            self._ended = True
            raise Stopped("the sender thread ended before the answer did")
        self._pending -= 1
        if isinstance(outcome, ConnectionError):  # reset, broken pipe: the client went away
            raise ConnectionResetError("the client went away") from outcome
        if isinstance(outcome, OSError):  # the volume's hiccup (EIO), mostly
            why = outcome.strerror or outcome
            log.warning("range server: the send failed (%s); the answer ends short", why)
            raise ConnectionResetError("the send failed") from outcome
        if isinstance(outcome, BaseException):
            log.error("range server: a sender thread failed", exc_info=outcome)
            raise ConnectionResetError("the sender thread failed") from outcome
        assert isinstance(outcome, tuple)
        piece, size, sent = outcome
        self._on_sent(piece, sent)
        if sent < size:
            if self.stop.is_set():
                raise Stopped("the answer was stopped")
            raise Shorter("the file got shorter while it was sent")

    # ---- the thread ----
    def _run(self, own_sock: int, own_file: int) -> None:
        try:
            while True:
                try:
                    allowed = self._allowed.get(timeout=CHECK_EVERY)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if allowed is None:
                    return
                piece, size = allowed
                outcome: object
                try:  # stopped: 0 bytes at once, but the piece is still answered
                    outcome = (piece, size, self._piece(own_sock, own_file, piece, size))
                except BaseException as exc:  # the loop must hear of any end
                    outcome = exc
                if not self._post(outcome) or not isinstance(outcome, tuple) or outcome[2] < size:
                    return
        finally:
            os.close(own_sock)
            os.close(own_file)
            self._post(_ENDED)

    def _piece(self, sock_fd: int, fd: int, offset: int, count: int) -> int:
        if self._sendfile:
            sent = sendfile_piece(sock_fd, fd, offset, count, self.stop)
            if sent is not None:
                return sent
            self._sendfile = False
            log.info("range server: this file system cannot sendfile; copying instead")
        return copy_piece(sock_fd, fd, offset, count, self.stop)

    def _post(self, outcome: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._done.put_nowait, outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False
        return True


def sendfile_piece(sock_fd: int, fd: int, offset: int, count: int, stop: threading.Event) -> int | None:
    """Blocking: ``count`` bytes of the file from ``offset`` to the socket, which stays
    non-blocking (the event loop shares it): a full socket is waited on with ``poll``, looking
    every ``CHECK_EVERY`` for the stop flag. Returns how many bytes went (fewer: the file got
    shorter, or the send was stopped); None when nothing went because this file or socket
    cannot ``sendfile`` at all."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    done = 0
    while done < count and not stop.is_set():
        try:
            sent = os.sendfile(sock_fd, fd, offset + done, count - done)
        except BlockingIOError:
            poller.poll(CHECK_EVERY * 1000)
            continue
        except OSError as exc:
            if done == 0 and exc.errno in _UNSUPPORTED:
                return None
            raise
        if sent == 0:
            break
        done += sent
    return done


def copy_piece(sock_fd: int, fd: int, offset: int, count: int, stop: threading.Event) -> int:
    """Blocking, like ``sendfile_piece``, for file systems that cannot ``sendfile``: read, then
    write, ``COPY_BUFFER`` bytes at a time."""
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    buffer = memoryview(bytearray(min(COPY_BUFFER, count)))
    done = 0
    while done < count and not stop.is_set():
        got = read_at(fd, buffer[: min(len(buffer), count - done)], offset + done)
        if got <= 0:
            break
        written = 0
        while written < got:
            if stop.is_set():
                return done + written
            try:
                written += os.write(sock_fd, buffer[written:got])
            except BlockingIOError:
                poller.poll(CHECK_EVERY * 1000)
        done += got
    return done


def read_piece(own: int, offset: int, count: int) -> bytes:
    """Blocking: up to ``count`` bytes from ``offset``, read through ``own`` (a duplicate the
    caller made for this read), which is closed after. Fewer bytes: the file got shorter."""
    try:
        buffer = bytearray(count)
        view, done = memoryview(buffer), 0
        while done < count:
            got = read_at(own, view[done:], offset + done)
            if got <= 0:
                break
            done += got
        return bytes(view[:done])
    finally:
        os.close(own)


async def flushed(transport: asyncio.BaseTransport) -> None:
    """What asyncio still buffers for this socket (the headers, to a client slow to read) must
    leave before a thread writes the body on the socket itself."""
    assert isinstance(transport, asyncio.WriteTransport)
    while transport.get_write_buffer_size() > 0:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        await asyncio.sleep(0.005)
