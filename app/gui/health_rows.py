"""The health panel's checks, in words: every watched folder, the sign-in, the connection to
Frame.io and PostFlow's own disk, each green or red with what it means and what to do.
Pure (no Qt), so each wording is tested."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.events import AuthState, Snapshot
from app.core.units import format_bytes, format_duration


@dataclass(frozen=True)
class HealthRow:
    label: str
    ok: bool
    explanation: str


def health_rows(snap: Snapshot) -> list[HealthRow]:
    reported = {h.component: h for h in snap.health}
    rows: list[HealthRow] = []
    signin = reported.get("signin")
    if snap.auth is AuthState.SIGNED_IN:
        words = signin.message if signin is not None and signin.ok and signin.message else None
        words = words or f"Signed in as {snap.user_email or 'your Adobe account'}."
        rows.append(HealthRow("Adobe sign-in", True, words))
    else:
        rows.append(HealthRow(
            "Adobe sign-in", False,
            "Signed out. Nothing is lost: uploads wait. Choose Sign in with Adobe in the tray menu.",
        ))  # fmt: skip
    if snap.account_problem:
        rows.append(HealthRow("Frame.io account", False, snap.account_problem))
    network = reported.get("network")
    if network is not None and not network.ok:
        rows.append(
            HealthRow("Connection to Frame.io", False, network.message or "Frame.io cannot be reached.")
        )
    else:
        rows.append(HealthRow("Connection to Frame.io", True, "Frame.io answers."))
    if not snap.roots:
        rows.append(HealthRow("Watch folders", False, "No folder is watched. Add one in Settings."))
    for root in snap.roots:
        health = reported.get(f"watch:{root.id}")
        label = f"Watch folder {root.path}"
        if health is not None and not health.ok:
            rows.append(HealthRow(label, False, health.message or "This folder has a problem."))
        else:
            target = root.project + (f" / {root.folder}" if root.folder else "")
            rows.append(HealthRow(label, True, f"Watched; files go to {target}."))
    disk = reported.get("disk")
    if disk is not None and not disk.ok:
        rows.append(HealthRow("PostFlow's data disk", False, disk.message or "The data disk has a problem."))
    else:
        rows.append(HealthRow("PostFlow's data disk", True, "The queue is being saved."))
    known = {"signin", "network", "disk", "account", *(f"watch:{r.id}" for r in snap.roots)}
    for component, health in reported.items():
        if component in known or (health.ok and not health.message):
            continue
        words = " ".join(w for w in (health.message or ("" if health.ok else "Problem."), health.action) if w)
        rows.append(HealthRow(health.label or component, health.ok, words))
    return rows


def metrics_line(summary: dict[str, Any]) -> str:
    """The engine's numbers since it started, in one line for the health tab."""
    delivered, failed = summary["files_delivered"], summary["files_failed"]
    if not delivered and not failed:
        words = "Nothing delivered since PostFlow started."
    else:
        rate = summary["success_rate"]
        words = f"Since PostFlow started: {delivered} delivered ({format_bytes(summary['bytes_delivered'])})"
        words += f", {failed} failed" if failed else ""
        words += f", {rate:.0%} succeeded" if rate is not None else ""
        if summary["mean_upload_seconds"] is not None:
            words += f"; {format_duration(summary['mean_upload_seconds'])} a file on average"
        if summary["mean_bytes_per_second"]:
            words += f" at {format_bytes(int(summary['mean_bytes_per_second']))}/s"
        words += "."
    retries = summary["retries_by_error_class"]
    if retries:
        words += " Retries: " + ", ".join(f"{n} {kind}" for kind, n in retries.items()) + "."
    lag = summary["event_loop_lag_max_seconds"]
    words += f" Sign-in renewed {summary['token_refreshes']}×; the app answered within {lag * 1000:.0f} ms."
    return words
