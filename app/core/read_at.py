"""Reading a file at a position, on every OS, from a worker thread."""

from __future__ import annotations

import os


def read_at(fd: int, into: memoryview, position: int) -> int:
    """Bytes read into ``into`` from ``position`` (0 at the end of the file). ``preadv`` where
    the OS has it; Windows has no positional read, so it seeks, then reads: call it only on a
    descriptor the calling thread owns alone (its own duplicate), so that the seek moves nobody
    else's position."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [into], position)
    os.lseek(fd, position, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        return raw.readinto(into) or 0
