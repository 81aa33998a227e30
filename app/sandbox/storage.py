"""Presigned part URLs, checked the way S3 checks them, and the stored bytes.

A PUT is refused (S3-style XML) when the signature does not cover the request (missing or
different ``x-amz-acl`` or ``Content-Type``), when the URL has expired, when the length is
missing or not the part's size. When every part is in, the file moves created → uploaded →
transcoded. Bytes are hashed in part order as they arrive (``part_hashing``), so completion does
not wait for a full re-read of a large file; with ``keep_bytes`` off they are checked and hashed
but not kept. A storage failure (a full disk) answers a 500 ``InternalError`` that says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import ClientPayloadError, web

from app.sandbox.context import Sandbox, get_sandbox
from app.sandbox.fault_responses import ConnectionDropped, drop_connection, fault_response
from app.sandbox.model import File
from app.sandbox.part_hashing import PartHasher, advance
from app.sandbox.part_receive import CHUNK, commit, receive_body, storage_error_message
from app.sandbox.responses import s3_error

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_PARTS = 10_000


def split_parts(size: int, part_size: int) -> list[int]:
    """Part sizes as Frame.io hands them out: ceil(size / count) each, the last smaller or equal.

    The official SDK's uploader ignores each URL's ``size`` and cuts ceil(size / len(urls)) bytes
    per URL, so any other split fails with it. The count follows ``part_size``, never above S3's
    10,000 parts; an empty file is one empty part.
    """
    part = max(1, part_size, -(-size // MAX_PARTS))
    count = max(1, -(-size // part))
    each = -(-size // count)
    return [each] * (count - 1) + [size - each * (count - 1)]


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


RENDITIONS = ("high_quality", "efficient")  # download_url only
IMAGES = ("thumbnail", "thumbnail_high_quality", "video_h264_180", "scrub_sheet")  # url and download_url


def media_links(sb: Sandbox, f: File, includes: set[str]) -> dict[str, object] | None:
    """The ``media_links`` object for ``include=media_links.*``. The original exists once the
    bytes are in; proxies and thumbnails only once the file is transcoded (and never when its
    processing failed), so a client that checks too early sees what a reviewer would: nothing
    to play yet. Proxies are served from the original's bytes."""
    wanted = {i.split(".", 1)[1] for i in includes if i.startswith("media_links.")}
    if not wanted:
        return None
    url = download_url(sb, f) if f.status != "created" else None
    proxy = url if f.status == "transcoded" and not f.transcode_failed else None
    links: dict[str, object] = {}
    for kind in wanted:
        if kind == "original":
            links[kind] = {"download_url": url, "inline_url": url}
        elif kind in RENDITIONS:
            links[kind] = {"download_url": proxy}
        else:
            links[kind] = {"download_url": proxy, "url": proxy}
    return links


def _expired(sb: Sandbox, amz_date: str, expires: str) -> bool:
    try:
        start = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        return sb.clock.now() > start + int(expires)
    except ValueError:
        return True


def mark_uploaded(sb: Sandbox, f: File) -> None:
    """All bytes are in: uploaded once assembled (``assembly_delay``), transcoded a moment later."""
    if sb.config.assembly_delay > 0:
        sb.spawn(_uploaded_after_assembly(sb, f))
        return
    _uploaded(sb, f)


async def _uploaded_after_assembly(sb: Sandbox, f: File) -> None:
    await asyncio.sleep(sb.config.assembly_delay)
    if f.id in sb.store.files and f.status == "created":
        _uploaded(sb, f)


def _uploaded(sb: Sandbox, f: File) -> None:
    f.status = "uploaded"
    f.uploaded_at = f.updated_at = sb.clock.iso()
    sb.store.changed()
    sb.spawn(_transcode(sb, f))


async def _transcode(sb: Sandbox, f: File) -> None:
    rate = sb.config.transcode_bytes_per_second
    await asyncio.sleep(sb.config.transcode_delay + (f.file_size / rate if rate > 0 else 0.0))
    if f.id in sb.store.files and f.status == "uploaded":
        if sb.fail_next_transcodes > 0:
            sb.fail_next_transcodes -= 1
            f.transcode_failed = True
        f.status = "transcoded"
        f.updated_at = sb.clock.iso()
        sb.store.changed()


def _refusal(sb: Sandbox, request: web.Request) -> web.Response | None:
    """S3's checks on the URL and headers, before any byte is read."""
    q = request.query
    ctype = request.headers.get("Content-Type", "")
    acl = request.headers.get("x-amz-acl", "")
    amz_date, expires = q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", "")
    signature = _sign(sb, _canonical("PUT", request.path, amz_date, expires, ctype, acl))
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
    return None


def _open_part(sb: Sandbox, request: web.Request) -> tuple[File, int] | None:
    """The file and part index a PUT names, while that upload is still open."""
    f = sb.store.files.get(request.match_info["file_id"])
    try:
        index = int(request.match_info["part"])
    except ValueError:
        return None
    if f is None or not 0 <= index < len(f.part_sizes) or f.status != "created" or f.upload_failed:
        return None  # unknown, or already assembled (S3 forgets a multipart upload once complete)
    return f, index


def _length_refusal(request: web.Request, expected: int, index: int) -> web.Response | None:
    if request.content_length is None:
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    if request.content_length != expected:
        code = "EntityTooSmall" if request.content_length < expected else "EntityTooLarge"
        return s3_error(
            400, code, f"Part {index} must be exactly {expected} bytes, got {request.content_length}."
        )
    return None


