"""Discord messages, built from notices. Pure, so every wording and limit is tested.

A few files finishing together get one rich embed each (file, size, where it went, link,
machine, how long it took). Many (40 renders of a batch) become one list per kind, split only
where Discord's limits demand: 10 embeds and 6,000 characters a message, 4,096 a description.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.core.units import format_bytes, format_duration

RICH_AT_MOST = 5  # more files of one kind than this: one list instead of an embed each
DESCRIPTION_MAX = 4000  # Discord: 4,096
TITLE_MAX = 250  # Discord: 256
FIELD_MAX = 1000  # Discord: 1,024
KINDS = ("failed", "signin", "transcode_failed", "ready", "uploaded")
COLOURS = {"ready": 0x2ECC71, "uploaded": 0x3498DB, "failed": 0xE74C3C, "transcode_failed": 0xE74C3C,
           "signin": 0xE67E22, "summary": 0x9B59B6, "test": 0x95A5A6}  # fmt: skip
HEADINGS = {
    "ready": ("is ready to review", "{n} files are ready to review"),
    "uploaded": (
        "was uploaded (Frame.io is preparing it)",
        "{n} files uploaded (Frame.io is preparing them)",
    ),
    "failed": ("could not be uploaded", "{n} files could not be uploaded"),
    "transcode_failed": (
        "was uploaded, but Frame.io could not process it",
        "{n} files could not be processed",
    ),
}
FOOTER = {"text": "PostFlow"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stamp(epoch: float | None = None) -> str:
    return datetime.fromtimestamp(epoch or time.time(), UTC).isoformat(timespec="seconds")


def _link(name: str, link: str | None) -> str:
    safe = name.replace("[", "(").replace("]", ")")
    return f"[{safe}]({link})" if link else f"**{safe}**"


def _rich(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    name = str(data.get("name", "?"))
    fields = []
    if data.get("size") is not None:
        fields.append({"name": "Size", "value": format_bytes(int(data["size"])), "inline": True})
    if data.get("destination"):
        fields.append(
            {"name": "Destination", "value": _cut(str(data["destination"]), FIELD_MAX), "inline": True}
        )
    if data.get("machine"):
        fields.append({"name": "Machine", "value": _cut(str(data["machine"]), FIELD_MAX), "inline": True})
    seconds = data.get("seconds")
    if seconds:
        label = "Ready after" if kind == "ready" else "Upload took"
        fields.append({"name": label, "value": format_duration(float(seconds)), "inline": True})
    if data.get("message"):
        fields.append({"name": "Why", "value": _cut(str(data["message"]), FIELD_MAX), "inline": False})
    embed: dict[str, Any] = {
        "title": _cut(f"{name} {HEADINGS[kind][0]}", TITLE_MAX), "color": COLOURS[kind], "fields": fields,
        "footer": FOOTER, "timestamp": _stamp(data.get("at")),
    }  # fmt: skip
    if data.get("link"):
        embed["url"] = data["link"]
    return embed


def _line(kind: str, data: dict[str, Any]) -> str:
    parts = [_link(str(data.get("name", "?")), data.get("link"))]
    if data.get("size") is not None:
        parts.append(format_bytes(int(data["size"])))
    if kind in ("failed", "transcode_failed") and data.get("message"):
        parts.append(_cut(str(data["message"]), 200))
    return "• " + " · ".join(parts)


def _listed(kind: str, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One embed (or a few, at Discord's limits) listing every file, grouped by destination."""
    by_place: dict[str, list[dict[str, Any]]] = {}
    for data in items:
        by_place.setdefault(str(data.get("destination") or ""), []).append(data)
    lines: list[str] = []
    for place, group in by_place.items():
        if place:
            lines.append(f"**{_cut(place, 200)}**")
        lines += [_line(kind, d) for d in group]
    machines = sorted({str(d["machine"]) for d in items if d.get("machine")})
    title = HEADINGS[kind][1].format(n=len(items))
    embeds: list[dict[str, Any]] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > DESCRIPTION_MAX:
            embeds.append(_list_embed(kind, title, chunk, machines))
            chunk = []
        chunk.append(line)
    embeds.append(_list_embed(kind, title, chunk, machines))
    if len(embeds) > 1:
        for i, embed in enumerate(embeds, start=1):
            embed["title"] = _cut(f"{title} ({i}/{len(embeds)})", TITLE_MAX)
    return embeds


