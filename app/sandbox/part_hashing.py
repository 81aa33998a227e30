"""The sha256 of a local upload, in part order, while its parts arrive in any order.

A part whose predecessors are all hashed is hashed while it is received (on a copy of the
running hash, adopted only once the part is complete, so a dropped PUT leaves no trace). A part
that arrives early is read back later from where it was stored: its blob when the sandbox keeps
bytes, otherwise a spool file that is deleted as soon as it is hashed. Memory stays bounded (no
part is held whole), and with ``keep_bytes`` off the disk holds only the parts still waiting.

After a restart the running hash is gone; it is rebuilt from the blobs. Without blobs it cannot
be, and the file completes with an unknown sha256 rather than never completing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.sandbox.model import File, SandboxStore

log = logging.getLogger(__name__)
READ_CHUNK = 4 * 1024 * 1024


@dataclass
class PartHasher:
    """Running sha256 over one file's parts 0..next_part-1."""

    part_count: int
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    next_part: int = 0
    broken: bool = False  # a part's bytes are gone (restart without kept bytes): sha256 unknown
    inline: set[int] = field(default_factory=set)  # parts being hashed while received
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def done(self) -> bool:
        return self.broken or self.next_part >= self.part_count

    def claim(self, index: int) -> hashlib._Hash | None:
        """A copy of the running hash for the receiver of the next part, or None (it must store).

        One receiver per part hashes inline; a duplicate PUT of the same part stores its bytes
        instead, so whichever finishes first counts.
        """
        if index != self.next_part or index in self.inline or self.lock.locked() or self.done:
            return None
        self.inline.add(index)
        return self.hasher.copy()

    def release(self, index: int) -> None:
        self.inline.discard(index)

    def adopt(self, index: int, hasher: hashlib._Hash) -> bool:
        """Take a part hashed while received, unless another copy of it was counted first."""
        if index != self.next_part or self.broken:
            return False
        self.hasher = hasher
        self.next_part += 1
        return True


def stored_part(store: SandboxStore, f: File, index: int) -> Path:
    """Where a received part's bytes wait to be hashed: its blob, or its spool file."""
    return store.blob_path(f.id, index) if f.keep_bytes else store.spool_path(f.id, index)


def _hash_file(hasher: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            hasher.update(chunk)


async def advance(
    store: SandboxStore, f: File, state: PartHasher, index: int, inline: hashlib._Hash | None
) -> bool:
    """Count part ``index`` (just received), hash every part now in order; True when all are.

    Runs under the state's lock, so parts finishing together are hashed once and in order.
    """
    async with state.lock:
        if inline is not None:
            state.adopt(index, inline)
            state.release(index)
        if index not in f.parts_received:
            f.parts_received.append(index)
            store.changed()
        received = set(f.parts_received)
        while not state.done and state.next_part in received:
            if not await _hash_stored(store, f, state):
                _discard_spool(store, f, received)
        if not f.keep_bytes and (index < state.next_part or state.broken):
            store.spool_path(f.id, index).unlink(missing_ok=True)  # counted, or never will be
        if state.done and f.sha256 is None and not state.broken:
            f.sha256 = state.hasher.hexdigest()
            store.changed()
        return state.done


async def _hash_stored(store: SandboxStore, f: File, state: PartHasher) -> bool:
    """Hash the next part from disk; False (hash unknown from now on) when its bytes are gone."""
    path = stored_part(store, f, state.next_part)
    try:
        await asyncio.to_thread(_hash_file, state.hasher, path)
    except OSError as exc:
        log.warning(
            "sandbox: part %d of %s can no longer be read (%s); its sha256 stays unknown",
            state.next_part, f.name, exc,
        )  # fmt: skip
        state.broken = True
        return False
    if not f.keep_bytes:
        path.unlink(missing_ok=True)
    state.next_part += 1
    return True


def _discard_spool(store: SandboxStore, f: File, received: set[int]) -> None:
    """Once the hash is unknown, spooled parts serve nothing: free their space."""
    if f.keep_bytes:
        return
    for index in received:
        store.spool_path(f.id, index).unlink(missing_ok=True)
