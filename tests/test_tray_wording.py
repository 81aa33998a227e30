"""What the tray, the health panel and the notifications say, from plain engine values (no Qt)."""

from __future__ import annotations

import plistlib
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.events import AuthState, Health, Snapshot
from app.core.jobs import ErrorInfo, Job, JobState, JobView, WatchRoot
from app.core.units import format_bytes, format_duration
from app.desktop.login_item import LoginItem
from app.engine.scheduler import TOUCHED_NOTE
from app.gui.health_rows import health_rows, metrics_line
from app.gui.notice_policy import GATHER_AT_MOST, GATHER_SECONDS, ClickTarget, NoticePolicy
from app.gui.tray_status import TrayLook, look_of, status_line, tooltip

ROOT = WatchRoot("r1", "/Volumes/fs/Renders", "Project X")


def snap(**changes: Any) -> Snapshot:
    base = Snapshot(
        counts={s.value: 0 for s in JobState}, bytes_left=0, bytes_total=0, bytes_per_second=0.0,
        eta_seconds=None, uploading=0, settling=0, paused=False, waiting_for_sign_in=False,
        account_problem=None, auth=AuthState.SIGNED_IN, user_email="ed@studio.test", account_id="a1",
        health=(), roots=(ROOT,),
    )  # fmt: skip
    counts = {**base.counts, **changes.pop("counts", {})}
    return replace(base, counts=counts, **changes)


def test_tooltip_reads_files_percent_speed_and_time_left() -> None:
    s = snap(counts={"uploading": 2, "pending": 1}, uploading=2, bytes_total=1000 * 10**6,
             bytes_left=580 * 10**6, bytes_per_second=12 * 10**6, eta_seconds=240)  # fmt: skip
    assert status_line(s) == "3 files · 42 % · 12 MB/s · 4 min left"
    assert tooltip(s) == "PostFlow\n3 files · 42 % · 12 MB/s · 4 min left"
    assert look_of(s) is TrayLook.UPLOADING


def test_what_needs_the_user_wins_over_everything_else() -> None:
    busy = {"counts": {"uploading": 1}, "uploading": 1, "paused": True}
    assert look_of(snap(auth=AuthState.SIGNED_OUT, **busy)) is TrayLook.ATTENTION
    assert look_of(snap(counts={"failed": 2})) is TrayLook.ATTENTION
    folder = Health("watch:r1", False, "/Volumes/fs/Renders cannot be found: is the filespace mounted?")
    assert look_of(snap(health=(folder,))) is TrayLook.ATTENTION
    offline = Health("network", False, "Frame.io cannot be reached (ConnectError).")
    assert look_of(snap(health=(offline,), **busy)) is TrayLook.OFFLINE  # waiting, nothing to do
    assert look_of(snap(**busy)) is TrayLook.PAUSED
    assert look_of(snap()) is TrayLook.IDLE
    assert "Signed out" in tooltip(snap(auth=AuthState.SIGNED_OUT))
    assert "2 files failed" in tooltip(snap(counts={"failed": 2}))
    assert "filespace mounted" in tooltip(snap(health=(folder,)))


def test_idle_lines_say_what_is_going_on() -> None:
    assert status_line(snap()) == "Up to date"
    assert status_line(snap(settling=2)) == "Waiting for 2 files to finish rendering"
    assert status_line(snap(roots=())) == "No folder watched yet: open Settings to add one"
    assert status_line(snap(paused=True, counts={"pending": 4})) == "Paused · 4 files waiting"


def test_sizes_and_durations_read_like_finder() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 12_345_678, 5 * 10**12)] == [
        "0 B", "999 B", "1 KB", "12.3 MB", "5 TB",
    ]  # fmt: skip
    assert [format_duration(s) for s in (3, 30, 240, 3 * 3600 + 600)] == [
        "a few seconds", "less than a minute", "4 min", "3 h 10 min",
    ]  # fmt: skip


