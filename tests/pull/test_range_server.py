"""The range server over real HTTP on loopback: each RFC 9110 rule it follows, and every way a
stranger could try to read something it did not publish."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import string
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from engine_harness import wait_for
from support_clock import Clock

from app.pull.range_server import RangeServer

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[RangeServer, httpx.AsyncClient, Clock, Path]]:
    clock = Clock()
    server = RangeServer(clock=clock, max_in_flight=8)
    port = await server.start()
    media = tmp_path / "SC010_v003.mov"
    media.write_bytes(DATA)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield server, http, clock, media
    await server.stop()


async def test_get_head_and_the_headers_every_answer_carries(served: tuple) -> None:
    server, http, _, media = served
    pub = server.publish(str(media), lifetime=60)
    path = server.url_path(pub)
    assert path.count("/") == 1 and "." not in path and len(pub.token) >= 32  # ≥ 128 bits, no extension
    r = await http.get(path)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["accept-ranges"] == "bytes" and r.headers["cache-control"] == "no-store, private"
    assert (
        r.headers["etag"] == pub.etag
        and r.headers["last-modified"]
        and int(r.headers["content-length"]) == len(DATA)
    )
    head = await http.head(path)
    assert (
        head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(DATA))
    )


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-99", 206, DATA[:100], "bytes 0-99/10240"),
        ("bytes=10000-", 206, DATA[10000:], "bytes 10000-10239/10240"),
        ("bytes=-40", 206, DATA[-40:], "bytes 10200-10239/10240"),
        ("bytes=10200-99999", 206, DATA[10200:], "bytes 10200-10239/10240"),  # past EOF: clipped
        ("bytes=10240-", 416, b"", "bytes */10240"),  # starts past the end
        ("bytes=99-1", 200, DATA, None),  # malformed: ignored
        ("lines=1-2", 200, DATA, None),
        ("bytes=0-9,100-109", 200, DATA, None),  # several ranges: the documented choice
        ("bytes=0-9,10-19", 206, DATA[:20], "bytes 0-19/10240"),  # touching ranges merge
    ],
)
async def test_ranges(
    served: tuple, header: str, status: int, body: bytes, content_range: str | None
) -> None:
    server, http, _, media = served
    path = server.url_path(server.publish(str(media), lifetime=60))
    r = await http.get(path, headers={"Range": header})
    assert r.status_code == status and r.content == body
    assert r.headers.get("content-range") == content_range
    if status == 206:
        head = await http.head(path, headers={"Range": header})
        assert (
            head.status_code == 206 and head.headers["content-range"] == content_range and head.content == b""
        )


async def test_if_range_and_if_none_match(served: tuple) -> None:
    server, http, _, media = served
    pub = server.publish(str(media), lifetime=60)
    path = server.url_path(pub)
    fresh = await http.get(path, headers={"Range": "bytes=0-9", "If-Range": pub.etag})
    assert fresh.status_code == 206 and fresh.content == DATA[:10]
    stale = await http.get(path, headers={"Range": "bytes=0-9", "If-Range": '"0-0-0"'})
    assert stale.status_code == 200 and stale.content == DATA  # validator changed: the whole file
    weak = await http.get(path, headers={"Range": "bytes=0-9", "If-Range": f"W/{pub.etag}"})
    assert weak.status_code == 200  # a weak tag never validates a range
    dated = await http.get(path, headers={"Range": "bytes=0-9", "If-Range": pub.last_modified})
    assert dated.status_code == 206
    same = await http.get(path, headers={"If-None-Match": pub.etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == pub.etag
    other = await http.get(path, headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200


async def test_a_file_changed_while_published_is_never_served_again(served: tuple) -> None:
    server, http, _, media = served
    changed: list[str] = []
    server.on_changed = lambda token, path: changed.append(path)
    pub = server.publish(str(media), lifetime=60)
    media.write_bytes(DATA[:-1] + b"X" * 2)  # re-rendered: another size
    r = await http.get(server.url_path(pub), headers={"Range": "bytes=0-9"})
    assert r.status_code == 404 and changed == [str(media)]
    assert (await http.get(server.url_path(pub))).status_code == 404  # for good


async def test_publications_end_when_unpublished_expired_or_stopped(served: tuple) -> None:
    server, http, clock, media = served
    done, expiring = server.publish(str(media), 60), server.publish(str(media), 5)
    server.unpublish(done.token)
    clock.now += 6
    gone = [await http.get(server.url_path(p)) for p in (done, expiring)]
    assert [r.status_code for r in gone] == [404, 404] and gone[0].content == gone[1].content


NEVER = [
    "/", "/..", "/../", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/etc/passwd",
    "//etc/passwd", "/./", "/%00", "/a%00b", "/" + "A" * 10_000, "/SC010_v003.mov", "/tmp", "/.well-known/x",
    "/%5c..%5c..%5cwindows", "/index.html", "/?list=1",
]  # fmt: skip


async def test_a_thousand_crafted_and_random_paths_all_look_the_same(
    served: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, http, clock, media = served
    live = server.publish(str(media), lifetime=60)
    expired = server.publish(str(media), lifetime=1)
    clock.now += 2
    rng = random.Random(1234)
    tokens = [live.token]
    paths = list(NEVER)
    t = live.token
    paths += ["/" + expired.token, f"/{t}/", f"/{t}x", f"/{t[:-1]}", f"/{t.upper()}", "/" + str(media),
              "/" + quote(f"{t}/../{t}", safe=""), f"/{t}/../etc/passwd", f"/x/{t}"]  # fmt: skip
    alphabet = string.ascii_letters + string.digits + "-_.~%/"
    while len(paths) < 1000:
        paths.append("/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64))))
    bodies = set()
    for path in paths:
        r = await http.get(path)
        assert r.status_code in (404, 400), (path, r.status_code)  # 400: the HTTP parser refused it
        if r.status_code == 404:
            bodies.add(r.content)
    assert bodies == {b"Not found.\n"}
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):  # the right path, the wrong method
        assert (await http.request(method, server.url_path(live))).status_code == 404
    assert (await http.get(server.url_path(live))).status_code == 200  # still served to its owner
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("app.", "aiohttp")))
    assert "range server: published" in ours  # the server does log, by a digest
    assert not any(token in ours for token in [*tokens, expired.token])  # never the token itself


async def test_it_listens_on_loopback_only(served: tuple) -> None:
    server, *_ = served
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    addresses.discard("127.0.0.1")
    addresses |= {ip for ip in _interface_addresses() if not ip.startswith("127.")}
    for address in addresses:
        with pytest.raises(OSError), socket.create_connection((address, server.port), timeout=1):
            pass


def _interface_addresses() -> set[str]:
    """The machine's IPv4 addresses (the one a route to the outside would use)."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            found.add(probe.getsockname()[0])
        except OSError:
            pass
    return found