def _list_embed(kind: str, title: str, lines: list[str], machines: list[str]) -> dict[str, Any]:
    embed: dict[str, Any] = {"title": _cut(title, TITLE_MAX), "description": "\n".join(lines),
                             "color": COLOURS[kind], "footer": FOOTER, "timestamp": _stamp()}  # fmt: skip
    if machines:
        embed["fields"] = [{"name": "Machine", "value": _cut(", ".join(machines), FIELD_MAX), "inline": True}]
    return embed


def _size(embed: dict[str, Any]) -> int:
    """What Discord counts towards a message's 6,000 characters."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    return total + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def pack(embeds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Embeds into as few messages as Discord allows (10 embeds, 6,000 characters each)."""
    messages: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    for embed in embeds:
        if current and (len(current) == 10 or sum(map(_size, current)) + _size(embed) > 5800):
            messages.append({"embeds": current})
            current = []
        current.append(embed)
    if current:
        messages.append({"embeds": current})
    for message in messages:
        message["allowed_mentions"] = {"parse": []}  # a file named @everyone pings nobody
    return messages


def compose(notices: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """(kind, data) notices that arrived together → the messages to send, most urgent first."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for kind, data in notices:
        by_kind.setdefault(kind, []).append(data)
    embeds: list[dict[str, Any]] = []
    for kind in sorted(by_kind, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        items = by_kind[kind]
        if kind == "signin":
            embeds.append(signin_embed(items[-1]))
        elif kind not in HEADINGS:
            continue
        elif len(items) <= RICH_AT_MOST:
            embeds += [_rich(kind, d) for d in items]
        else:
            embeds += _listed(kind, items)
    return pack(embeds)


def signin_embed(data: dict[str, Any]) -> dict[str, Any]:
    machine = f" on {data['machine']}" if data.get("machine") else ""
    return {"title": f"PostFlow{machine} needs someone to sign in again",
            "description": _cut(str(data.get("message") or "The Adobe sign-in ended. Uploads wait; "
                                     "nothing is lost."), DESCRIPTION_MAX),
            "color": COLOURS["signin"], "footer": FOOTER, "timestamp": _stamp(data.get("at"))}  # fmt: skip


def test_message(machine: str) -> dict[str, Any]:
    return {"embeds": [{"title": "PostFlow test message", "color": COLOURS["test"],
                        "description": f"PostFlow on {machine} can post to this channel.",
                        "footer": FOOTER, "timestamp": _stamp()}],
            "allowed_mentions": {"parse": []}}  # fmt: skip


def summary_message(day: str, machine: str, totals: dict[str, Any]) -> dict[str, Any]:
    """The daily summary: files and bytes delivered, failures, per project."""
    lines = [f"**{totals['files']}** files delivered ({format_bytes(totals['bytes'])}), "
             f"**{totals['failed']}** failed."]  # fmt: skip
    for project, row in sorted(totals["projects"].items()):
        failed = f", {row['failed']} failed" if row["failed"] else ""
        lines.append(
            f"• **{_cut(project, 200)}**: {row['files']} files, {format_bytes(row['bytes'])}{failed}"
        )
    if totals.get("failed_names"):
        lines.append("Failed: " + ", ".join(_cut(n, 100) for n in totals["failed_names"][:20]))
    return {"embeds": [{"title": f"Daily summary for {day} ({machine})", "color": COLOURS["summary"],
                        "description": _cut("\n".join(lines), DESCRIPTION_MAX), "footer": FOOTER,
                        "timestamp": _stamp()}],
            "allowed_mentions": {"parse": []}}  # fmt: skip
