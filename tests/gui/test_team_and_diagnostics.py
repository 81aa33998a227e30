"""Settings → Discord (the webhook saved to the keychain, events and summary time applied live,
Send test message), and the window's Copy diagnostics and numbers, on a real engine."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path
from typing import Any

import httpx
from gui_waits import until
from PySide6.QtWidgets import QApplication
from running_tray import tray_app

WEBHOOK = "/discord/api/webhooks/100000000000000051/gui-token-1234567890"


async def test_discord_settings_save_test_and_explain(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        assert dialog is not None and dialog.discord is not None
        tab = dialog.discord
        assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())][-1] == "&Discord"
        assert not tab.test_button.isEnabled() and "No webhook" in tab.webhook_status.text()

        tab.address.setText("https://example.com/not-a-webhook")
        tab.save_address.click()
        await until(lambda: "not a Discord webhook address" in tab.webhook_status.text(), "refused")

        url = sandbox.url + WEBHOOK
        tab.address.setText(url)
        tab.save_address.click()
        await until(lambda: tab.webhook_status.text() == "Saved in the keychain.", "saved")
        assert tab.address.text() == "" and tab.test_button.isEnabled()
        tab.save_address.click()  # Save again with the (now empty) field: nothing is erased
        assert tab.webhook_status.text() == "Paste the webhook address first."
        assert app.session.discord.configured
        tab.test_button.click()
        await until(lambda: "Test message posted" in tab.webhook_status.text(), "test posted")
        posted = sandbox.control("/_sandbox/discord/messages")["messages"]
        assert [m["payload"]["embeds"][0]["title"] for m in posted] == ["PostFlow test message"]

        tab.events["uploaded"].setChecked(True)
        tab.events["summary"].setChecked(False)
        tab.summary_time.setText("25:00")
        dialog.apply()
        await until(lambda: not dialog.errors["discord_summary_time"].isHidden(), "the time refused")
        assert "Nothing was saved" in dialog.status.text()
        tab.summary_time.setText("07:30")
        tab.machine.setText("Edit Bay 2")
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", "saved")
        s = app.engine.settings
        assert s.discord_summary_time == "07:30" and s.machine_name == "Edit Bay 2"
        assert set(s.discord_events) == {"ready", "uploaded", "failed", "signin"}
        saved = app.engine.settings.paths.config_file.read_text()
        assert tomllib.loads(saved)["discord"]["summary_time"] == "07:30"
        assert "gui-token" not in saved and "webhooks" not in saved  # the address stays in the keychain

        httpx.delete(url).raise_for_status()  # deleted in Discord's settings
        tab.test_button.click()
        await until(lambda: "no longer accepts this webhook" in tab.webhook_status.text(), "said")
        assert tab.webhook_status.styleSheet()  # in red
        health = app.engine.health_monitor.get("discord")
        assert health is not None and not health.ok


async def test_copy_diagnostics_and_the_numbers(
    sandbox: Any, watch_dir: Path, tray_env: None, tmp_path: Path
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        await app.session.discord.set_webhook(sandbox.url + WEBHOOK)
        (watch_dir / "counted.mov").write_bytes(b"c" * 30_000)
        window = app.window
        await until(lambda: "1 delivered" in window.metrics_label.text(), "the numbers")
        assert "Since PostFlow started: 1 delivered (30 KB)" in window.metrics_label.text()

        target = tmp_path / "support" / "diag.zip"
        window.diagnostics_target = lambda: target  # type: ignore[method-assign]
        window.diagnostics_button.click()
        await until(lambda: "Diagnostics saved to" in window.diagnostics_status.text(), "written")
        assert QApplication.clipboard().text() == str(target)
        with zipfile.ZipFile(target) as zf:
            text = "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
        assert "counted.mov" in text and "gui-token" not in text
        tokens = app.session.connections.provider.tokens
        assert tokens is not None and tokens.access_token not in text
