"""Does a media file look finished? Pure reads of its container, no decoding.

A render that stalls mid-write can keep the same size for longer than any stability window;
uploading it would put a broken file in front of the client. The container tells:

- MP4 / MOV (ISO base media, QuickTime): the top-level boxes must walk exactly to the end of the
  file, and a ``moov`` box (the index, written last by most encoders) must be among them.
- MXF (SMPTE ST 377): a random index pack closes the file, or, without one, the footer partition
  the header points to is there and the file ends where that partition says it does.
- Anything else is not judged here: stability alone decides.

A file judged complete needs only a short quiet period before upload; an incomplete one waits
however long its size stays still.
"""

from __future__ import annotations

import os
import string
import struct
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO


class Verdict(Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    NOT_JUDGED = "not judged"  # not a container this module knows: stability alone decides


@dataclass(frozen=True)
class MediaCheck:
    verdict: Verdict
    reason: str = ""  # for an incomplete file: what is missing, in words for the user


ISO_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".m4a", ".3gp", ".qt"})
MXF_EXTENSIONS = frozenset({".mxf"})
# What a QuickTime / ISO file starts with; anything else is not judged (a ".mov" of random bytes).
FIRST_BOXES = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"junk", b"styp"}
)
MAX_BOXES = 200_000  # a fragmented MP4 has many boxes; a walk that long is not a real file
_BOX_CHARS = frozenset((string.ascii_letters + string.digits + " ©_-").encode())
_MXF_PREFIX = bytes.fromhex("060e2b34020501010d01020101")  # partition packs and the RIP
_RIP_KEY = _MXF_PREFIX + bytes.fromhex("110100")
NOT_JUDGED = MediaCheck(Verdict.NOT_JUDGED)
_WRITING = ": it is still being written"


def _incomplete(why: str) -> MediaCheck:
    return MediaCheck(Verdict.INCOMPLETE, why)


COMPLETE = MediaCheck(Verdict.COMPLETE)


def judged(name: str) -> bool:
    """Whether the gate has an opinion on files of this name (by extension)."""
    ext = os.path.splitext(name)[1].lower()
    return ext in ISO_EXTENSIONS or ext in MXF_EXTENSIONS


def check_media(path: str) -> MediaCheck:
    """Blocking (reads a few headers): run it in a thread. An unreadable file is not judged:
    the upload itself will say what is wrong with it."""
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if ext in ISO_EXTENSIONS:
                return check_iso(f, size)
            if ext in MXF_EXTENSIONS:
                return check_mxf(f, size)
    except OSError:
        return NOT_JUDGED
    return NOT_JUDGED


def check_iso(f: BinaryIO, size: int) -> MediaCheck:
    offset, boxes, has_moov = 0, 0, False
    while offset < size:
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8 and offset == 0:
            return NOT_JUDGED  # too short to be a QuickTime / ISO file at all
        if len(header) < 8:
            return _incomplete("the file ends inside a box header" + _WRITING)
        box_size, kind = struct.unpack(">I4s", header[:8])
        if offset == 0 and kind not in FIRST_BOXES:
            return NOT_JUDGED  # not an ISO/QuickTime file after all: stability decides
        if not all(c in _BOX_CHARS for c in kind):
            return _incomplete("the container structure is broken" + _WRITING)
        if box_size == 1:
            if len(header) < 16:
                return _incomplete("the file ends inside a box header" + _WRITING)
            box_size = struct.unpack(">Q", header[8:16])[0]
            if box_size < 16:
                return _incomplete("a box has an impossible size")
        elif box_size == 0:
            box_size = size - offset  # "to the end of the file": only ever the last box
        elif box_size < 8:
            return _incomplete("a box has an impossible size")
        if kind == b"moov":
            has_moov = True
        offset += box_size
        boxes += 1
        if boxes > MAX_BOXES:
            return NOT_JUDGED
    if offset != size:
        return _incomplete("the last box runs past the end of the file" + _WRITING)
    if not has_moov:
        return _incomplete("no movie index (moov box) yet: the render has not finished")
    return COMPLETE


def check_mxf(f: BinaryIO, size: int) -> MediaCheck:
    f.seek(0)
    header = f.read(16)
    if len(header) < 16 or not header.startswith(_MXF_PREFIX) or header[13] != 0x02:
        return NOT_JUDGED  # no header partition at the start (a run-in?): stability decides
    if size >= 4 + 16:
        f.seek(size - 4)
        rip_length = struct.unpack(">I", f.read(4))[0]
        if 20 <= rip_length <= size:
            f.seek(size - rip_length)
            if f.read(16) == _RIP_KEY:
                return COMPLETE
    footer_at = _footer_offset(f)
    if footer_at is None or footer_at == 0:
        return _incomplete("no footer partition yet: the render has not finished")
    pack = _partition(f, footer_at)
    if pack is None or pack[0] != 0x04:
        return _incomplete("the footer partition is missing" + _WRITING)
    _kind, pack_end, header_bytes, index_bytes = pack
    if pack_end + header_bytes + index_bytes != size:
        return _incomplete("the file does not end where its footer says" + _WRITING)
    return COMPLETE


def _ber_length(f: BinaryIO) -> int | None:
    first = f.read(1)
    if not first:
        return None
    if first[0] < 0x80:
        return first[0]
    count = first[0] & 0x7F
    data = f.read(count)
    if count == 0 or count > 8 or len(data) < count:
        return None
    return int.from_bytes(data, "big")


def _partition(f: BinaryIO, offset: int) -> tuple[int, int, int, int] | None:
    """(kind, where the pack ends, header metadata bytes, index bytes) of the partition pack at
    ``offset``; kind 2 header, 3 body, 4 footer."""
    f.seek(offset)
    key = f.read(16)
    if len(key) < 16 or not key.startswith(_MXF_PREFIX) or key[13] not in (0x02, 0x03, 0x04):
        return None
    length = _ber_length(f)
    if length is None or length < 64:
        return None
    value_at = f.tell()
    value = f.read(64)
    if len(value) < 64:
        return None
    # major, minor, KAG, this, previous, footer, header byte count, index byte count, ...
    fields = struct.unpack(">HHIQQQQQ", value[:48])
    header_bytes, index_bytes = fields[6], fields[7]
    return key[13], value_at + length, header_bytes, index_bytes


def _footer_offset(f: BinaryIO) -> int | None:
    f.seek(16)
    length = _ber_length(f)
    if length is None or length < 64:
        return None
    value = f.read(48)
    if len(value) < 48:
        return None
    return int(struct.unpack(">HHIQQQQQ", value)[5])
