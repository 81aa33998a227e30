"""Native notifications through desktop-notifier; the tray balloon only when that fails.

desktop-notifier talks to each platform's own notification centre (UserNotifications on
macOS, WinRT toasts on Windows, the freedesktop D-Bus service on Linux), so a click on a
notification reaches PostFlow. If it cannot (no D-Bus session, an unsigned macOS build), the
rest of the session uses ``QSystemTrayIcon.showMessage``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QSystemTrayIcon

from app.core.events import JobStateChanged, Snapshot
from app.core.jobs import WatchRoot
from app.gui.engine_bridge import EngineBridge
from app.gui.notice_policy import Notice, NoticePolicy, update_notice

log = logging.getLogger(__name__)


class Notifier(QObject):
    def __init__(
        self, bridge: EngineBridge, tray: QSystemTrayIcon, clicked: Callable[[Notice], None],
        *, icon_png: Path | None, enabled: Callable[[], bool],
    ) -> None:  # fmt: skip
        super().__init__()
        self._bridge = bridge
        self._tray = tray
        self._clicked = clicked
        self._enabled = enabled
        self._policy = NoticePolicy()
        self._roots: dict[str, WatchRoot] = {}
        self._native: Any = None
        self._native_failed = False
        self._icon_png = icon_png
        self._balloon: Notice | None = None
        self._closed = False
        self._told_updates: set[str] = set()
        #: told when an update notice was shown: the engine remembers it (once per version)
        self.acknowledge_update: Callable[[str], object] = lambda version: None
        self.sent: list[Notice] = []  # what was shown, newest last (the log and tests read it)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        bridge.job_changed.connect(self._job_changed)
        bridge.snapshot_changed.connect(self._snapshot)

        tray.messageClicked.connect(self._balloon_clicked)

    def expect_signed_out(self) -> None:
        self._policy.expect_signed_out()

    def close(self) -> None:
        """At quit: nothing gathered is sent after the engine is gone."""
        self._timer.stop()
        self._closed = True

    def _job_changed(self, event: JobStateChanged) -> None:
        self._policy.job_changed(event.view, self._roots.get(event.root_id), time.monotonic())
        self._arm()

    def _snapshot(self, snap: Snapshot) -> None:
        self._roots = {r.id: r for r in snap.roots}
        for notice in self._policy.snapshot(snap):
            self._send(notice)
        update = snap.update
        if update is not None and snap.update_unannounced and update.version not in self._told_updates:
            self._told_updates.add(update.version)  # before the engine has it recorded: never twice
            self._send(update_notice(update))
            self.acknowledge_update(update.version)

    def _arm(self) -> None:
        due = self._policy.due_at()
        if due is not None:
            self._timer.start(max(0, int((due - time.monotonic()) * 1000) + 1))

    def _flush(self) -> None:
        for notice in self._policy.flush(time.monotonic()):
            self._send(notice)
        self._arm()

    def _send(self, notice: Notice) -> None:
        if self._closed or not self._enabled():
            return
        log.info("notification: %s: %s", notice.title, notice.message)
        self.sent.append(notice)
        if not self._native_failed:
            self._bridge.run(lambda: self._send_native(notice))
        else:
            self._send_balloon(notice)

    async def _send_native(self, notice: Notice) -> None:
        try:
            if self._native is None:
                from desktop_notifier import DesktopNotifier, Icon

                icon = Icon(path=self._icon_png) if self._icon_png else None
                self._native = DesktopNotifier(app_name="PostFlow", app_icon=icon) if icon else \
                    DesktopNotifier(app_name="PostFlow")  # fmt: skip
            from desktop_notifier import Urgency

            dispatched: list[bool] = []
            await self._native.send(
                title=notice.title, message=notice.message,
                urgency=Urgency.Critical if notice.problem else Urgency.Normal,
                on_clicked=lambda: self._click(notice), on_dispatched=lambda: dispatched.append(True),
            )  # fmt: skip
            if not dispatched:  # desktop-notifier logs its failures instead of raising them
                raise RuntimeError("the notification service did not take the notification")
        except Exception as exc:  # no notification service: the tray's balloon instead
            log.warning("desktop notifications unavailable (%s: %s); using the tray's messages",
                        type(exc).__name__, exc)  # fmt: skip
            self._native_failed = True
            self._send_balloon(notice)

    def _send_balloon(self, notice: Notice) -> None:
        self._balloon = notice
        kind = (
            QSystemTrayIcon.MessageIcon.Warning if notice.problem else QSystemTrayIcon.MessageIcon.Information
        )
        self._tray.showMessage(notice.title, notice.message, kind, 8000)

    def _click(self, notice: Notice) -> None:
        """A click on a notification still on screen after its session ended ("Try the
        sandbox" restarts it): nothing of the old session is touched."""
        if not self._closed:
            self._clicked(notice)

    def _balloon_clicked(self) -> None:
        if self._balloon is not None:
            self._click(self._balloon)
