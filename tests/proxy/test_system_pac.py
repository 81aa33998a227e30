"""The system's proxy script setting, read at each system's boundary: what ``scutil --proxy``
prints on macOS, the Internet Settings registry values on Windows, GNOME's gsettings; and the
WPAD addresses tried for a machine's name."""

from __future__ import annotations

from app.proxy.system_pac import SystemPac, gnome_pac, macos_pac, windows_pac, wpad_urls

SCUTIL_PAC = """<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
  }
  FTPPassive : 1
  HTTPEnable : 0
  HTTPSEnable : 0
  ProxyAutoConfigEnable : 1
  ProxyAutoConfigURLString : http://wpad.studio.lan/proxy.pac
  ProxyAutoDiscoveryEnable : 0
}
"""


def test_macos_script_and_discovery() -> None:
    assert macos_pac(SCUTIL_PAC) == SystemPac("http://wpad.studio.lan/proxy.pac", False)
    off = SCUTIL_PAC.replace("ProxyAutoConfigEnable : 1", "ProxyAutoConfigEnable : 0")
    assert macos_pac(off) == SystemPac(None, False)  # an address left behind, switched off
    discover = off.replace("ProxyAutoDiscoveryEnable : 0", "ProxyAutoDiscoveryEnable : 1")
    assert macos_pac(discover) == SystemPac(None, True)
    assert macos_pac("") == SystemPac() and not SystemPac().wanted


def test_windows_script_and_automatic_detection() -> None:
    blob = bytearray(b"\x46\x00\x00\x00\x10\x00\x00\x00\x01" + b"\x00" * 20)  # flags 0x01: direct only
    assert windows_pac({"DefaultConnectionSettings": bytes(blob)}) == SystemPac(None, False)
    blob[8] |= 0x08  # "Automatically detect settings"
    assert windows_pac({"DefaultConnectionSettings": bytes(blob)}) == SystemPac(None, True)
    assert windows_pac({"AutoConfigURL": "http://pac.corp/proxy.pac"}) == SystemPac(
        "http://pac.corp/proxy.pac"
    )
    assert windows_pac({"AutoConfigURL": "  ", "DefaultConnectionSettings": b"short"}) == SystemPac()


def test_gnome_automatic_mode() -> None:
    values = {"mode": "'auto'", "autoconfig-url": "'http://pac.lan/p.pac'"}
    assert gnome_pac(lambda key: values[key] + "\n") == SystemPac("http://pac.lan/p.pac")
    values["autoconfig-url"] = "''"
    assert gnome_pac(lambda key: values[key]) == SystemPac(None, True)  # auto, no address: WPAD
    values["mode"] = "'manual'"
    assert gnome_pac(lambda key: values[key]) == SystemPac()


def test_wpad_is_looked_up_in_each_parent_domain_but_never_a_top_level_one() -> None:
    assert wpad_urls("edit3.post.studio.com") == [
        "http://wpad.post.studio.com/wpad.dat",
        "http://wpad.studio.com/wpad.dat",
    ]
    assert wpad_urls("laptop.local.") == []  # wpad.local would be anyone's
    assert wpad_urls("edit3.post.studio.co.uk") == [
        "http://wpad.post.studio.co.uk/wpad.dat",
        "http://wpad.studio.co.uk/wpad.dat",
    ]  # never wpad.co.uk: anyone can register under co.uk
    assert wpad_urls("bay2.studio.com.au") == ["http://wpad.studio.com.au/wpad.dat"]
    assert wpad_urls("laptop") == []
