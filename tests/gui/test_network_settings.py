"""Settings → Network on a real engine: the way out chosen, checked and saved like every other
setting, applied at once, and said in words; the proxy login kept in the keychain only."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_waits import until
from running_tray import tray_app
from support_pac_server import ScriptServer

from app.auth.proxy_config import PROXY_KEY
from app.gui.network_settings import MANUAL, SCRIPT, SYSTEM
from app.gui.settings_dialog import SettingsDialog


@pytest.fixture
def pac_server() -> Iterator[ScriptServer]:
    server = ScriptServer()
    yield server
    server.close()


def saved_network(app: Any) -> dict[str, Any]:
    path = app.engine.settings.paths.config_file
    return tomllib.loads(path.read_text()).get("network", {}) if path.exists() else {}


async def test_the_way_out_is_chosen_checked_saved_and_said(
    sandbox: Any, watch_dir: Path, tray_env: None, pac_server: ScriptServer, test_keyring: Any
) -> None:
    pac_server.serve("return shExpMatch(host, '*.frame.io') ? 'PROXY 10.9.9.9:3128' : 'DIRECT';")
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        assert isinstance(dialog, SettingsDialog)
        network = dialog.network
        assert network.mode() == SYSTEM and not network.pac_url.isEnabled() and not network.proxy.isEnabled()
        await until(
            lambda: "no proxy configured" in network.way.text(), f"the way said ({network.way.text()})"
        )

        network.modes[MANUAL].setChecked(True)  # chosen, left blank: said, not saved as "no proxy"
        dialog.status.clear()
        dialog.apply()
        await until(lambda: not dialog.errors["proxy_url"].isHidden(), "the missing address explained")
        assert "a proxy address such as http://proxy:3128" in dialog.errors["proxy_url"].text()

        network.modes[SCRIPT].setChecked(True)
        assert network.pac_url.isEnabled()
        network.pac_url.setText("ftp://wpad/proxy.pac")
        dialog.status.clear()
        dialog.apply()
        await until(lambda: not dialog.errors["pac_url"].isHidden(), "the bad address explained")
        assert "proxy script address" in dialog.errors["pac_url"].text()
        assert app.engine.settings.pac_url == "" and saved_network(app) == {}

        network.pac_url.setText(pac_server.url)
        dialog.status.clear()
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", f"saved ({dialog.status.text()})")
        assert saved_network(app) == {"pac_url": pac_server.url}
        assert await app.engine.proxy.explain("https://api.frame.io/") == (
            f"api.frame.io: through http://10.9.9.9:3128 (the proxy script in settings {pac_server.url})"
        )  # in force at once: no restart
        await until(
            lambda: f"proxy script in settings {pac_server.url}" in network.way.text(), "the way said"
        )
        assert network.way.text().startswith("Direct")  # the sandbox is on this machine

        network.set_login("jane", "")
        assert "password too" in network.login_status.text()
        network.set_login("jane", "s3cret")
        await until(lambda: network.login_status.text() == "Saved in the keychain.", "the login saved")
        assert app.engine.settings.paths.config_file.read_text().count("s3cret") == 0
        assert "jane:s3cret" in test_keyring.entries.values(), "kept in the keychain"
        assert network.password.text() == "" and network.forget_login.isEnabled()

        network.modes[MANUAL].setChecked(True)
        network.proxy.setText("proxy.studio.lan:3128")
        dialog.status.clear()
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", f"saved ({dialog.status.text()})")
        assert saved_network(app) == {"pac_url": "", "proxy": "http://proxy.studio.lan:3128"}
        manual = "Through http://proxy.studio.lan:3128 (the proxy in settings)"
        await until(lambda: manual in network.way.text(), f"the way said ({network.way.text()})")
        assert "s3cret" not in network.way.text() and "jane" not in network.way.text()

        network.set_login("", "")
        await until(lambda: network.login_status.text() == "Forgotten.", "the login forgotten")
        assert await app.engine.proxy.login_user() == ""
        network.modes[SYSTEM].setChecked(True)
        dialog.status.clear()
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", "saved")
        assert saved_network(app) == {"pac_url": "", "proxy": ""} and network.mode() == SYSTEM
        assert PROXY_KEY  # the keychain entry's name, as `postflow proxy-login` uses it
