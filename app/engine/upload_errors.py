"""What can go wrong with one file's upload, and what the engine does about each.

``retryable`` says whether waiting can help; ``max_attempts`` bounds the tries of errors that
rarely heal by themselves (a file PostFlow may not read, storage refusing the bytes): after
that many attempts the job is FAILED with a plain reason, for "needs attention" and "Retry".
"""

from __future__ import annotations

from app.core.errors import PostFlowError


class FileChanged(PostFlowError):
    """The file is not the version this job is about any more: the job is cancelled (its
    new version, if any, is its own job)."""

    title = "File changed"


class SourceUnavailable(PostFlowError):
    """The watched volume is not reachable: wait for it, never give up on the file."""

    title = "Watched folder unreachable"
    retryable = True


class NameRefused(PostFlowError):
    """Frame.io would refuse the file's name (or a folder's in its path): renaming it is the
    only fix, and the renamed file is a new job."""

    title = "Name Frame.io would refuse"


class NotReadable(PostFlowError):
    title = "File cannot be read"
    retryable = True
    max_attempts = 3


class UploadRejected(PostFlowError):
    """Frame.io or its storage refused this upload in a way that repeats."""

    title = "Upload refused"
    retryable = True
    max_attempts = 3


class PartUrlRejected(PostFlowError):
    """Storage refused (or never answers on) the presigned URLs: make new ones."""

    title = "Upload link refused"
    retryable = True


def attempt_limit(exc: PostFlowError) -> int | None:
    limit = getattr(exc, "max_attempts", None)
    return limit if isinstance(limit, int) else None
