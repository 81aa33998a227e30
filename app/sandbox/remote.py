"""remote_upload: the sandbox fetches ``source_url`` itself, as Frame.io does.

Two fetchers, chosen by ``remote_fetch_chunk``:
- 0: one plain GET of the whole source (the simplest fetcher there is);
- N > 0 (the default): what a real fetcher does — a HEAD for the size and validator, then
  ``remote_fetch_parallel`` Range GETs of N bytes each with ``If-Range``, every chunk retried
  up to ``remote_fetch_retries`` times. A source that refuses HEAD, or does not say its size,
  is fetched with one plain GET instead.
The ``fetch`` fault scope makes a chunk's request fail on the fetcher's side: ``reset`` (the
connection dropped mid-body), ``stall`` (nothing read for ``stall_seconds``, then given up),
``slow`` (read in small sips).

The bytes are hashed in order as they come; they are written to the file's blob only when the
file keeps its bytes. An empty source is a failed upload (a local upload cannot be size 0
either). A failure of any kind (the source, the network, the sandbox's own disk) ends in
``upload_failed``, and the log says which.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import Path
from typing import BinaryIO

import aiohttp

from app.core.unabandoned import made_or_released
from app.sandbox.context import Sandbox
from app.sandbox.model import File
from app.sandbox.part_receive import CHUNK, storage_error_message
from app.sandbox.storage import mark_uploaded

log = logging.getLogger(__name__)
SLOW_SIP = 64 * 1024  # a "slow" fetch reads this much, then waits SLOW_PAUSE
SLOW_PAUSE = 0.01
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _SourceError(Exception):
    """The source answered, but not with the whole file."""


class _StorageError(Exception):
    """The sandbox's own disk failed (full, most likely), not the source."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc


class _Retryable(Exception):
    """This request failed in a way a fetcher tries again (a fault, a 5xx, a dropped link)."""


def _write(sink: BinaryIO, chunk: bytes) -> None:
    try:
        sink.write(chunk)
        sink.flush()  # a full disk shows here, not at close
    except OSError as exc:
        raise _StorageError(exc) from None


