"""Named crash points at every step boundary of an upload, for exhaustive crash tests.

Off unless ``POSTFLOW_FAILPOINTS`` is set (tests only): ``name`` or ``name@N`` (the Nth time it
is reached), comma-separated. Reaching an armed point kills the process with SIGKILL, exactly
as a power cut or ``kill -9`` would: no ``finally``, no flush, no goodbye.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

ENV = "POSTFLOW_FAILPOINTS"

#: In the order an upload reaches them.
POINTS = (
    "before_create",  # create_started_at is persisted, local_upload not yet sent
    "after_create",  # Frame.io answered, nothing recorded yet
    "after_record_id",  # file id and part URLs persisted, no byte sent
    "after_part_sent",  # a part's PUT succeeded, not yet recorded
    "after_part_recorded",  # a part is recorded as done
    "before_verify",  # every part sent, Frame.io not yet asked
    "after_verify",  # Frame.io says complete, not yet recorded as done
    "before_done",  # about to record the job as delivered
)


def _parse(text: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, nth = item.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown failpoint {name!r}: expected one of {', '.join(POINTS)}")
        armed[name] = int(nth) if nth else 1
    return armed


_ARMED = _parse(os.environ.get(ENV, ""))
_hits: Counter[str] = Counter()


def hit(name: str) -> None:
    """Die here if this point is armed (and this is the armed occurrence)."""
    if not _ARMED:
        return
    _hits[name] += 1
    if _ARMED.get(name) == _hits[name]:
        sys.stderr.write(f"failpoint {name} reached: killing the process\n")
        sys.stderr.flush()
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # Windows: as abrupt as it gets there