def test_health_panel_lists_every_check_with_what_to_do() -> None:
    rows = health_rows(snap(health=(Health("disk", False, "The disk is full. Free some space."),)))
    labels = {r.label: r for r in rows}
    assert labels["Adobe sign-in"].ok and "ed@studio.test" in labels["Adobe sign-in"].explanation
    assert labels["Watch folder /Volumes/fs/Renders"].ok
    assert (
        not labels["PostFlow's data disk"].ok
        and "Free some space" in labels["PostFlow's data disk"].explanation
    )
    signed_out = {r.label: r for r in health_rows(snap(auth=AuthState.SIGNED_OUT, roots=()))}
    assert "Sign in with Adobe" in signed_out["Adobe sign-in"].explanation
    assert not signed_out["Watch folders"].ok


def view(job_id: int, name: str, state: JobState = JobState.DONE, **changes: Any) -> JobView:
    job = Job(job_id, "r1", name, f"/Volumes/fs/Renders/{name}", 10, 1, state, **changes)
    return JobView(job)


def test_deliveries_are_gathered_into_one_notification_per_project() -> None:
    policy = NoticePolicy()
    for n in range(12):
        policy.job_changed(
            view(n, f"shot_{n:02d}.mov", remote_url=f"https://f.io/{n}"), ROOT, now=100 + n * 0.1
        )
    assert policy.flush(now=101.0) == []  # still gathering
    due = policy.due_at()
    assert due is not None and due <= 101.1 + GATHER_SECONDS
    (notice,) = policy.flush(now=due)
    assert notice.title == "12 files uploaded to Project X"
    assert notice.message == "shot_00.mov, shot_01.mov, shot_02.mov and 9 more"
    assert notice.target is ClickTarget.WINDOW
    assert policy.due_at() is None


def test_one_delivery_opens_the_file_and_a_touched_file_says_nothing() -> None:
    policy = NoticePolicy()
    policy.job_changed(view(1, "A001.mov", remote_url="https://f.io/1"), ROOT, now=0)
    policy.job_changed(view(2, "B001.mov", note=TOUCHED_NOTE), ROOT, now=0)
    (notice,) = policy.flush(now=GATHER_SECONDS)
    assert (notice.title, notice.message, notice.target, notice.link) == (
        "Uploaded to Project X", "A001.mov", ClickTarget.LINK, "https://f.io/1",
    )  # fmt: skip


def test_a_steady_stream_still_notifies_every_so_often() -> None:
    policy = NoticePolicy()
    t = 0.0
    while t < GATHER_AT_MOST:
        policy.job_changed(view(int(t * 10), f"f{t}.mov"), ROOT, now=t)
        t += 1.0
    assert len(policy.flush(now=GATHER_AT_MOST)) == 1


def test_failures_are_told_with_their_reason() -> None:
    policy = NoticePolicy()
    failed = view(1, "A001.mov", JobState.FAILED, last_error="Not found on Frame.io: folder deleted",
                  error_title="Not found on Frame.io")  # fmt: skip
    assert failed.error == ErrorInfo("Not found on Frame.io", "Not found on Frame.io: folder deleted", False)
    policy.job_changed(failed, ROOT, now=0)
    (notice,) = policy.flush(now=GATHER_SECONDS)
    assert (
        notice.problem and notice.title == "A001.mov was not uploaded" and "folder deleted" in notice.message
    )


def test_a_problem_is_told_once_until_it_clears() -> None:
    policy = NoticePolicy()
    gone = Health("watch:r1", False, "/Volumes/fs/Renders cannot be found: is the filespace mounted?")
    first = policy.snapshot(snap(health=(gone,)))
    assert [n.title for n in first] == ["Cannot watch Renders"]
    for _ in range(5):  # every retry, every snapshot: nothing new to say
        assert policy.snapshot(snap(health=(gone,))) == []
    assert policy.snapshot(snap()) == []  # it cleared
    assert len(policy.snapshot(snap(health=(gone,)))) == 1  # and came back: told again
    signed_out = policy.snapshot(snap(auth=AuthState.SIGNED_OUT))
    assert [n.target for n in signed_out] == [ClickTarget.SIGN_IN]
    assert policy.snapshot(snap(auth=AuthState.SIGNED_OUT)) == []
    offline = Health("network", False, "Frame.io cannot be reached.")
    assert policy.snapshot(snap(health=(offline,))) == []  # heals by itself: the icon says it


