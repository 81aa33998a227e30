"""Settings (validated in place, never saved when wrong) and the first run, on a real engine;
the single-instance hand-over and the notifications' fallback."""

from __future__ import annotations

import asyncio
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from gui_waits import until
from running_tray import tray_app

from app.core.jobs import JobState
from app.gui.destination_picker import Destination, DestinationPicker
from app.gui.settings_dialog import SettingsDialog

DEMO = Destination("", "", "Demo Project", "")


def config(app: Any) -> dict[str, Any]:
    path = app.engine.settings.paths.config_file
    return tomllib.loads(path.read_text()) if path.exists() else {}


async def test_settings_apply_live_and_are_saved(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        assert isinstance(dialog, SettingsDialog)
        dialog.concurrency.setValue(5)
        dialog.bandwidth.setValue(2.5)
        dialog.extensions.setText("mov, MXF")
        dialog.notifications.setChecked(False)
        dialog.quiet.setValue(5)
        dialog.check_media.setChecked(False)
        dialog.mirror_moves.setChecked(True)
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", "saved")
        s = app.engine.settings
        assert (s.max_concurrent_files, s.bandwidth_limit, s.extensions, s.notifications) == (
            5, 2_500_000, (".mov", ".mxf"), False,
        )  # fmt: skip
        assert (s.quiet_seconds, s.check_media, s.mirror_moves) == (5.0, False, True)
        assert app.engine.scheduler.max_concurrent == 5  # applied at once, no restart
        saved = config(app)
        assert saved["upload"]["max_concurrent_files"] == 5 and saved["notifications"]["enabled"] is False
        assert saved["watch"]["quiet_seconds"] == 5.0 and saved["watch"]["mirror_moves"] is True


async def test_naming_rules_are_tested_live_and_saved_per_folder(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        naming = app.settings_dialog.naming
        assert naming.selected() is not None and naming.rules.toPlainText() == "versioned"
        assert "SHOW_SC010_v001.mov: version v001; stacks with other versions of “SHOW_SC010.mov”" in (
            naming.reading.text()
        )
        naming.rules.setPlainText("(?P<shot>SC\\d+")  # typed half-way: said at once, nothing read
        assert "not a valid regular expression" in naming.error.text() and naming.reading.text() == ""
        naming.rules.setPlainText("shot_task\nversioned")
        assert (
            "SHOW_SQ01_SH020_comp_v003.exr: show SHOW, sequence SQ01, shot SH020, task comp, version v003"
            in (naming.reading.text())
        )
        assert "reference.mov: no rule matches" in naming.reading.text()
        naming.route_by.setText("shoot")
        naming.save()
        await until(lambda: "Not saved" in naming.error.text(), "the bad field refused")
        assert "route_by = 'shoot' is invalid" in naming.error.text()
        assert app.engine.roots[0].naming == ("versioned",)  # nothing changed
        naming.route_by.setText("shot")
        naming.save()
        await until(lambda: app.engine.roots[0].route_by == "shot", "saved")
        assert app.engine.roots[0].naming == ("shot_task", "versioned")
        saved = config(app)["watch"]["roots"][0]
        assert saved["naming"] == ["shot_task", "versioned"] and saved["route_by"] == "shot"


async def test_invalid_input_is_explained_beside_its_field_and_nothing_is_saved(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        assert dialog is not None
        before = config(app)
        dialog.concurrency.setValue(7)  # a good value beside a bad one: not saved either
        dialog.extensions.setText("*.mov, prores 422")
        dialog.apply()
        await asyncio.sleep(0)
        error = dialog.errors["extensions"]
        assert not error.isHidden() and "file extensions such as .mov" in error.text()
        assert "*.mov, prores 422" in error.text()
        assert "Nothing was saved" in dialog.status.text()
        assert app.engine.settings.max_concurrent_files != 7 and config(app) == before
        dialog.extensions.setText(".mov")
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", "saved once corrected")
        assert error.isHidden()


async def test_adding_a_folder_asks_about_existing_files_and_refuses_bad_ones(
    sandbox: Any, watch_dir: Path, tray_env: None, tmp_path: Path
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        assert dialog is not None
        second = tmp_path / "second"
        second.mkdir()
        (second / "old.mov").write_bytes(os.urandom(1024))
        dialog.choose_folder = lambda: str(second)
        dialog.choose_destination = lambda: DEMO
        dialog.ask_upload_existing = lambda folder: False  # "Only new files"
        dialog.add_folder()
        await until(lambda: len(app.engine.roots) == 2, "the second folder watched")
        assert dialog.roots_list.count() == 2 and dialog.folder_error.text() == ""
        (second / "new.mov").write_bytes(os.urandom(1024))
        await until(
            lambda: any(f["name"] == "new.mov" for f in sandbox.files()), "the new file delivered", 60
        )
        assert all(f["name"] != "old.mov" for f in sandbox.files())

        # Inside a watched folder: refused, said in place, nothing saved.
        inner = watch_dir / "inner"
        inner.mkdir()
        dialog.choose_folder = lambda: str(inner)
        dialog.add_folder()
        await until(lambda: dialog.folder_error.text(), "the refusal shown")
        assert "inside" in dialog.folder_error.text() or "overlap" in dialog.folder_error.text().lower()
        assert len(app.engine.roots) == 2 and len(config(app)["watch"]["roots"]) == 2

        # A project that does not exist: refused too.
        dialog.choose_folder = lambda: str(tmp_path / "third")
        (tmp_path / "third").mkdir()
        dialog.choose_destination = lambda: Destination("", "", "No Such Project", "")
        dialog.folder_error.setText("")
        dialog.add_folder()
        await until(lambda: dialog.folder_error.text(), "the refusal shown")
        assert "No Such Project" in dialog.folder_error.text()

        # Stop watching the second one.
        dialog.roots_list.setCurrentRow(next(
            i for i in range(dialog.roots_list.count()) if str(second) in dialog.roots_list.item(i).text()
        ))  # fmt: skip
        dialog.remove_folder()
        await until(lambda: len(app.engine.roots) == 1, "the folder no longer watched")


async def test_destination_picker_browses_the_account(sandbox: Any, watch_dir: Path, tray_env: None) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        picker = DestinationPicker(app.engine.browser, app.bridge)
        picker.show()
        tree = picker.tree

        def workspaces_loaded() -> bool:
            account = tree.topLevelItem(0)
            return account is not None and account.childCount() > 0 and account.child(0).text(0) != "Loading…"

        await until(workspaces_loaded, "the account's workspaces")
        workspace = tree.topLevelItem(0).child(0)
        workspace.setExpanded(True)
        await until(lambda: workspace.childCount() and workspace.child(0).text(0) != "Loading…", "projects")
        project = next(workspace.child(i) for i in range(workspace.childCount())
                       if workspace.child(i).text(0).startswith("Demo Project"))  # fmt: skip
        tree.setCurrentItem(project)
        assert picker.buttons.buttons()[0].isEnabled()
        picker._accept()
        assert (
            picker.chosen is not None
            and picker.chosen.project == "Demo Project"
            and picker.chosen.folder == ""
        )
        picker.deleteLater()


async def test_first_run_sign_in_pick_folder_pick_destination_done(
    sandbox: Any, watch_dir: Path, tray_env: None, tmp_path: Path
) -> None:
    async with tray_app(sandbox, watch_dir, first_run=True) as app:
        wizard = app.first_run
        assert wizard is not None and wizard.isVisible()
        await until(lambda: wizard.welcome_next.isEnabled(), "signed in (the keychain has tokens)")
        wizard.welcome_next.click()
        folder = tmp_path / "Renders2"
        wizard.folder_edit.setText(str(tmp_path / "missing"))
        wizard.pages.currentWidget()  # folder page
        wizard._folder_next()  # the disk is asked in a worker thread
        await until(lambda: "not a folder that exists" in wizard.folder_error.text(), "the refusal")
        assert wizard.pages.currentIndex() == 1
        folder.mkdir()
        wizard.folder_edit.setText(str(folder))
        wizard._folder_next()
        await until(lambda: wizard.pages.currentIndex() == 2, "the destination page")
        wizard.choose_destination = lambda: Destination("", "", "Demo Project", "Dailies")
        wizard._pick()
        wizard.finish_button.click()
        await until(lambda: wizard.pages.currentIndex() == 3, "the done page")
        assert "Demo Project / Dailies" in wizard.done_label.text()
        (folder / "day1.mov").write_bytes(os.urandom(2048))
        await until(lambda: any(f["name"] == "day1.mov" for f in sandbox.files()), "delivered", 60)


async def test_first_run_try_the_sandbox_shows_a_file_going_up(
    qapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No account at all: the demo sandbox inside the app, a demo folder, a sample upload."""
    from app.composition import running_app
    from app.core.settings import load_settings
    from app.gui.log_view import QtLogHandler
    from app.gui.tray_app import TrayApp

    monkeypatch.setenv("POSTFLOW_TRAY_WAIT", "3600")
    settings = load_settings()  # nothing configured: the built-in sandbox
    assert settings.sandbox and not settings.sandbox_url
    async with running_app(settings) as session:
        app = TrayApp(session, QtLogHandler(), first_run=True)
        try:
            wizard = app.first_run
            assert wizard is not None
            await until(lambda: wizard.welcome_next.isEnabled(), "the demo user signed in")
            wizard.sandbox_button.click()
            await until(lambda: wizard.pages.currentIndex() == 3, "the done page")
            await until(lambda: app.engine.roots, "the demo folder watched")
            history = await until(lambda: _delivered(app), "the sample delivered", 60)
            assert history == ["Welcome to PostFlow.mp4"]
            assert "Demo folder" in wizard.done_label.text()
        finally:
            await app.close()


async def _delivered(app: Any) -> list[str]:
    return [j.rel_path for j in await app.engine.jobs() if j.state is JobState.DONE]


async def test_a_second_launch_brings_the_first_forward(qapp: Any, tmp_path: Path) -> None:
    from app.gui.single_instance import InstanceServer, ask_running_instance

    assert not ask_running_instance(tmp_path)  # nobody there yet
    server = InstanceServer(tmp_path)
    shown: list[bool] = []
    server.show_requested.connect(lambda: shown.append(True))
    try:
        assert ask_running_instance(tmp_path)  # connects and writes; the server reads on the loop
        await until(lambda: shown, "the running one asked to show itself")
        assert not ask_running_instance(tmp_path / "other")  # another data folder: another instance
    finally:
        server.close()


async def test_notifications_fall_back_to_the_tray_balloon(
    sandbox: Any, watch_dir: Path, tray_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # no notification service
    async with tray_app(sandbox, watch_dir) as app:
        balloons: list[str] = []
        monkeypatch.setattr(app.tray.icon, "showMessage", lambda title, *a: balloons.append(title))
        drop = watch_dir / "A002.mov"
        drop.write_bytes(os.urandom(4096))
        await until(lambda: balloons, "the delivery told in the tray's balloon", 60)
        assert balloons == ["Uploaded to Demo Project"]
        assert [n.title for n in app.notifier.sent] == ["Uploaded to Demo Project"]


async def test_a_folder_switched_to_pull_starts_the_tunnel_and_the_health_tab_tests_it(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        dialog.roots_list.setCurrentRow(0)
        assert dialog.mode_box.currentData() == "push" and "Cloudflare" in dialog.mode_note.text()
        dialog.mode_box.setCurrentIndex(dialog.mode_box.findData("pull"))
        dialog.mode_box.activated.emit(dialog.mode_box.currentIndex())
        await until(lambda: app.engine.roots[0].upload_mode == "pull", "pull mode saved")
        assert config(app)["watch"]["roots"][0]["upload_mode"] == "pull"
        assert "(pull)" in dialog.roots_list.item(0).text()
        await until(lambda: app.engine.pull.ready_now(), "the tunnel up")
        app.open_window()
        window = app.window
        await until(lambda: not window.tunnel_button.isHidden(), "the Test tunnel button shown")
        window.tunnel_button.click()
        await until(lambda: "The tunnel works" in window.diagnostics_status.text(), "the tunnel tested", 30)
        (watch_dir / "pulled.mov").write_bytes(os.urandom(80_000))

        def pulled() -> bool:
            return any(f["source"] == "remote" and f["status"] != "created" for f in sandbox.files())

        await until(pulled, "a file pulled by Frame.io", 60)
        dialog.mode_box.setCurrentIndex(dialog.mode_box.findData("push"))
        dialog.mode_box.activated.emit(dialog.mode_box.currentIndex())
        await until(lambda: not app.engine.pull.running, "the tunnel stopped when no folder pulls")
        assert "upload_mode" not in config(app)["watch"]["roots"][0]
        dialog.priority_box.setValue(5)
        dialog.priority_box.editingFinished.emit()
        await until(lambda: app.engine.roots[0].priority == 5, "the folder's priority saved")
        assert config(app)["watch"]["roots"][0]["priority"] == 5 and dialog.priority_box.value() == 5


async def test_a_bandwidth_schedule_is_checked_saved_and_applied_live(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        dialog.schedule.setPlainText("Mon-Fri 09:00-19:00 fast")
        dialog.apply()
        await until(lambda: not dialog.errors["bandwidth_schedule"].isHidden(), "the bad rule explained")
        assert "not understood" in dialog.errors["bandwidth_schedule"].text()
        assert app.engine.settings.bandwidth_schedule == ()
        dialog.schedule.setPlainText("Mon-Sun 00:00-24:00 20MB/s\nSat,Sun 10:00-11:00 1MB/s")
        dialog.apply()
        await until(lambda: dialog.status.text() == "Saved.", f"saved ({dialog.status.text()})")
        assert app.engine.settings.bandwidth_schedule == (
            "Mon-Sun 00:00-24:00 20MB/s",
            "Sat,Sun 10:00-11:00 1MB/s",
        )
        assert config(app)["upload"]["bandwidth_schedule"] == list(app.engine.settings.bandwidth_schedule)
        assert app.engine._limiter.rate == 20_000_000  # in force at once, whatever the time now
        snapshot = await app.engine.snapshot()
        assert (
            snapshot.bandwidth_note is not None
            and "Limited to 20 MB/s by the schedule" in snapshot.bandwidth_note
        )
        await until(lambda: "Limited to 20 MB/s" in app.tray.icon.toolTip(), "the tooltip says so")


async def test_a_newer_release_is_in_the_menu_and_told_once(
    sandbox: Any, watch_dir: Path, tray_env: None
) -> None:
    import httpx

    feed = {"version": "99.0", "notes": "Pull mode everywhere.", "download_url": "https://example.com/PostFlow.dmg",
            "sha256": "cd" * 32}  # fmt: skip
    httpx.post(f"{sandbox.url}/_sandbox/releases/feed.json", json=feed)
    async with tray_app(sandbox, watch_dir) as app:
        app.engine.updates.feed_url = f"{sandbox.url}/_sandbox/releases/feed.json"
        await app.engine.updates.check_now()
        await app.engine.updates.check_now()  # the daily check again: the menu keeps it, no second notice
        app.bridge.set_snapshot(await app.engine.snapshot())
        app.tray.refresh_menu()
        assert (
            app.tray.update_action.isVisible()
            and app.tray.update_action.text() == "PostFlow 99.0 is available…"
        )
        await until(lambda: any(n.title == "PostFlow 99.0 is available" for n in app.notifier.sent), "told")
        await until(lambda: app.engine.updates.announced == "99.0", "remembered as told")
        app.bridge.set_snapshot(await app.engine.snapshot())  # later snapshots: no second notice
        assert [n.title for n in app.notifier.sent].count("PostFlow 99.0 is available") == 1
        opened: list[str] = []
        app._open_download = opened.append  # type: ignore[method-assign]
        app.tray._actions.open_download = opened.append
        app.tray.update_action.trigger()
        assert opened == ["https://example.com/PostFlow.dmg"]


async def test_start_at_login_shows_what_is_really_registered_and_repairs_a_stale_entry(
    sandbox: Any, watch_dir: Path, tray_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.desktop.login_item import LoginItem

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    LoginItem(["/old/place/postflow"], platform="linux").set_enabled(True)  # then the app was moved
    async with tray_app(sandbox, watch_dir) as app:
        app.open_settings()
        dialog = app.settings_dialog
        dialog.login_item = LoginItem(["/new/place/postflow"], platform="linux")
        dialog.load()
        assert dialog.start_at_login.isChecked()
        assert "but for /old/place/postflow, not this PostFlow" in dialog.login_status.text()
        dialog.apply()
        assert dialog.login_item.points_here()
        assert "starts this PostFlow (/new/place/postflow)" in dialog.login_status.text()
        dialog.start_at_login.setChecked(False)
        dialog.apply()
        assert not (tmp_path / "xdg" / "autostart" / "postflow.desktop").exists()
        assert dialog.login_status.text().startswith("Not registered")
        await until(lambda: dialog.status.text() in ("Saved.", "Nothing to change."), "applied")
