"""Whether the system hands out a proxy script: a PAC address set in its network settings, or
"discover the proxy automatically" (WPAD).

Python's ``urllib.request.getproxies`` reads the fixed proxies of macOS and Windows, not their
scripts, so this asks each system the way its own tools do: ``scutil --proxy`` on macOS, the
Internet Settings registry key on Windows, GNOME's ``gsettings`` on Linux. WPAD is looked up by
name, as browsers do without DHCP: ``http://wpad.<domain>/wpad.dat`` for each parent domain of
this machine's name. Everything here blocks (a child process, the registry): off the loop.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds for scutil / gsettings; a hung helper must not hold the uploads


@dataclass(frozen=True)
class SystemPac:
    """``url``: the script the system names; ``discover``: the system asks for WPAD."""

    url: str | None = None
    discover: bool = False

    @property
    def wanted(self) -> bool:
        return bool(self.url) or self.discover


def system_pac() -> SystemPac:
    """What this computer's network settings say (nothing where they cannot be read)."""
    try:
        if sys.platform == "darwin":
            return macos_pac(_run(["scutil", "--proxy"]))
        if sys.platform == "win32":
            return windows_pac(_windows_values())
        if shutil.which("gsettings"):
            return gnome_pac(lambda key: _run(["gsettings", "get", "org.gnome.system.proxy", key]))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.info("the system's proxy script setting could not be read: %s", exc)
    return SystemPac()


def macos_pac(scutil_output: str) -> SystemPac:
    """``scutil --proxy`` prints ``ProxyAutoConfigEnable : 1``, ``ProxyAutoConfigURLString :
    http://…`` and ``ProxyAutoDiscoveryEnable : 1`` among the fixed proxies."""
    values = dict(re.findall(r"^\s*(\w+)\s*:\s*(.*?)\s*$", scutil_output, re.MULTILINE))
    url = values.get("ProxyAutoConfigURLString") if values.get("ProxyAutoConfigEnable") == "1" else None
    return SystemPac(url or None, values.get("ProxyAutoDiscoveryEnable") == "1")


def windows_pac(values: dict[str, object]) -> SystemPac:
    """``AutoConfigURL`` (text) names the script; "Automatically detect settings" is bit 0x08 of
    byte 8 of the ``DefaultConnectionSettings`` blob under ``Connections``."""
    url = values.get("AutoConfigURL")
    blob = values.get("DefaultConnectionSettings")
    discover = isinstance(blob, bytes) and len(blob) > 8 and bool(blob[8] & 0x08)
    return SystemPac(url if isinstance(url, str) and url.strip() else None, discover)


def gnome_pac(get: Callable[[str], str]) -> SystemPac:
    """GNOME's proxy ``mode`` is ``'auto'`` for a script; an empty ``autoconfig-url`` means WPAD."""
    if get("mode").strip().strip("'") != "auto":
        return SystemPac()
    url = get("autoconfig-url").strip().strip("'")
    return SystemPac(url, False) if url else SystemPac(None, True)


# Second-level names under which anyone can register a domain (co.uk, com.au, ac.jp…): a WPAD
# lookup stops above them, as it stops above a top-level domain. Not the whole Public Suffix
# List, the shapes that matter: a two-letter country code under one of these labels.
PUBLIC_SECOND_LEVEL = {
    "co", "com", "net", "org", "ac", "edu", "gov", "go", "ne", "or", "gob", "mil", "nic", "ltd", "plc",
    "sch", "nhs", "police", "info", "biz", "nom", "gen", "firm", "ind",
}  # fmt: skip


def wpad_urls(fqdn: str | None = None) -> list[str]:
    """``edit3.post.studio.com`` → ``http://wpad.post.studio.com/wpad.dat``, then
    ``http://wpad.studio.com/wpad.dat``; never a public suffix (``wpad.com``, ``wpad.co.uk`` are
    anyone's: the classic WPAD hijack)."""
    name = (fqdn if fqdn is not None else socket.getfqdn()).strip(".").lower()
    labels = name.split(".")
    urls = []
    for i in range(1, len(labels) - 1):
        domain = labels[i:]
        if len(domain) == 2 and len(domain[1]) == 2 and domain[0] in PUBLIC_SECOND_LEVEL:
            break  # studio.co.uk stops at wpad.studio.co.uk
        urls.append(f"http://wpad.{'.'.join(domain)}/wpad.dat")
    return urls


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    return done.stdout


def _windows_values() -> dict[str, object]:  # pragma: no cover - Windows only
    import winreg

    reg: Any = winreg  # typed for Windows only

    key = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings"
    values: dict[str, object] = {}
    with contextlib.suppress(OSError), reg.OpenKey(reg.HKEY_CURRENT_USER, key) as settings:
        values["AutoConfigURL"] = reg.QueryValueEx(settings, "AutoConfigURL")[0]
    with (
        contextlib.suppress(OSError),
        reg.OpenKey(reg.HKEY_CURRENT_USER, key + r"\Connections") as conn,
    ):
        values["DefaultConnectionSettings"] = reg.QueryValueEx(conn, "DefaultConnectionSettings")[0]
    return values