def test_start_at_login_on_linux_writes_an_autostart_entry(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    item = LoginItem(["/opt/PostFlow/postflow"], home=tmp_path, platform="linux")
    assert not item.enabled()
    item.set_enabled(True)
    entry = tmp_path / ".config" / "autostart" / "postflow.desktop"
    assert item.enabled() and entry.is_file()
    text = entry.read_text()
    assert "Exec=sh -c 'sleep 8; exec /opt/PostFlow/postflow'" in text and "X-GNOME-Autostart-Delay=8" in text
    entry.unlink()  # removed by hand: the settings page must show the truth
    assert not item.enabled()
    item.set_enabled(True)
    item.set_enabled(False)
    assert not entry.exists()


def test_start_at_login_on_macos_writes_a_launch_agent(tmp_path: Path) -> None:
    item = LoginItem(["/Applications/PostFlow.app/Contents/MacOS/PostFlow"], home=tmp_path, platform="darwin")
    item.set_enabled(True)
    plist = plistlib.loads((tmp_path / "Library/LaunchAgents/io.postflow.PostFlow.plist").read_bytes())
    assert plist["RunAtLoad"] is True
    assert plist["ProgramArguments"] == ["/Applications/PostFlow.app/Contents/MacOS/PostFlow"]
    assert item.enabled()


def test_signing_out_on_purpose_is_not_news_but_a_later_sign_out_is() -> None:
    policy = NoticePolicy()
    policy.expect_signed_out()
    assert policy.snapshot(snap(auth=AuthState.SIGNED_OUT)) == []
    assert policy.snapshot(snap()) == []  # signed in again
    assert [n.target for n in policy.snapshot(snap(auth=AuthState.SIGNED_OUT))] == [ClickTarget.SIGN_IN]


def test_the_dock_icon_is_only_touched_on_macos() -> None:
    from app.gui.macos_dock import hide_dock_icon

    assert hide_dock_icon() is False  # not macOS here: nothing to do, nothing raised


def test_a_deleted_discord_webhook_is_one_notification_until_it_heals() -> None:
    policy = NoticePolicy()
    gone = Health("discord", False, "Discord no longer accepts this webhook (HTTP 404: Unknown Webhook).")
    [notice] = policy.snapshot(snap(health=(gone,)))
    assert notice.title == "The team's Discord channel hears nothing" and notice.problem
    assert "Unknown Webhook" in notice.message
    for _ in range(10):  # every scheduled check finds it still gone: nothing new to say
        assert policy.snapshot(snap(health=(gone,))) == []
    assert policy.snapshot(snap(health=(Health("discord", True, "Posting to Discord works."),))) == []
    assert len(policy.snapshot(snap(health=(gone,)))) == 1  # deleted again later: told again


def test_the_engine_numbers_read_as_one_line() -> None:
    quiet = {"files_delivered": 0, "files_failed": 0, "bytes_delivered": 0, "success_rate": None,
             "mean_upload_seconds": None, "mean_bytes_per_second": None, "retries_by_error_class": {},
             "token_refreshes": 0, "event_loop_lag_max_seconds": 0.004}  # fmt: skip
    assert metrics_line(quiet) == (
        "Nothing delivered since PostFlow started. Sign-in renewed 0×; the app answered within 4 ms."
    )
    busy = {**quiet, "files_delivered": 9, "files_failed": 1, "bytes_delivered": 9_000_000_000,
            "success_rate": 0.9, "mean_upload_seconds": 125.0, "mean_bytes_per_second": 72_000_000,
            "retries_by_error_class": {"network": 3, "rate_limit": 1}, "token_refreshes": 2}  # fmt: skip
    line = metrics_line(busy)
    assert line.startswith("Since PostFlow started: 9 delivered (9 GB), 1 failed, 90% succeeded; ")
    assert "a file on average at 72 MB/s." in line and "Retries: 3 network, 1 rate_limit." in line


def test_the_login_item_is_read_back_and_a_stale_one_is_told(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    old = LoginItem(["/opt/Old PostFlow/postflow"], home=tmp_path, platform="linux")
    old.set_enabled(True)
    assert old.registered_command() == ["/opt/Old PostFlow/postflow"] and old.points_here()
    assert old.describe().startswith("Registered in ") and "starts this PostFlow" in old.describe()
    moved = LoginItem(["/opt/PostFlow/postflow"], home=tmp_path, platform="linux")
    assert moved.enabled() and not moved.points_here()  # an app moved: the entry starts nothing
    assert "but for /opt/Old PostFlow/postflow, not this PostFlow" in moved.describe()
    mac = LoginItem(["/Applications/PostFlow.app/Contents/MacOS/PostFlow"], home=tmp_path, platform="darwin")
    mac.set_enabled(True)
    assert mac.points_here()
    mac.path.write_bytes(b"not a plist")
    assert mac.registered_command() is None and "something PostFlow cannot read" in mac.describe()
    assert (
        LoginItem(["/x"], home=tmp_path / "nobody", platform="linux").describe().startswith("Not registered")
    )


def test_the_windows_run_value_is_read_back_as_the_installer_and_the_app_write_it(monkeypatch: Any) -> None:
    item = LoginItem([r"C:\Users\Ed\AppData\Local\Programs\PostFlow\PostFlow.exe"], platform="win32")
    for written in (
        r'"C:\Users\Ed\AppData\Local\Programs\PostFlow\PostFlow.exe"',  # the NSIS installer
        r"C:\Users\Ed\AppData\Local\Programs\PostFlow\PostFlow.exe",
    ):  # list2cmdline, no spaces
        monkeypatch.setattr(item, "_windows_value", lambda value=written: value)
        assert item.points_here(), written
    for odd in (r"C:\Users\O'Neil\PostFlow\PostFlow.exe", r"C:\u\Dev#2\PostFlow.exe"):
        named = LoginItem([odd], platform="win32")
        monkeypatch.setattr(named, "_windows_value", lambda odd=odd: subprocess.list2cmdline([odd]))
        assert named.points_here(), odd  # a ' or a # in a folder name is part of the path
    upper = r"C:\USERS\ED\APPDATA\LOCAL\PROGRAMS\POSTFLOW\POSTFLOW.EXE"
    monkeypatch.setattr(item, "_windows_value", lambda: upper)
    assert item.points_here()  # Windows paths know no case
    monkeypatch.setattr(item, "_windows_value", lambda: r'"C:\Program Files\Old\PostFlow.exe"')
    assert item.registered_command() == [r"C:\Program Files\Old\PostFlow.exe"] and not item.points_here()


def test_an_appimage_registers_its_own_file_not_its_temporary_mount(monkeypatch: Any) -> None:
    from app.desktop import login_item

    monkeypatch.setattr(login_item.sys, "frozen", True, raising=False)
    monkeypatch.setattr(login_item.sys, "executable", "/tmp/.mount_PostFlXYZ/usr/lib/postflow/postflow")
    monkeypatch.setenv("APPIMAGE", "/home/ed/Applications/PostFlow-0.1.0-x86_64.AppImage")
    assert login_item.launch_command() == ["/home/ed/Applications/PostFlow-0.1.0-x86_64.AppImage"]
    monkeypatch.delenv("APPIMAGE")
    assert login_item.launch_command() == ["/tmp/.mount_PostFlXYZ/usr/lib/postflow/postflow"]