async def test_too_many_requests_at_once_are_told_to_come_back(served: tuple, tmp_path: Path) -> None:
    server, http, _, _ = served
    big = tmp_path / "big.mov"
    big.write_bytes(os.urandom(8 << 20))
    path = server.url_path(server.publish(str(big), 60))
    server.max_in_flight = 0
    r = await http.get(path)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    server.max_in_flight = 8
    answers = await asyncio.gather(*(http.get(path, headers={"Range": f"bytes={n << 20}-{(n + 1 << 20) - 1}"})
                                     for n in range(8)))  # fmt: skip
    assert b"".join(a.content for a in answers) == big.read_bytes()


async def test_a_live_link_is_masked_in_any_log_line_and_forgotten_once_dead(tmp_path: Path) -> None:
    from app.core.logging_setup import SECRETS

    media = tmp_path / "m.mov"
    media.write_bytes(b"x" * 100)
    server = RangeServer()
    await server.start()
    try:
        publication = server.publish(str(media), 60)
        line = f"httpx: GET http://127.0.0.1:{server.port}/{publication.token} 200"
        assert publication.token not in SECRETS.redact(line)
        server.forget(publication.token)
        assert publication.token in SECRETS.redact(line)  # dead for good: no longer worth a slot
    finally:
        await server.stop()


