"""Presigned part URLs, checked the way S3 checks them, and the stored bytes.

A PUT is refused (S3-style XML) when the signature does not cover the request (missing or
different ``x-amz-acl`` or ``Content-Type``), when the URL has expired, when the length is
missing or not the part's size. When every part is in, the file moves created → uploaded →
transcoded. Bytes are hashed in part order as they arrive, so completion does not wait for a
full re-read of a large file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import ClientPayloadError, web

from app.sandbox.context import Sandbox, get_sandbox
from app.sandbox.fault_responses import ConnectionDropped, fault_response
from app.sandbox.model import File
from app.sandbox.responses import s3_error

routes = web.RouteTableDef()
CHUNK = 1024 * 1024
MAX_PARTS = 10_000


def split_parts(size: int, part_size: int) -> list[int]:
    """Equal parts, the remainder in the last; never more than S3's 10,000 parts."""
    part = max(part_size, -(-size // MAX_PARTS))
    count = max(1, -(-size // part))
    return [part] * (count - 1) + [size - part * (count - 1)]


def _canonical(method: str, path: str, amz_date: str, expires: str, ctype: str, acl: str) -> bytes:
    return "\n".join([method, path, amz_date, expires, f"content-type:{ctype}", f"x-amz-acl:{acl}"]).encode()


def _sign(sb: Sandbox, canonical: bytes) -> str:
    return hmac.new(sb.signing_key, canonical, hashlib.sha256).hexdigest()


def upload_urls(sb: Sandbox, f: File) -> list[dict[str, object]]:
    amz_date = sb.clock.amz_date(sb.clock.now())
    expires = str(int(sb.config.part_url_lifetime))
    out: list[dict[str, object]] = []
    for index, size in enumerate(f.part_sizes):
        path = f"/_storage/upload/{f.id}/{index}"
        signature = _sign(sb, _canonical("PUT", path, amz_date, expires, f.media_type, "private"))
        query = urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"SANDBOX/{amz_date[:8]}/us-east-1/s3/aws4_request",
                "X-Amz-Date": amz_date,
                "X-Amz-Expires": expires,
                "X-Amz-SignedHeaders": "content-type;host;x-amz-acl",
                "X-Amz-Signature": signature,
            }
        )
        out.append({"size": size, "url": f"{sb.base_url}{path}?{query}"})
    return out


def download_url(sb: Sandbox, f: File) -> str:
    amz_date = sb.clock.amz_date(sb.clock.now())
    path = f"/_storage/download/{f.id}"
    signature = _sign(sb, _canonical("GET", path, amz_date, "86400", "", ""))
    query = urlencode({"X-Amz-Date": amz_date, "X-Amz-Expires": "86400", "X-Amz-Signature": signature})
    return f"{sb.base_url}{path}?{query}"


def media_links(sb: Sandbox, f: File, includes: set[str]) -> dict[str, object] | None:
    """The ``media_links`` object for ``include=media_links.*``; only the original exists here."""
    wanted = {i.split(".", 1)[1] for i in includes if i.startswith("media_links.")}
    if not wanted:
        return None
    url = download_url(sb, f) if f.status != "created" else None
    links: dict[str, object] = {}
    for kind in wanted:
        if kind == "original":
            links[kind] = {"download_url": url, "inline_url": url}
        elif kind in ("high_quality", "efficient"):
            links[kind] = {"download_url": None}
        else:
            links[kind] = {"download_url": None, "url": None}
    return links


def _expired(sb: Sandbox, amz_date: str, expires: str) -> bool:
    try:
        start = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        return sb.clock.now() > start + int(expires)
    except ValueError:
        return True


@dataclass
class _HashState:
    """Running sha256 over the parts received so far, in order."""

    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    next_part: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _hash_parts(state: _HashState, paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                state.hasher.update(chunk)
        state.next_part += 1


async def _advance_hash(sb: Sandbox, f: File) -> None:
    state = sb.hashes.setdefault(f.id, _HashState())
    async with state.lock:
        received = set(f.parts_received)
        ready: list[Path] = []
        index = state.next_part
        while index in received:
            ready.append(sb.store.blob_path(f.id, index))
            index += 1
        if ready:
            await asyncio.to_thread(_hash_parts, state, ready)
        if state.next_part == len(f.part_sizes) and f.sha256 is None:
            f.sha256 = state.hasher.hexdigest()
            sb.hashes.pop(f.id, None)


def mark_uploaded(sb: Sandbox, f: File) -> None:
    """All bytes are in: uploaded now, transcoded a moment later."""
    f.status = "uploaded"
    f.uploaded_at = f.updated_at = sb.clock.iso()
    sb.store.changed()
    sb.spawn(_transcode(sb, f))


async def _transcode(sb: Sandbox, f: File) -> None:
    await asyncio.sleep(sb.config.transcode_delay)
    if f.id in sb.store.files and f.status == "uploaded":
        f.status = "transcoded"
        f.updated_at = sb.clock.iso()
        sb.store.changed()


def _write_part(tmp: Path, chunks: list[bytes]) -> None:
    with tmp.open("ab") as fh:
        for chunk in chunks:
            fh.write(chunk)


@routes.put("/_storage/upload/{file_id}/{part}")
async def put_part(request: web.Request) -> web.StreamResponse:
    sb = get_sandbox(request)
    sb.stats["storage.put"] += 1
    kind = sb.faults.pick("parts")
    if kind is not None:
        return await fault_response(sb, request, "parts", kind)
    q = request.query
    path = request.path
    ctype = request.headers.get("Content-Type", "")
    acl = request.headers.get("x-amz-acl", "")
    amz_date, expires = q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", "")
    signature = _sign(sb, _canonical("PUT", path, amz_date, expires, ctype, acl))
    if not hmac.compare_digest(signature, q.get("X-Amz-Signature", "")):
        return s3_error(
            403, "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method (signed headers: content-type;host;x-amz-acl).",
        )  # fmt: skip
    if _expired(sb, amz_date, expires):
        return s3_error(403, "AccessDenied", "Request has expired")
    if "Authorization" in request.headers:
        return s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                        "query parameter, Signature query string parameter or the Authorization header "
                        "should be specified")  # fmt: skip
    f = sb.store.files.get(request.match_info["file_id"])
    try:
        index = int(request.match_info["part"])
    except ValueError:
        index = -1
    if f is None or not 0 <= index < len(f.part_sizes) or f.status != "created" or f.upload_failed:
        # Unknown, or already assembled (S3 forgets a multipart upload once it is complete).
        return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    if request.content_length is None:
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    expected = f.part_sizes[index]
    if request.content_length != expected:
        code = "EntityTooSmall" if request.content_length < expected else "EntityTooLarge"
        return s3_error(
            400,
            code,
            f"Part {index} must be exactly {expected} bytes, got {request.content_length}.",
        )
    target = sb.store.blob_path(f.id, index)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}-{id(request)}")
    received = 0
    batch: list[bytes] = []
    batch_bytes = 0
    try:
        chunks = request.content.iter_chunked(CHUNK)
        async for chunk in chunks:
            received += len(chunk)
            batch.append(chunk)
            batch_bytes += len(chunk)
            if batch_bytes >= 8 * CHUNK:
                await asyncio.to_thread(_write_part, tmp, batch)
                batch, batch_bytes = [], 0
        if batch:
            await asyncio.to_thread(_write_part, tmp, batch)
        if received != expected:
            tmp.unlink(missing_ok=True)
            return s3_error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes given in the Content-Length header.",
            )
        if not tmp.exists():
            tmp.touch()
        os.replace(tmp, target)
    except (ConnectionResetError, ClientPayloadError):
        raise ConnectionDropped from None  # the client went away mid-part: nothing is stored
    finally:
        tmp.unlink(missing_ok=True)
    if f.id not in sb.store.files:  # deleted while we were receiving
        return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    if index not in f.parts_received:
        f.parts_received.append(index)
        sb.store.changed()
    tag = hashlib.md5(f"{f.id}/{index}".encode(), usedforsecurity=False).hexdigest()
    etag = f'"{tag}"'
    await _advance_hash(sb, f)
    if len(f.parts_received) == len(f.part_sizes) and f.status == "created" and f.sha256:
        if sb.fail_next_uploads > 0:  # Frame.io could not assemble it
            sb.fail_next_uploads -= 1
            f.upload_failed = True
            sb.store.changed()
        else:
            mark_uploaded(sb, f)
    return web.Response(status=200, headers={"ETag": etag})


@routes.get("/_storage/download/{file_id}")
async def download(request: web.Request) -> web.StreamResponse:
    sb = get_sandbox(request)
    q = request.query
    path = request.path
    signature = _sign(
        sb, _canonical("GET", path, q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", ""), "", "")
    )
    if not hmac.compare_digest(signature, q.get("X-Amz-Signature", "")):
        return s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
    f = sb.store.files.get(request.match_info["file_id"])
    if f is None or f.status == "created":
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    response = web.StreamResponse(headers={"Content-Type": f.media_type})
    response.content_length = f.file_size
    await response.prepare(request)
    for index in range(len(f.part_sizes)):
        with sb.store.blob_path(f.id, index).open("rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, 4 * CHUNK):
                await response.write(chunk)
    await response.write_eof()
    return response


def delete_blobs(sb: Sandbox, file_id: str) -> None:
    sb.hashes.pop(file_id, None)
    shutil.rmtree(sb.store.blob_dir / file_id, ignore_errors=True)
