"""The threaded part sender against real sockets: what it says when storage misbehaves, and
that a cancel lets go of the file at once."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from app.engine.bandwidth import BandwidthLimiter
from app.engine.part_sender import PartSender
from app.engine.upload_errors import FileChanged

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    """A raw TCP "storage" on loopback; its connection handlers end with the test."""
    handlers: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/part?X-Amz-Signature=abc"
    finally:
        srv.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mov"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    return path


async def put(
    sender: PartSender, url: str, path: Path, size: int | None = None
) -> tuple[httpx.Response, int]:
    sent: list[int] = []
    size = path.stat().st_size if size is None else size
    fd = os.open(path, os.O_RDONLY)
    try:
        response = await sender.put(
            url, headers={"Content-Length": str(size), "x-amz-acl": "private"}, fd=fd, offset=0, size=size,
            sent=sent.append,
        )  # fmt: skip
    finally:
        os.close(fd)
    await asyncio.sleep(0)  # progress reports already posted to the loop
    return response, sum(sent)


async def test_a_whole_part_is_sent_and_progress_adds_up(source: Path) -> None:
    received = bytearray()

    async def storage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        received.extend(await reader.readexactly(length))
        writer.write(b'HTTP/1.1 200 OK\r\nETag: "x"\r\nContent-Length: 0\r\n\r\n')
        await writer.drain()
        writer.close()

    sender = PartSender(5.0, BandwidthLimiter(0))
    async with server(storage) as url:
        response, progress = await put(sender, url, source)
    assert response.status_code == 200 and response.headers["etag"] == '"x"'
    assert bytes(received) == source.read_bytes() and progress == len(received)
    await sender.aclose()


async def test_an_early_refusal_is_read_not_reported_as_a_broken_pipe(source: Path) -> None:
    async def storage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the signature is wrong: answer before the body
        body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    sender = PartSender(5.0, BandwidthLimiter(0))
    async with server(storage) as url:
        response, _ = await put(sender, url, source)
    assert response.status_code == 403 and b"Request has expired" in response.content
    await sender.aclose()


async def test_unreachable_storage_is_a_connect_error(source: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    sender = PartSender(5.0, BandwidthLimiter(0))
    with pytest.raises(httpx.ConnectError):
        await put(sender, f"http://127.0.0.1:{port}/part", source)
    await sender.aclose()


async def test_storage_that_stops_reading_times_out(source: Path) -> None:
    async def storage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # never reads: the socket buffers fill, then nothing moves

    sender = PartSender(0.5, BandwidthLimiter(0))
    started = time.monotonic()
    async with server(storage) as url:
        with pytest.raises((httpx.WriteTimeout, httpx.ReadTimeout)):
            await put(sender, url, source)
    assert time.monotonic() - started < 5
    await sender.aclose()


async def test_a_cancel_aborts_the_send_and_lets_go_of_the_file(source: Path) -> None:
    async def storage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    sender = PartSender(60.0, BandwidthLimiter(100_000))  # slow: the budget holds it back
    async with server(storage) as url:
        task = asyncio.ensure_future(put(sender, url, source))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0  # stopped at once, the thread done with the fd
    await sender.aclose()


async def test_a_file_that_got_shorter_is_caught(source: Path) -> None:
    async def storage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    sender = PartSender(5.0, BandwidthLimiter(0))
    async with server(storage) as url:
        with pytest.raises(FileChanged):
            await put(sender, url, source, size=source.stat().st_size + 1000)
    await sender.aclose()


async def test_a_proxy_from_the_environment_gets_the_request_and_its_credentials(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with server(proxy) as url:
        port = url.split(":")[2].split("/")[0]
        monkeypatch.setenv("HTTP_PROXY", f"http://editor:s%40cret@127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "")
        sender = PartSender(5.0, BandwidthLimiter(0))
        response, _ = await put(
            sender, "http://storage.example.invalid/bucket/part?X-Amz-Signature=abc", source
        )
    assert response.status_code == 200
    (head,) = seen
    assert head.startswith(b"PUT http://storage.example.invalid/bucket/part?X-Amz-Signature=abc HTTP/1.1")
    assert b"Proxy-Authorization: Basic ZWRpdG9yOnNAY3JldA==" in head  # editor:s@cret
    await sender.aclose()
