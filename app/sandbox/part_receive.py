"""Reading one part PUT's body: stored to a temporary file and/or hashed, in bounded batches.

A storage failure (a full disk above all) must reach the client as a plain S3 error, not as a
connection torn down mid-body: so after one, the rest of the body is still read and dropped,
and the caller answers once the client has finished sending.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

CHUNK = 1024 * 1024
BATCH = 8 * CHUNK  # bytes handed to a worker thread at once: bounded memory per PUT

_FULL = {errno.ENOSPC: "no space left on device"}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _FULL[errno.EDQUOT] = "disk quota exceeded"


@dataclass
class Received:
    """What came in: how many bytes, and the storage error that stopped keeping them, if any."""

    size: int
    failure: OSError | None = None


def storage_error_message(exc: OSError, path: Path) -> str:
    """A sentence a person can act on; a full disk says so plainly."""
    where = exc.filename or path
    reason = _FULL.get(exc.errno or 0)
    if reason is not None:
        return f"sandbox storage is full: {reason} ({where})"
    return f"sandbox could not store the part: {exc.strerror or exc} ({where})"


def _write_part(tmp: Path, chunks: list[bytes]) -> None:
    with tmp.open("ab") as fh:
        for chunk in chunks:
            fh.write(chunk)


def _create(tmp: Path) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.open("wb").close()  # an empty part is a file too


def _store_batch(tmp: Path | None, hasher: hashlib._Hash | None, chunks: list[bytes]) -> None:
    if tmp is not None:
        _write_part(tmp, chunks)
    if hasher is not None:
        for chunk in chunks:
            hasher.update(chunk)


async def _in_thread(tmp: Path | None, hasher: hashlib._Hash | None, chunks: list[bytes]) -> OSError | None:
    try:
        await asyncio.to_thread(_store_batch, tmp, hasher, chunks)
    except OSError as exc:
        return exc
    return None


async def _prepare(tmp: Path | None) -> OSError | None:
    if tmp is None:
        return None
    try:
        await asyncio.to_thread(_create, tmp)
    except OSError as exc:
        return exc
    return None


async def receive_body(request: web.Request, tmp: Path | None, hasher: hashlib._Hash | None) -> Received:
    """Read the whole body into ``tmp`` (None: keep nothing) and ``hasher`` (None: no hashing).

    Network errors (``ConnectionResetError``, ``ClientPayloadError``) propagate to the caller;
    storage errors are returned in ``Received.failure``.
    """
    result = Received(0, await _prepare(tmp))
    batch: list[bytes] = []
    batch_bytes = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        result.size += len(chunk)
        if result.failure is not None:
            continue  # drain: the client hears the error once it has sent everything
        batch.append(chunk)
        batch_bytes += len(chunk)
        if batch_bytes >= BATCH:
            result.failure = await _in_thread(tmp, hasher, batch)
            batch, batch_bytes = [], 0
    if batch and result.failure is None:
        result.failure = await _in_thread(tmp, hasher, batch)
    return result


def commit(tmp: Path, target: Path) -> OSError | None:
    """Move a complete part into place (atomic: a reader never sees half a part)."""
    try:
        os.replace(tmp, target)
    except OSError as exc:
        return exc
    return None
