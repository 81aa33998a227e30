"""The tray icon's looks, on their own: the icons load them at start-up, before the engine's
events (which ``tray_status`` reads) are imported."""

from __future__ import annotations

from enum import Enum


class TrayLook(Enum):
    """One icon each. Order of precedence: what needs the user first, then what is moving."""

    ATTENTION = "attention"  # a failure, signed out, another account, a folder or disk problem
    OFFLINE = "offline"  # Frame.io cannot be reached: nothing to do but wait
    PAUSED = "paused"
    UPLOADING = "uploading"
    IDLE = "idle"
