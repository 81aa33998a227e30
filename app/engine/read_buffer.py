"""One reusable read buffer per thread: a fresh 4 MiB object for every read would cost its
pages' first-touch faults, in the kernel, every time (the upload's and the digest's reads)."""

from __future__ import annotations

import threading

SIZE = 4 * 1024 * 1024
_LOCAL = threading.local()


def thread_buffer() -> bytearray:
    """This thread's buffer of ``SIZE`` bytes, kept for the thread's life."""
    buffer: bytearray | None = getattr(_LOCAL, "buffer", None)
    if buffer is None:
        buffer = _LOCAL.buffer = bytearray(SIZE)
    return buffer
