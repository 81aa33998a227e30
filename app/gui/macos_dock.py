"""macOS: PostFlow lives in the menu bar only, with no Dock icon and no app menu.

A bundle says so with ``LSUIElement`` in its Info.plist (the installer's job); run from a
checkout there is no bundle, so the same "accessory" activation policy is set at start-up
through the Objective-C runtime (ctypes: no PyObjC dependency for one call).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)
ACCESSORY = 1  # NSApplicationActivationPolicyAccessory


def hide_dock_icon() -> bool:
    """True if the policy was set (always False off macOS)."""
    if sys.platform != "darwin":
        return False
    try:
        objc = ctypes.cdll.LoadLibrary(ctypes.util.find_library("objc") or "libobjc.dylib")
        ctypes.cdll.LoadLibrary("/System/Library/Frameworks/AppKit.framework/AppKit")
        objc.objc_getClass.restype = ctypes.c_void_p
        objc.sel_registerName.restype = ctypes.c_void_p
        send = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(("objc_msgSend", objc))
        send_long = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long)(
            ("objc_msgSend", objc)
        )
        app = send(objc.objc_getClass(b"NSApplication"), objc.sel_registerName(b"sharedApplication"))
        return bool(send_long(app, objc.sel_registerName(b"setActivationPolicy:"), ACCESSORY))
    except (OSError, AttributeError) as exc:  # an unusual Python build: a Dock icon, nothing worse
        log.info("could not hide the Dock icon: %s", exc)
        return False
