"""Which names Frame.io would refuse, said before anything is sent. Pure: tested with tables.

The V4 API documents one rule for file and folder names: 1 to 255 characters (the JSON
Schema's ``minLength``/``maxLength``, counted in Unicode code points). A name that is not valid
text (bytes that are not UTF-8 on a Linux or SMB volume, shown as U+FFFD) cannot be sent
faithfully at all. Every other name is Frame.io's to judge: PostFlow does not guess more rules,
because a wrong guess would strand a file the service would have taken.
"""

from __future__ import annotations

MAX_NAME = 255
NOT_TEXT = "\ufffd"


def name_problem(rel_path: str) -> str | None:
    """Why Frame.io would refuse this relative path (its folders are mirrored as folders),
    as a sentence an editor can act on; None when every part of it is acceptable."""
    *folders, name = rel_path.split("/")
    for part, what in [*((f, "folder") for f in folders), (name, "file")]:
        problem = _part_problem(part, what)
        if problem is not None:
            return problem
    return None


def _part_problem(part: str, what: str) -> str | None:
    subject = (
        f"The {what} name “{_shown(part)}”" if what == "file" else f"The folder “{_shown(part)}” in its path"
    )
    if not part:
        return f"The path has an empty {what} name; Frame.io needs 1 to {MAX_NAME} characters."
    if NOT_TEXT in part:
        return (
            f"{subject} has characters that are not valid text (shown as {NOT_TEXT}: bytes that "
            "are not UTF-8). Rename it and PostFlow uploads it."
        )
    if len(part) > MAX_NAME:
        return (
            f"{subject} is {len(part)} characters long; Frame.io accepts at most {MAX_NAME}. "
            "Rename it shorter and PostFlow uploads it."
        )
    return None


def _shown(part: str, keep: int = 60) -> str:
    return part if len(part) <= keep else f"{part[: keep // 2]}…{part[-keep // 2 :]}"
