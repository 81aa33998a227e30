"""``postflow status [--json]``: the queue as the state database has it, without changing it."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

REPORTED = (
    "id", "rel_path", "abs_path", "size", "state", "attempts", "last_error", "note", "remote_file_id",
    "sha256", "bytes_done", "updated_at", "error_title", "remote_url",
)  # fmt: skip


def read_jobs(db_path: Path) -> list[dict[str, Any]]:
    """Read-only: safe while the engine runs (WAL lets readers in)."""
    if not db_path.exists():
        return []
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    columns = [k for k in REPORTED if rows and k in set(rows[0].keys())]  # older schemas have fewer
    return [{k: r[k] for k in columns} for r in rows]  # never uploader internals


def render(jobs: list[dict[str, Any]], as_json: bool) -> str:
    counts = Counter(j["state"] for j in jobs)
    if as_json:
        return json.dumps({"counts": dict(counts), "jobs": jobs}, indent=2)
    if not jobs:
        return "The queue is empty."
    lines = [", ".join(f"{n} {state}" for state, n in sorted(counts.items()))]
    for j in jobs:
        if j["state"] == "done":
            continue
        pct = f"{100 * j['bytes_done'] // j['size']}%" if j["size"] else ""
        title = f"{j['error_title']}: " if j.get("error_title") else ""
        error = f"  ({title}{j['last_error']})" if j.get("last_error") else ""
        lines.append(f"{j['state']:<10} {pct:>4}  {j['rel_path']}{error}")
    return "\n".join(lines)
