"""``postflow status`` for a person: the status document in a few plain lines.

It always says whether PostFlow is running, what the queue holds, which files wait for their
render to finish, which watch folders cannot be reached, and lists files (the latest
deliveries too, so "nothing failed" still shows what happened).
"""

from __future__ import annotations

from typing import Any

from app.core.units import format_bytes, format_duration, format_speed

ORDER = ("uploading", "pending", "paused", "failed", "done", "cancelled")
WORDS = {"uploading": "uploading", "pending": "waiting", "paused": "paused", "failed": "failed",
         "done": "delivered", "cancelled": "cancelled"}  # fmt: skip


def render(doc: dict[str, Any]) -> str:
    engine, queue = doc["engine"], doc["queue"]
    lines = [_headline(doc)]
    counts = queue["counts"]
    parts = [f"{counts[s]} {WORDS[s]}" for s in ORDER if counts.get(s)]
    line = "Queue: " + (", ".join(parts) if parts else "empty")
    if queue["bytes_total"] and queue["bytes_left"]:
        done = 100 * (queue["bytes_total"] - queue["bytes_left"]) // queue["bytes_total"]
        line += f" · {done} % of {format_bytes(queue['bytes_total'])}"
    if queue["bytes_per_second"]:
        line += f" · {format_speed(queue['bytes_per_second'])}"
    if queue["eta_seconds"]:
        line += f" · {format_duration(queue['eta_seconds'])} left"
    lines.append(line)
    if engine.get("account_problem"):
        lines.append(f"Account: {engine['account_problem']}")
    if doc["settling"]:
        lines.append(f"Waiting for the render to finish ({len(doc['settling'])}):")
        lines += [f"  {f['rel_path']}  {format_bytes(f['size'])} so far" for f in doc["settling"][:20]]
    if doc["roots"]:
        lines.append("Watch folders:")
        for root in doc["roots"]:
            target = " / ".join(p for p in (root["project"], root["folder"]) if p)
            state = "" if root["ok"] in (None, True) else f"  NOT AVAILABLE: {root['problem']}"
            lines.append(f"  {root['path']} → {target}{state}")
    else:
        lines.append("Watch folders: none (add one in Settings, or [[watch.roots]] in config.toml)")
    problems = [h for h in doc["health"] if not h["ok"] and not h["check"].startswith("watch:")]
    if problems:
        lines.append("Needs attention:")
        lines += [f"  {h['label']}: {h['message']} {h['action'] or ''}".rstrip() for h in problems]
    if doc["jobs"]:
        lines.append("Files:")
        lines += [_job_line(j) for j in doc["jobs"]]
        if doc["jobs_truncated"]:
            lines.append("  … more unfinished files: see postflow status --json or the queue window")
    return "\n".join(lines)


def _headline(doc: dict[str, Any]) -> str:
    engine = doc["engine"]
    if not engine["running"]:
        paused = " (uploads paused)" if engine["paused"] else ""
        return f"PostFlow is not running{paused}: this is the queue as it was saved."
    state = "paused" if engine["paused"] else "running"
    who = f"signed in as {engine['user_email']}" if engine["signed_in"] else "SIGNED OUT: sign in to upload"
    demo = " · demo (built-in sandbox)" if engine.get("demo") else ""
    return f"PostFlow is {state} · {who}{demo}"


def _job_line(job: dict[str, Any]) -> str:
    pct = f"{100 * job['bytes_done'] // job['size']}%" if job["size"] and job["state"] == "uploading" else ""
    error = job["error"]
    why = f"  ({error['title']}: {error['message']})" if error and job["state"] != "done" else ""
    note = f"  ({job['note']})" if job.get("note") else ""
    return f"  {job['id']:>6} {WORDS[job['state']]:<10} {pct:>4}  {job['rel_path']}{why}{note}"