async def test_a_file_rewritten_during_a_send_never_reaches_the_client_whole(tmp_path: Path) -> None:
    """The last slice goes only once the file is seen unchanged: a fetcher reading while the
    render is rewritten in place gets a short answer, never a complete mix of two versions."""
    media = tmp_path / "graded.mov"
    size = 64 * 1024 * 1024  # well past what loopback sockets buffer ahead of a slow reader
    media.write_bytes(os.urandom(size))
    server = RangeServer()
    port = await server.start()
    changed: list[str] = []
    server.on_changed = lambda token, path: changed.append(path)
    try:
        publication = server.publish(str(media), 60)
        got = bytearray()
        url = f"http://127.0.0.1:{port}{server.url_path(publication)}"
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                async with http.stream("GET", url) as r:
                    async for piece in r.aiter_raw(64 * 1024):
                        got += piece
                        if len(got) == 64 * 1024:
                            media.write_bytes(os.urandom(size))  # same size, new bytes
                            os.utime(media, ns=(publication.mtime_ns + 10**9, publication.mtime_ns + 10**9))
            assert (await http.get(url)).status_code == 404
        assert len(got) < size and changed == [str(media)]
        assert server.served[publication.token].changed
    finally:
        await server.stop()


async def test_slow_reads_of_the_file_never_hold_up_the_event_loop(
    served: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file on a network volume that is not cached yet reads slowly (LucidLink streams it from
    the cloud): every read happens in a sender thread, and the loop keeps its pace meanwhile."""
    server, http, _, _ = served
    media = tmp_path / "uncached.mov"
    media.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    path = server.url_path(server.publish(str(media), 60))
    loop_thread = threading.get_ident()
    readers: list[int] = []
    read_slowly = threading.Event()  # set once the loop saw a tick during a slow read
    real_sendfile, real_pread = os.sendfile, os.pread

    def slow(real: Callable[..., int | bytes]) -> Callable[..., int | bytes]:
        def read(*args: int) -> int | bytes:
            readers.append(threading.get_ident())
            read_slowly.wait(5)  # the disk takes its time: the loop must go on without it
            return real(*args)

        return read

    monkeypatch.setattr(os, "sendfile", slow(real_sendfile))
    monkeypatch.setattr(os, "pread", slow(real_pread))

    async def ticking() -> None:
        while not readers:
            await asyncio.sleep(0)
        read_slowly.set()  # reached while a read still waits: the loop was not held up

    answers = await asyncio.gather(http.get(path, headers={"Range": "bytes=5-"}), ticking())
    assert answers[0].status_code == 206 and answers[0].content == media.read_bytes()[5:]
    assert readers and loop_thread not in readers


def _open_fds() -> int | None:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


async def _fds_back_to(before: int | None) -> None:
    """Every descriptor a sender thread duplicated is closed: the thread has ended."""
    if before is not None:
        await wait_for(lambda: (_open_fds() or 0) <= before, 10, "the sender's descriptors closed")


async def test_unpublishing_ends_an_answer_still_being_sent(tmp_path: Path) -> None:
    """A failed or cancelled upload's fetcher gets a short answer, not the rest of the file, and
    no sender thread keeps writing to a client that stopped reading."""
    media = tmp_path / "long.mov"
    size = 64 * 1024 * 1024  # far more than loopback buffers ahead of a reader that stopped
    media.write_bytes(os.urandom(size))
    server = RangeServer()
    port = await server.start()
    try:
        publication = server.publish(str(media), 60)
        url = f"http://127.0.0.1:{port}{server.url_path(publication)}"
        got = 0
        async with httpx.AsyncClient(timeout=10) as http:
            before = _open_fds()
            with pytest.raises(httpx.RemoteProtocolError):
                async with http.stream("GET", url) as r:
                    async for piece in r.aiter_raw(64 * 1024):
                        if got == 0:
                            server.unpublish(publication.token)
                        got += len(piece)
            assert got < size
            await wait_for(lambda: not server._answering and server._in_flight == 0, 5, "the answer to end")
            await _fds_back_to(before)
    finally:
        await server.stop()


async def test_an_unpublish_just_as_a_piece_has_left_still_ends_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link ends right after the thread finished a piece while the loop had already allowed
    the next one: the answer still ends (short, connection closed), it does not wait forever
    for a piece the stopped thread will never send."""
    from app.pull import body_sender, range_server

    monkeypatch.setattr(range_server, "SEND_PIECE", 64 << 10)
    media = tmp_path / "m.mov"
    media.write_bytes(os.urandom(3 * (64 << 10)))  # two bulk pieces, then the final one
    server = RangeServer()
    port = await server.start()
    loop = asyncio.get_running_loop()
    publication = server.publish(str(media), 60)
    real, first = body_sender.sendfile_piece, [True]

    def piece_then_unpublish(*args: object) -> int | None:
        sent = real(*args)  # type: ignore[arg-type]
        if first and first.pop():
            unpublished = threading.Event()
            loop.call_soon_threadsafe(lambda: (server.unpublish(publication.token), unpublished.set()))
            unpublished.wait(5)
        return sent

    monkeypatch.setattr(body_sender, "sendfile_piece", piece_then_unpublish)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"http://127.0.0.1:{port}{server.url_path(publication)}")
        await wait_for(lambda: server._in_flight == 0 and not server._answering, 5, "the answer to end")
    finally:
        await server.stop()