def _open_blob(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


async def _open_unleaked(path: Path) -> BinaryIO:
    """Opened in a thread; a sandbox stopping meanwhile still closes it."""
    return await made_or_released(asyncio.to_thread(_open_blob, path), lambda sink: sink.close())


class _Result:
    """What was fetched so far, hashed and written strictly in order."""

    def __init__(self, sb: Sandbox, sink: BinaryIO | None) -> None:
        self.sb = sb
        self.sink = sink
        self.hasher = hashlib.sha256()
        self.size = 0

    async def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.sb.config.remote_upload_max:
            raise _SourceError("source is larger than the remote upload limit")
        self.hasher.update(chunk)
        if self.sink is not None:
            await asyncio.to_thread(_write, self.sink, chunk)


async def _plain(session: aiohttp.ClientSession, url: str, result: _Result) -> None:
    result.sb.stats["fetch.get"] += 1
    slow = result.sb.faults.pick("fetch") == "slow"  # one request: only "slow" makes sense whole
    async with session.get(url) as resp:
        if resp.status != 200:
            raise _SourceError(f"source answered HTTP {resp.status}")
        async for chunk in resp.content.iter_chunked(SLOW_SIP if slow else CHUNK):
            await result.add(chunk)
            if slow:
                await asyncio.sleep(SLOW_PAUSE)
        if resp.content_length is not None and result.size != resp.content_length:
            raise _SourceError("source sent fewer bytes than announced")


async def _head(session: aiohttp.ClientSession, url: str, sb: Sandbox) -> tuple[int, str | None] | None:
    """The source's size and strong validator, or None if it will not say (fetch it plainly).
    A busy or failing source (429, 5xx, a dropped connection) is asked again, as for a chunk."""
    problem = ""
    for attempt in range(sb.config.remote_fetch_retries + 1):
        if attempt:
            sb.stats["fetch.retry"] += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        sb.stats["fetch.head"] += 1
        try:
            async with session.head(url, allow_redirects=True) as resp:
                if resp.status == 429 or resp.status >= 500:
                    problem = f"HTTP {resp.status}"
                    continue
                if resp.status in (404, 410):
                    raise _SourceError(f"source answered HTTP {resp.status}")
                length = resp.headers.get("Content-Length")
                if resp.status != 200 or length is None or not length.isdigit():
                    return None
                etag = resp.headers.get("ETag")
                if "bytes" not in resp.headers.get("Accept-Ranges", ""):
                    return None
                return int(length), (etag if etag and not etag.startswith("W/") else None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            problem = type(exc).__name__
    raise _SourceError(f"the source's HEAD failed {sb.config.remote_fetch_retries + 1} times ({problem})")


class _NoRanges(Exception):
    """The source answered a Range request with the whole file: it does not do ranges."""


async def _read_body(sb: Sandbox, resp: aiohttp.ClientResponse, want: int, fault: str | None) -> bytes:
    parts: list[bytes] = []
    got = 0
    if fault == "stall":
        await asyncio.sleep(sb.config.stall_seconds)
        raise _Retryable("nothing came for a while; giving up on this request")
    sip = SLOW_SIP if fault == "slow" else CHUNK
    while got < want:
        piece = await resp.content.read(min(sip, want - got))
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
        if fault == "reset" and got >= want // 2:
            raise _Retryable("connection reset mid-body")
        if fault == "slow":
            await asyncio.sleep(SLOW_PAUSE)
    if got != want:
        raise _Retryable(f"got {got} of {want} bytes")
    return b"".join(parts)


async def _chunk(
    session: aiohttp.ClientSession, url: str, sb: Sandbox, start: int, end: int, size: int, etag: str | None
) -> bytes:
    """One Range GET, retried; the bytes [start, end] of a source of ``size`` bytes."""
    headers = {"Range": f"bytes={start}-{end}"}
    if etag:
        headers["If-Range"] = etag
    problem = ""
    for attempt in range(sb.config.remote_fetch_retries + 1):
        if attempt:
            sb.stats["fetch.retry"] += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        fault = sb.faults.pick("fetch")
        sb.stats["fetch.range_get"] += 1
        try:
            async with session.get(url, headers=headers) as resp:
                if resp.status == 206:
                    got = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", ""))
                    if got is None or (int(got[1]), int(got[2])) != (start, end) or got[3] != str(size):
                        raise _SourceError("source answered a range other than the one asked for")
                    return await _read_body(sb, resp, end - start + 1, fault)
                if resp.status == 200 and etag:  # the validator no longer holds: the file changed
                    raise _SourceError("source changed while it was fetched (If-Range no longer holds)")
                if resp.status == 200:
                    raise _NoRanges
                if resp.status == 416:
                    raise _SourceError("source is shorter than it said")
                problem = f"HTTP {resp.status}"
        except _Retryable as exc:
            problem = str(exc)
        except (TimeoutError, aiohttp.ClientError) as exc:
            problem = type(exc).__name__
        log.info("remote fetch: bytes %d-%d failed (%s), attempt %d", start, end, problem, attempt + 1)
    raise _SourceError(f"bytes {start}-{end} failed {sb.config.remote_fetch_retries + 1} times ({problem})")


async def _ranged(session: aiohttp.ClientSession, url: str, result: _Result, size: int,
                  etag: str | None) -> None:  # fmt: skip
    """Parallel chunks, joined in order; a chunk starts only a few chunks ahead of the join, so
    memory stays bounded however slow the first one is."""
    sb = result.sb
    step = sb.config.remote_fetch_chunk
    ranges = [(start, min(size, start + step) - 1) for start in range(0, size, step)]
    parallel = max(1, sb.config.remote_fetch_parallel)
    tasks: dict[int, asyncio.Task[bytes]] = {}
    try:
        for index in range(len(ranges)):
            for ahead in range(index, min(len(ranges), index + parallel)):
                if ahead not in tasks:
                    start, end = ranges[ahead]
                    tasks[ahead] = asyncio.ensure_future(_chunk(session, url, sb, start, end, size, etag))
            await result.add(await tasks.pop(index))
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _fetch(sb: Sandbox, f: File, source_url: str, target: Path) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=sb.config.remote_fetch_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        shape = await _head(session, source_url, sb) if sb.config.remote_fetch_chunk > 0 else None
        if shape is not None and shape[0] == 0:
            raise _SourceError("source is empty (0 bytes)")
        if shape is not None and shape[0] > sb.config.remote_upload_max:
            raise _SourceError("source is larger than the remote upload limit")
        sink = None
        if f.keep_bytes:
            try:
                sink = await _open_unleaked(target)
            except OSError as exc:
                raise _StorageError(exc) from None
        result = _Result(sb, sink)
        try:
            if shape is not None:
                try:
                    await _ranged(session, source_url, result, *shape)
                except _NoRanges:
                    if sink is not None:
                        await asyncio.to_thread(sink.seek, 0)
                        await asyncio.to_thread(sink.truncate)
                    result = _Result(sb, sink)
                    shape = None
            if shape is None:
                await _plain(session, source_url, result)
        finally:
            if sink is not None:
                sink.close()
        if result.size == 0:
            raise _SourceError("source is empty (0 bytes)")
        return result.size, result.hasher.hexdigest()


async def fetch_remote(sb: Sandbox, f: File, source_url: str) -> None:
    target = sb.store.blob_path(f.id, 0)
    try:
        size, sha256 = await _fetch(sb, f, source_url, target)
    except (TimeoutError, aiohttp.ClientError, _SourceError, _StorageError, OSError) as exc:
        _fail(sb, f, exc, target)
        return
    if f.id not in sb.store.files:
        return
    f.file_size = size
    f.part_sizes = [size]
    f.parts_received = [0]
    f.sha256 = sha256
    mark_uploaded(sb, f)


def _fail(sb: Sandbox, f: File, exc: Exception, target: Path) -> None:
    if isinstance(exc, _StorageError):
        log.error("remote upload of %s failed: %s", f.name, storage_error_message(exc.exc, target))
    else:
        log.info("remote upload of %s failed: %s", f.name, str(exc)[:300] or type(exc).__name__)
    f.upload_failed = True
    f.updated_at = sb.clock.iso()
    sb.store.changed()