def _sink(sb: Sandbox, f: File, index: int, hashed_inline: bool) -> Path | None:
    """Where the part's bytes must go: its blob, a spool file until hashed, or nowhere."""
    if f.keep_bytes:
        return sb.store.blob_path(f.id, index)
    return None if hashed_inline else sb.store.spool_path(f.id, index)


def _no_such_upload() -> web.Response:
    return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")


def _storage_failure(sb: Sandbox, f: File, exc: OSError, path: Path) -> web.Response:
    if f.id not in sb.store.files:  # deleted while we were receiving: its folder went with it
        return _no_such_upload()
    message = storage_error_message(exc, path)
    log.error("%s", message)
    return s3_error(500, "InternalError", message)


async def _receive(
    sb: Sandbox, request: web.Request, f: File, index: int, hasher: hashlib._Hash | None
) -> web.Response | None:
    """Read the part into place; an error answer, or None when it is stored (or hashed)."""
    target = _sink(sb, f, index, hasher is not None)
    tmp = None if target is None else target.with_name(f"{target.name}.tmp{os.getpid()}-{id(request)}")
    try:
        received = await receive_body(request, tmp, hasher)
        if received.size != f.part_sizes[index]:
            return s3_error(
                400, "IncompleteBody",
                "You did not provide the number of bytes given in the Content-Length header.",
            )  # fmt: skip
        failure = received.failure
        if failure is None and tmp is not None and target is not None:
            failure = commit(tmp, target)
        if failure is not None:
            return _storage_failure(sb, f, failure, target or sb.store.spool_dir)
    except (ConnectionResetError, ClientPayloadError):
        raise ConnectionDropped from None  # the client went away mid-part: nothing is stored
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return None


def _hash_state(sb: Sandbox, f: File) -> PartHasher:
    return sb.hashes.setdefault(f.id, PartHasher(len(f.part_sizes)))


def _assemble(sb: Sandbox, f: File) -> None:
    """Every part is in and hashed: Frame.io assembles the file (or, when told to, fails to)."""
    sb.hashes.pop(f.id, None)
    if sb.fail_next_uploads > 0:
        sb.fail_next_uploads -= 1
        f.upload_failed = True
        sb.store.changed()
    else:
        mark_uploaded(sb, f)


@routes.put("/_storage/upload/{file_id}/{part}")
async def put_part(request: web.Request) -> web.StreamResponse:
    sb = get_sandbox(request)
    sb.stats["storage.put"] += 1
    kind = sb.faults.pick("parts")
    if kind is not None:
        return await fault_response(sb, request, "parts", kind)
    refused = _refusal(sb, request)
    if refused is not None:
        return refused
    opened = _open_part(sb, request)
    if opened is None:
        return _no_such_upload()
    f, index = opened
    refused = _length_refusal(request, f.part_sizes[index], index)
    if refused is not None:
        return refused
    state = _hash_state(sb, f)
    inline = state.claim(index)
    try:
        refused = await _receive(sb, request, f, index, inline)
        if refused is not None:
            return refused
        if f.id not in sb.store.files:  # deleted while we were receiving
            return _no_such_upload()
        hashed = await advance(sb.store, f, state, index, inline)
    finally:
        state.release(index)
    complete = len(f.parts_received) == len(f.part_sizes)
    if hashed and complete and f.status == "created" and not f.upload_failed:
        _assemble(sb, f)
    tag = hashlib.md5(f"{f.id}/{index}".encode(), usedforsecurity=False).hexdigest()
    return web.Response(status=200, headers={"ETag": f'"{tag}"'})


def _missing_bytes(sb: Sandbox, f: File) -> web.Response | None:
    """A download the sandbox cannot serve, told plainly instead of failing mid-stream."""
    if not f.keep_bytes:
        return s3_error(404, "NoSuchKey", "bytes not kept by this sandbox (keep_bytes is off)")
    for index in range(len(f.part_sizes)):
        path = sb.store.blob_path(f.id, index)
        if not path.is_file():
            log.warning("sandbox: the bytes of %s are missing (%s)", f.name, path)
            return s3_error(404, "NoSuchKey", f"the bytes of this file are missing from the sandbox ({path})")
    return None


async def _stream_blobs(sb: Sandbox, f: File, request: web.Request, response: web.StreamResponse) -> None:
    try:
        for index in range(len(f.part_sizes)):
            with sb.store.blob_path(f.id, index).open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, 4 * CHUNK):
                    await response.write(chunk)
    except OSError as exc:
        if not isinstance(exc, ConnectionError):  # not the client leaving: a blob that broke
            log.warning("sandbox: download of %s stopped: %s", f.name, exc)
        await drop_connection(request)  # the status line is sent: only a cut says "failed"


@routes.get("/_storage/download/{file_id}")
async def download(request: web.Request) -> web.StreamResponse:
    sb = get_sandbox(request)
    q = request.query
    signature = _sign(
        sb, _canonical("GET", request.path, q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", ""), "", "")
    )
    if not hmac.compare_digest(signature, q.get("X-Amz-Signature", "")):
        return s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
    f = sb.store.files.get(request.match_info["file_id"])
    if f is None or f.status == "created":
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    missing = _missing_bytes(sb, f)
    if missing is not None:
        return missing
    response = web.StreamResponse(headers={"Content-Type": f.media_type})
    response.content_length = f.file_size
    await response.prepare(request)
    if request.method != "HEAD":  # a HEAD is the headers alone (a body would poison the connection)
        await _stream_blobs(sb, f, request, response)
    await response.write_eof()
    return response


def delete_blobs(sb: Sandbox, file_id: str) -> None:
    sb.hashes.pop(file_id, None)
    shutil.rmtree(sb.store.blob_dir / file_id, ignore_errors=True)
    shutil.rmtree(sb.store.spool_dir / file_id, ignore_errors=True)