async def test_an_unpublish_before_the_body_starts_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the look-up and the first byte (opening the file on a slow volume, the headers):
    the link ending there still stops the answer."""
    from app.pull import range_server

    media = tmp_path / "m.mov"
    media.write_bytes(os.urandom(20 << 20))
    server = RangeServer()
    port = await server.start()
    publication = server.publish(str(media), 60)
    real = range_server.flushed

    async def unpublished_meanwhile(transport: asyncio.BaseTransport) -> None:
        server.unpublish(publication.token)
        await real(transport)

    monkeypatch.setattr(range_server, "flushed", unpublished_meanwhile)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"http://127.0.0.1:{port}{server.url_path(publication)}")
    finally:
        await server.stop()


async def test_a_sender_thread_that_fails_ends_its_answer_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.pull import body_sender

    media = tmp_path / "m.mov"
    media.write_bytes(os.urandom(1 << 20))

    def broken(*args: object) -> int:
        raise ValueError("not an OSError")

    monkeypatch.setattr(body_sender, "sendfile_piece", broken)
    server = RangeServer()
    port = await server.start()
    try:
        publication = server.publish(str(media), 60)
        async with httpx.AsyncClient(timeout=10) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"http://127.0.0.1:{port}{server.url_path(publication)}")
        await wait_for(lambda: server._in_flight == 0, 5, "the answer to end")
    finally:
        await server.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("sender thread failed" in m for m in errors), errors


async def test_a_file_system_that_cannot_sendfile_is_served_by_copying(
    served: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some FUSE and SMB volumes refuse ``sendfile`` (EINVAL on Linux, ENOTSUP on macOS)."""
    import errno

    server, http, _, _ = served
    media = tmp_path / "on_smb.mov"
    media.write_bytes(os.urandom(3 * 1024 * 1024 + 5))

    def refuses(*args: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuses)
    path = server.url_path(server.publish(str(media), 60))
    whole = await http.get(path)
    part = await http.get(path, headers={"Range": "bytes=1000-2099999"})
    assert whole.status_code == 200 and whole.content == media.read_bytes()
    assert part.status_code == 206 and part.content == media.read_bytes()[1000:2100000]


