"""What the tray says at a glance: one look (icon), one tooltip and one status line per snapshot.

Pure functions of the engine's ``Snapshot`` (no Qt), so every state an editor can meet is
tested without a screen, and the icon, the tooltip and the menu can never disagree.
"""

from __future__ import annotations

from app.core.events import AuthState, Snapshot
from app.core.units import format_duration, format_speed
from app.gui.tray_look import TrayLook

__all__ = ["TrayLook", "look_of", "problem_line", "progress_percent", "status_line", "tooltip"]


def look_of(snapshot: Snapshot) -> TrayLook:
    if snapshot.auth is AuthState.SIGNED_OUT or snapshot.account_problem or snapshot.counts.get("failed"):
        return TrayLook.ATTENTION
    if any(not h.ok and h.component != "network" for h in snapshot.health):
        return TrayLook.ATTENTION
    if snapshot.offline:
        return TrayLook.OFFLINE
    if snapshot.paused:
        return TrayLook.PAUSED
    if snapshot.uploading or snapshot.counts.get("pending"):
        return TrayLook.UPLOADING
    return TrayLook.IDLE


def progress_percent(snapshot: Snapshot) -> int | None:
    """Share of the active bytes sent, 0 to 100; None when nothing is queued."""
    if snapshot.bytes_total <= 0:
        return None
    done = snapshot.bytes_total - snapshot.bytes_left
    return max(0, min(100, int(done * 100 / snapshot.bytes_total)))


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _active(snapshot: Snapshot) -> int:
    return sum(snapshot.counts.get(state, 0) for state in ("pending", "uploading", "paused"))


def problem_line(snapshot: Snapshot) -> str | None:
    """The one thing the user must do or know, in words; None when all is well."""
    if snapshot.auth is AuthState.SIGNED_OUT:
        return "Signed out: sign in with Adobe to keep uploading"
    if snapshot.account_problem:
        return snapshot.account_problem
    for health in snapshot.health:
        if not health.ok and health.component != "network":
            return health.message or f"{health.component}: problem"
    failed = snapshot.counts.get("failed", 0)
    if failed:
        return f"{_files(failed)} failed: open the queue to see why"
    if snapshot.offline:
        return "Frame.io cannot be reached: uploads resume by themselves"
    return None


def status_line(snapshot: Snapshot) -> str:
    """The first, disabled line of the menu and the first line of the tooltip."""
    active = _active(snapshot)
    if snapshot.paused:
        return f"Paused · {_files(active)} waiting" if active else "Paused"
    if snapshot.uploading or snapshot.counts.get("pending"):
        parts = [_files(active)]
        percent = progress_percent(snapshot)
        if percent is not None:
            parts.append(f"{percent} %")
        if snapshot.bytes_per_second > 0:
            parts.append(format_speed(snapshot.bytes_per_second))
        if snapshot.eta_seconds is not None:
            parts.append(f"{format_duration(snapshot.eta_seconds)} left")
        return " · ".join(parts)
    if snapshot.settling:
        return f"Waiting for {_files(snapshot.settling)} to finish rendering"
    if not snapshot.roots:
        return "No folder watched yet: open Settings to add one"
    return "Up to date"


def tooltip(snapshot: Snapshot) -> str:
    lines = ["PostFlow", status_line(snapshot)]
    problem = problem_line(snapshot)
    if problem:
        lines.append(problem)
    if snapshot.bandwidth_note:
        lines.append(snapshot.bandwidth_note)
    return "\n".join(lines)
