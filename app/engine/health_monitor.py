"""Every health check in one place, each with its state, a plain message, what to do about it
and when it last changed.

Parts of the engine report problems where they meet them (a watch folder gone, our disk full,
Frame.io not answering an upload). Nothing on the upload path meets some problems until it is
too late: a sign-in about to lapse, a deleted Discord webhook, a disk filling up with logs, a
clock that presigned URLs will refuse. ``HealthProbes`` looks for those on a schedule and on
demand. The monitor keeps the latest word of each, with the time it last changed, so the
window, ``postflow doctor`` and the control endpoint all show the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from app.core.events import EventBus, Health, HealthChanged
from app.core.jobs import WatchRoot

LABELS = {
    "signin": "Adobe sign-in",
    "account": "Frame.io account",
    "network": "Connection to Frame.io",
    "clock": "Computer clock",
    "disk": "PostFlow's data disk",
    "disk_space": "Free disk space",
    "discord": "Discord webhook",
    "tunnel": "Pull-mode tunnel",
}
ACTIONS = {
    "signin": "Choose Sign in with Adobe in the tray menu, or run `postflow login`.",
    "account": "Confirm the destination in the tray menu, or run `postflow confirm-account`.",
    "network": "Check the internet connection: uploads resume by themselves.",
    "clock": "Set the date and time to update automatically (System Settings → Date & Time).",
    "disk": "Free some space on that disk: PostFlow goes on by itself.",
    "disk_space": "Free some space, or lower health.min_free_mb in the settings.",
    "discord": "Paste a new webhook address in Settings → Discord (Server Settings → Integrations).",
    "watch": "Mount the filespace (or reconnect the drive); nothing is lost meanwhile.",
}


def label_for(component: str, roots: dict[str, WatchRoot]) -> str:
    if component.startswith("watch:"):
        root = roots.get(component.removeprefix("watch:"))
        return f"Watch folder {root.path}" if root else "Watch folder"
    return LABELS.get(component, component)


def action_for(component: str) -> str:
    return ACTIONS["watch" if component.startswith("watch:") else component] if _known(component) else ""


def _known(component: str) -> bool:
    return component.startswith("watch:") or component in ACTIONS


class HealthMonitor:
    """Records every ``HealthChanged`` (whoever published it) with the time it changed."""

    def __init__(self, bus: EventBus, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._clock = clock
        self._items: dict[str, Health] = {}
        self._started = clock()

    def record(self, event: HealthChanged) -> None:
        before = self._items.get(event.component)
        same = before is not None and (before.ok, before.message) == (event.ok, event.message)
        since = before.since if same and before is not None else self._clock()
        action = event.action
        if action is None and not event.ok:
            action = action_for(event.component)
        health = Health(event.component, event.ok, event.message, action or None, "", since)
        self._items[event.component] = health

    def set(self, component: str, problem: str | None, ok_message: str | None = None,
            action: str | None = None) -> None:  # fmt: skip
        """Publish a change (only a change: the same word twice says nothing new)."""
        message = problem if problem is not None else ok_message
        before = self._items.get(component)
        if before is not None and (before.ok, before.message) == (problem is None, message):
            return
        self._bus.publish(HealthChanged(component, problem is None, message, action))  # recorded by record()

    def forget(self, component: str) -> None:
        self._items.pop(component, None)

    def get(self, component: str) -> Health | None:
        return self._items.get(component)

    def items(self, roots: Iterable[WatchRoot] = ()) -> tuple[Health, ...]:
        """Every check, labelled; a watched folder no scan has judged yet counts as watched."""
        by_id = {r.id: r for r in roots}
        items = dict(self._items)
        for root_id in by_id:
            component = f"watch:{root_id}"
            items.setdefault(component, Health(component, True, None, None, "", self._started))
        return tuple(
            Health(h.component, h.ok, h.message, h.action, label_for(h.component, by_id), h.since)
            for h in sorted(items.values(), key=_order)
        )

    @property
    def red(self) -> bool:
        return any(not h.ok for h in self._items.values())


_ORDER = ("signin", "account", "network", "clock", "watch:", "disk", "disk_space", "discord", "tunnel")


def _order(h: Health) -> tuple[int, str]:
    for i, prefix in enumerate(_ORDER):
        if h.component == prefix or (prefix.endswith(":") and h.component.startswith(prefix)):
            return i, h.component
    return len(_ORDER), h.component