async def test_where_the_os_has_no_sendfile_nor_positional_reads_it_still_serves(
    served: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows: no ``os.sendfile``, no ``select.poll``, no ``os.pread``/``preadv``."""
    from app.pull import range_server

    server, http, _, _ = served
    media = tmp_path / "windows.mov"
    media.write_bytes(os.urandom(9 * 1024 * 1024 + 3))  # more than one piece
    monkeypatch.setattr(range_server, "THREADED", False)
    for name in ("pread", "preadv", "sendfile"):
        monkeypatch.delattr(os, name, raising=False)
    path = server.url_path(server.publish(str(media), 60))
    whole = await http.get(path)
    part = await http.get(path, headers={"Range": "bytes=-70000"})
    assert whole.status_code == 200 and whole.content == media.read_bytes()
    assert part.status_code == 206 and part.content == media.read_bytes()[-70000:]


async def test_a_client_hanging_up_mid_answer_is_a_debug_line_and_leaves_nothing_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fetchers drop connections all the time (retries, their own timeouts): that is no error,
    and each one's sender thread and descriptors go with it."""
    caplog.set_level(logging.DEBUG)
    media = tmp_path / "dailies.mov"
    media.write_bytes(os.urandom(32 * 1024 * 1024))
    server = RangeServer()
    port = await server.start()
    try:
        publication = server.publish(str(media), 60)
        request = f"GET {server.url_path(publication)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        before = _open_fds()
        # A close with bytes unread (a reset, on Linux), a hard reset, and a shutdown first.
        for how in ("close", "reset", "shutdown", "close"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request.encode())
            got = 0
            while got < 1024 * 1024:
                data = await reader.read(64 * 1024)
                assert data, "the server ended the answer before the client hung up"
                got += len(data)
            sock = writer.get_extra_info("socket")
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif how == "shutdown":
                sock.shutdown(socket.SHUT_RDWR)
            writer.close()
        await wait_for(lambda: not server._answering and server._in_flight == 0, 10, "the answers to end")
        await _fds_back_to(before)
        async with httpx.AsyncClient(timeout=10) as http:  # and the next fetcher gets it whole
            whole = await http.get(f"http://127.0.0.1:{port}{server.url_path(publication)}")
        assert whole.content == media.read_bytes()
    finally:
        await server.stop()
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [r.getMessage() for r in loud]
    assert any("ended early" in r.getMessage() or "went away" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("rate", "piece"),
    [(0, 8 << 20), (-1, 8 << 20), (1 << 30, 8 << 20), (20_000_000, 5_000_000), (100_000, 256 << 10)],
)
def test_pieces_are_big_without_a_limit_and_a_quarter_second_under_one(rate: int, piece: int) -> None:
    from app.pull.range_server import piece_size

    assert piece_size(rate) == piece


async def test_a_limited_pull_is_paced_in_small_pieces_that_add_up_to_the_answer(tmp_path: Path) -> None:
    """Under a limit the bytes leave a quarter second's worth at a time, never in one burst of a
    big piece; every byte is paced, none twice."""

    class Recording:
        rate = 2 * 1024 * 1024  # 2 MiB/s: pieces of 512 KiB

        def __init__(self) -> None:
            self.consumed: list[int] = []

        async def consume(self, amount: int) -> None:
            self.consumed.append(amount)

    pacer = Recording()
    media = tmp_path / "m.mov"
    media.write_bytes(os.urandom(5 * 1024 * 1024 + 11))
    server = RangeServer(pacer=pacer)
    port = await server.start()
    try:
        path = server.url_path(server.publish(str(media), 60))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            r = await http.get(path, headers={"Range": "bytes=100-"})
        assert r.status_code == 206 and r.content == media.read_bytes()[100:]
        assert max(pacer.consumed) <= 512 * 1024 and sum(pacer.consumed) == len(r.content)
    finally:
        await server.stop()


async def test_stopping_with_readers_that_stopped_reading_leaves_no_thread_nor_descriptor(
    tmp_path: Path,
) -> None:
    """Quitting the app while Frame.io's fetchers are stalled mid-answer: every connection
    closes, every sender thread ends, and nothing stays open."""
    media = tmp_path / "stalled.mov"
    media.write_bytes(os.urandom(64 * 1024 * 1024))  # far more than loopback buffers
    server = RangeServer()
    port = await server.start()
    publication = server.publish(str(media), 60)
    request = f"GET {server.url_path(publication)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    before = _open_fds()
    clients = []
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await reader.read(1)  # the answer has begun; then this reader reads no more
        clients.append((reader, writer))
    await wait_for(lambda: sum(map(len, server._answering.values())) == 3, 10, "three answers under way")
    await server.stop()
    for reader, _ in clients:  # each sees its connection end, though it never read the rest
        while await reader.read(1 << 20):
            pass
    for _, writer in clients:
        writer.close()
    await wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("range-send")], 10,
                   "the sender threads to end")  # fmt: skip
    if before is not None:
        await wait_for(lambda: (_open_fds() or 0) <= before, 10, "every descriptor closed")
