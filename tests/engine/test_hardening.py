"""Engine hardening: each test is one way the engine used to lose, duplicate or strand a file.

In process, against the sandbox over real HTTP, on real files and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import xxhash
from engine_harness import Harness, sha, wait_for, write
from tests_auth_helpers import sandbox_settings

from app.core.errors import ConfigError
from app.core.events import HealthChanged, JobProgress, JobStateChanged
from app.core.jobs import Job, JobState
from app.core.roots import make_root
from app.engine.root_health import RootIdentity, judge
from app.engine.service import TOUCHED_NOTE, EngineService


async def job_named(engine: EngineService, name: str, state: JobState | None = None) -> Job | None:
    return next(
        (
            j
            for j in reversed(await engine.jobs())
            if j.rel_path == name and (state is None or j.state is state)
        ),
        None,
    )


def no_placeholders(h: Harness) -> bool:
    return all(f["status"] != "created" for f in h.remote_files())


async def test_1_a_file_moved_out_and_back_is_uploaded(harness: Harness, tmp_path: Path) -> None:
    write(harness.watch / "keep.mov", os.urandom(1000))  # the folder is not empty meanwhile
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 1, what="first file")
    await engine.pause_all()
    data = os.urandom(5000)
    clip = write(harness.watch / "clip.mov", data)
    await wait_for(lambda: job_named(engine, "clip.mov", JobState.PENDING), what="queued")
    aside = tmp_path / "aside.mov"
    shutil.move(clip, aside)  # mv keeps size and mtime
    await engine.resume_all()
    await wait_for(lambda: job_named(engine, "clip.mov", JobState.CANCELLED), what="cancelled as moved")
    shutil.move(aside, clip)
    await wait_for(
        lambda: "Demo Project/Incoming/clip.mov" in harness.delivered(), what="delivered after return"
    )
    assert harness.delivered()["Demo Project/Incoming/clip.mov"]["sha256"] == sha(data)
    assert len(harness.remote_files()) == 2


async def test_2_an_emptied_mount_point_is_unavailable_not_a_mass_deletion(
    harness: Harness, tmp_path: Path
) -> None:
    write(harness.watch / "delivered.mov", os.urandom(1000))
    engine = await harness.start()
    await wait_for(lambda: _count(engine, JobState.DONE, 1), what="first file recorded as delivered")
    await engine.pause_all()  # (not while it is being verified: that one would wait again too)
    waiting = {f"w{i}.mov": os.urandom(3000 + i) for i in range(3)}
    for name, blob in waiting.items():
        write(harness.watch / name, blob)
    await wait_for(lambda: _count(engine, JobState.PENDING, 3), what="3 queued")
    volume = tmp_path / "volume-away"
    harness.watch.rename(volume)
    harness.watch.mkdir()  # the volume is gone, its empty mount point stays behind, readable
    await engine.resume_all()

    def red() -> HealthChanged | None:
        return next((e for e in harness.events if isinstance(e, HealthChanged) and not e.ok
                     and "looks empty" in (e.message or "")), None)  # fmt: skip

    await wait_for(red, what="health red: looks empty")
    await engine.scan_now()
    jobs = await engine.jobs()
    assert not [j for j in jobs if j.state in (JobState.CANCELLED, JobState.FAILED)], jobs
    # A restart on the bare mount point knows it too (the root's last state is persisted).
    engine = await harness.restart()
    await engine.scan_now()
    assert not [j for j in await engine.jobs() if j.state in (JobState.CANCELLED, JobState.FAILED)]
    harness.watch.rmdir()
    volume.rename(harness.watch)  # the volume is back
    await wait_for(lambda: len(harness.delivered()) == 4, what="delivered after the volume came back")
    assert {harness.delivered()[f"Demo Project/Incoming/{n}"]["sha256"] for n in waiting} == {
        sha(b) for b in waiting.values()
    }


def test_2_a_root_on_another_device_and_empty_is_unavailable(tmp_path: Path) -> None:
    empty = tmp_path / "mnt"
    empty.mkdir()
    device = os.stat(empty).st_dev
    problem, _ = judge(str(empty), RootIdentity(device + 1, had_entries=False))
    assert problem is not None and "different disk" in problem
    assert judge(str(empty), RootIdentity(device, had_entries=False)) == (None, RootIdentity(device, False))
    (empty / "x.mov").write_bytes(b"x")
    problem, identity = judge(str(empty), RootIdentity(device + 1, had_entries=True))
    assert problem is None and identity == RootIdentity(device, True)  # a remount with its files: fine
    problem, _ = judge(str(empty / "x.mov"), None)
    assert problem is not None and "not a folder" in problem


async def test_3_overlapping_roots_are_refused(sandbox: Any, harness: Harness, tmp_path: Path) -> None:
    inner = harness.watch / "Sub"
    inner.mkdir()
    link = tmp_path / "link-to-watch"
    link.symlink_to(harness.watch)
    settings = sandbox_settings(sandbox)
    auth = await _auth(harness)
    spellings = [str(link), str(harness.watch) + "/", os.path.relpath(harness.watch)]
    for other in [str(inner), *spellings]:
        with pytest.raises(ConfigError) as info:
            EngineService(
                settings,
                auth.auth,
                auth.frameio,
                harness.bus,
                [make_root(str(harness.watch), "P"), make_root(other, "Q")],
            )
        assert "twice" in info.value.message
    assert {make_root(p, "Demo Project").id for p in spellings} == {make_root(str(harness.watch), "x").id}


async def test_3_rewriting_the_destination_or_moving_the_folder_uploads_nothing_again(
    harness: Harness, tmp_path: Path, seed_ids: dict[str, str]
) -> None:
    for i in range(3):
        write(harness.watch / "A" / f"c{i}.mov", os.urandom(2000 + i))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 3, what="3 delivered")
    await engine.stop()
    # The same destination written by id instead of by name: same root, nothing uploaded again.
    settings = sandbox_settings(harness.sandbox, **harness.env)
    assert harness.auth is not None
    by_id = make_root(str(harness.watch) + "/", seed_ids["project"], "Incoming")
    engine = harness.engine = EngineService(
        settings, harness.auth.auth, harness.auth.frameio, harness.bus, [by_id]
    )
    await engine.start()
    await _settle(engine)
    assert len(harness.remote_files()) == 3
    # The filespace is mounted somewhere else now: "this folder moved" keeps the history.
    moved = tmp_path / "new-mount"
    harness.watch.rename(moved)
    root = await engine.move_root(by_id.id, str(moved))
    assert root.path == str(moved.resolve())
    await _settle(engine)
    assert len(harness.remote_files()) == 3
    assert all(j.abs_path.startswith(str(moved)) for j in await engine.jobs())
    write(moved / "A" / "new.mov", os.urandom(100))
    await wait_for(lambda: len(harness.delivered()) == 4, what="a new file in the moved folder")


async def test_4_a_half_sent_upload_is_removed_when_the_file_is_re_exported_while_waiting(
    harness: Harness,
) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(1_000_000)
    target = write(harness.watch / "SH010_comp.mov", os.urandom(2_000_000))
    engine = await harness.start()

    async def some_parts_sent() -> bool:
        job = await job_named(engine, "SH010_comp.mov", JobState.UPLOADING)
        return job is not None and job.bytes_done >= 256 * 1024

    await wait_for(some_parts_sent, what="some parts sent")
    job = await job_named(engine, "SH010_comp.mov")
    assert job is not None
    await engine.pause(job.id)  # it waits with parts sent (a pause, a backoff or a restart)
    assert [f["status"] for f in harness.remote_files()] == ["created"]
    new = os.urandom(1_500_000)
    target.write_bytes(new)  # the editor re-exports over it
    await wait_for(lambda: len(harness.delivered()) == 1, what="the new version delivered")
    await wait_for(lambda: len(harness.remote_files()) == 1, what="the half-sent one removed")
    assert [f["sha256"] for f in harness.remote_files()] == [sha(new)]
    old = await engine.store.get(job.id)
    assert old is not None and old.state is JobState.CANCELLED and "newer version" in (old.last_error or "")


async def test_5_cancel_during_a_lost_create_answer_leaves_no_empty_asset(harness: Harness) -> None:
    harness.sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "lost", "only": "files.create_local_upload"}}
    )
    write(harness.watch / "lost.mov", os.urandom(600_000))
    engine = await harness.start()
    engine._uploader.outcome_wait = 60.0  # the cancel comes while PostFlow waits to look
    engine._uploader.listing_settle = 0.2
    await wait_for(lambda: harness.remote_files(), what="the placeholder the lost answer created")
    job = await wait_for(lambda: job_named(engine, "lost.mov", JobState.UPLOADING), what="uploading")
    await engine.cancel(job.id)
    await wait_for(lambda: harness.remote_files() == [], what="the empty asset removed")

    async def forgotten() -> bool:
        return (await engine.store.upload_state(job.id)).create_started_at is None

    await wait_for(forgotten, what="nothing left to clean")


async def test_6_pausing_a_job_the_scheduler_just_started_does_not_strand_its_path(harness: Harness) -> None:
    engine = await harness.start()
    await engine.pause_all()
    write(harness.watch / "quick.mov", os.urandom(1000))
    job = await wait_for(lambda: job_named(engine, "quick.mov", JobState.PENDING), what="queued")
    engine.paused = False
    await engine.scheduler.start_what_fits()  # the scheduler starts it ...
    await engine.pause(job.id)  # ... and the user pauses before its first step ran
    await engine.resume(job.id)
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered after resume")
    write(harness.watch / "quick.mov", os.urandom(2000))  # and a later version is not stuck either
    await wait_for(
        lambda: len(harness.remote_files()) == 2 and no_placeholders(harness), what="the next version"
    )


async def test_8_sign_out_stops_transfers_within_a_second_and_waits_for_sign_in(harness: Harness) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(500_000)
    write(harness.watch / "long.mov", os.urandom(3_000_000))
    engine = await harness.start()
    await wait_for(lambda: job_named(engine, "long.mov", JobState.UPLOADING), what="uploading")
    await wait_for(
        lambda: any(isinstance(e, JobProgress) and e.bytes_done > 300_000 for e in harness.events),
        what="bytes flowing (part PUTs need no token)",
    )
    assert harness.auth is not None
    signed_out_at = time.monotonic()
    await harness.auth.auth.sign_out()
    await wait_for(lambda: not engine.scheduler.running, timeout=1.0, what="every transfer stopped in 1 s")
    job = await wait_for(
        lambda: job_named(engine, "long.mov", JobState.PENDING), timeout=1.0, what="recorded"
    )
    assert time.monotonic() - signed_out_at < 1.0  # stopped and recorded as waiting, within a second
    assert job is not None and engine.waiting_for_sign_in
    sent = [f["parts_received"] for f in harness.remote_files()]
    await engine.scheduler.start_what_fits()  # nothing starts while signed out
    assert not engine.scheduler.running and [f["parts_received"] for f in harness.remote_files()] == sent


async def test_8_a_sign_in_to_another_account_holds_the_queue_until_confirmed(harness: Harness) -> None:
    engine = await harness.start()
    await engine.pause_all()
    write(harness.watch / "client_cut.mov", os.urandom(4000))
    await wait_for(lambda: job_named(engine, "client_cut.mov", JobState.PENDING), what="queued")
    # The queue was made while signed in to another account (the sandbox has one account).
    await engine.store.set_meta(
        "account", json.dumps({"account_id": "other-account", "email": "me@old.example"})
    )
    engine = await harness.restart()
    assert engine.paused  # a pause outlives a restart
    await engine.resume_all()
    assert engine.account_mismatch is not None and "me@old.example" in engine.account_mismatch
    assert any(isinstance(e, HealthChanged) and e.component == "account" and not e.ok for e in harness.events)
    await engine.scheduler.start_what_fits()
    assert not engine.scheduler.running and harness.remote_files() == []
    await engine.confirm_account()
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered once confirmed")


async def test_9_a_refusal_that_repeats_fails_after_three_attempts_leaving_nothing(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"fail_next_uploads": 1000})
    write(harness.watch / "never.mov", os.urandom(300_000))
    engine = await harness.start()
    engine.scheduler.retry_base = 0.05
    job = await wait_for(lambda: job_named(engine, "never.mov", JobState.FAILED), timeout=60, what="failed")
    assert job.attempts == 3 and "did not accept" in (job.last_error or "")
    await wait_for(lambda: harness.remote_files() == [], what="no placeholder left")
    assert (await engine.store.upload_state(job.id)).remote_file_id is None


async def test_11_unreachable_part_urls_are_renewed(harness: Harness) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(1_000_000)
    write(harness.watch / "stale.mov", os.urandom(1_500_000))
    engine = await harness.start()
    job = await wait_for(lambda: job_named(engine, "stale.mov", JobState.UPLOADING), what="uploading")
    await wait_for(lambda: harness.remote_files(), what="a placeholder")
    await engine.pause(job.id)
    # As after a restart of the demo on another port: the saved URLs name a dead address.
    up = await engine.store.upload_state(job.id)
    assert up.remote_file_id is not None and up.media_type is not None
    dead = tuple((size, "http://127.0.0.1:9/dead") for size, _ in up.parts)
    await engine.store.record_upload(job.id, up.remote_file_id, up.media_type, dead, None)
    engine._uploader.unreachable_renew_after = 0.5
    await engine.resume(job.id)
    await wait_for(lambda: len(harness.delivered()) == 1, timeout=60, what="delivered with new URLs")
    assert len(harness.remote_files()) == 1


async def test_13_a_touched_file_is_recognised_not_uploaded_again(harness: Harness) -> None:
    data = os.urandom(400_000)
    clip = write(harness.watch / "graded.mov", data)
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered")
    first = await wait_for(lambda: job_named(engine, "graded.mov", JobState.DONE), what="done")
    assert first.sha256 == "xxh128:" + xxhash.xxh3_128_hexdigest(data) and first.attempts == 1
    later = time.time_ns() + 5_000_000_000
    os.utime(clip, ns=(later, later))  # touch: new mtime, same bytes
    touched = await wait_for(
        lambda: _job_where(engine, lambda j: j.id != first.id and j.state is JobState.DONE),
        what="touched job",
    )
    assert touched.note == TOUCHED_NOTE and touched.remote_file_id == first.remote_file_id
    assert len(harness.remote_files()) == 1
    clip.write_bytes(os.urandom(len(data)))  # same size, new bytes: a real new version
    await wait_for(lambda: len(harness.remote_files()) == 2, what="the real new version uploaded")


async def test_13b_a_file_delivered_by_an_older_version_is_still_recognised_when_touched(
    harness: Harness,
) -> None:
    """Queues from before the XXH3 digest recorded SHA-256: a touch still uploads nothing."""
    data = os.urandom(300_000)
    clip = write(harness.watch / "old.mov", data)
    engine = await harness.start()
    first = await wait_for(lambda: job_named(engine, "old.mov", JobState.DONE), what="done")
    await engine.store.update(first.id, JobState.DONE, sha256=sha(data))  # as 0.x recorded it
    later = time.time_ns() + 5_000_000_000
    os.utime(clip, ns=(later, later))
    touched = await wait_for(
        lambda: _job_where(engine, lambda j: j.id != first.id and j.state is JobState.DONE),
        what="touched job",
    )
    assert touched.note == TOUCHED_NOTE and len(harness.remote_files()) == 1


async def test_14_an_unreadable_file_fails_after_bounded_attempts_without_a_placeholder(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = write(harness.watch / "locked.mov", os.urandom(1000))
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if os.fspath(path) == str(locked):  # tests run as root, who may read anything
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refusing_open)
    engine = await harness.start()
    engine.scheduler.retry_base = 0.05
    job = await wait_for(lambda: job_named(engine, "locked.mov", JobState.FAILED), what="failed")
    assert job.attempts == 3 and "may not read" in (job.last_error or "")
    assert harness.remote_files() == []


async def test_17_a_full_disk_of_our_own_is_a_clear_error_and_nothing_is_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    engine = await harness.start()
    real = engine.store.transition
    full = {"left": 3}

    async def disk_full(*args: Any, **kw: Any) -> Any:
        if full["left"] > 0:
            full["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return await real(*args, **kw)

    engine.scheduler.disk_full_wait = 0.3
    monkeypatch.setattr(engine.store, "transition", disk_full)
    write(harness.watch / "big_day.mov", os.urandom(2000))

    def said(ok: bool) -> bool:
        return any(
            isinstance(e, HealthChanged) and e.component == "disk" and e.ok is ok for e in harness.events
        )

    await wait_for(lambda: said(False), what="the disk-full message")
    message = next(
        e.message for e in harness.events if isinstance(e, HealthChanged) and e.component == "disk"
    )
    assert "is full" in (message or "")
    await wait_for(lambda: len(harness.delivered()) == 1, timeout=60, what="delivered once there is room")


async def test_18_names_go_to_frame_io_in_nfc_and_delivered_jobs_look_right(harness: Harness) -> None:
    nfd = unicodedata.normalize("NFD", "Séquence café.mov")
    write(harness.watch / unicodedata.normalize("NFD", "Étalonnage") / nfd, os.urandom(3000))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered")
    path = next(iter(harness.delivered()))
    assert path == unicodedata.normalize("NFC", "Demo Project/Incoming/Étalonnage/Séquence café.mov")
    job = (await engine.jobs())[0]
    assert os.path.isabs(job.abs_path) and job.attempts == 1


# ---- helpers ----
async def _auth(harness: Harness) -> Any:
    from tests_auth_helpers import signed_in_service

    if harness.auth is None:
        harness.auth = await signed_in_service(harness.sandbox, harness.bus)
    return harness.auth


async def _settle(engine: EngineService) -> None:
    await engine.scan_now()
    await wait_for(lambda: engine.settling() == 0, what="settled")
    await engine.scan_now()
    await asyncio.sleep(0)
    await wait_for(lambda: not engine.scheduler.running and not engine.scheduler.cleaning, what="idle")


async def _count(engine: EngineService, state: JobState, n: int) -> bool:
    return sum(1 for j in await engine.jobs() if j.state is state) == n


async def _job_where(engine: EngineService, test: Any) -> Job | None:
    return next((j for j in await engine.jobs() if test(j)), None)


async def test_10_a_lost_folder_create_is_looked_for_while_listings_lag(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"listing_lag": 1.5})
    harness.sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "lost", "only": "folders.create"}}
    )
    write(harness.watch / "Day 09" / "clip.mov", os.urandom(1000))
    engine = await harness.start(folder="")
    engine._resolver.lost_create_waits = (0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered")
    folders = [f["path"] for f in harness.sandbox.control("/_sandbox/folders")["folders"]]
    assert folders.count("Demo Project/Day 09") == 1
    assert harness.sandbox.control("/_sandbox/faults")["injected"]["api"] == 1


async def test_9_storage_refusing_parts_fails_after_three_attempts_leaving_nothing(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/faults", {"parts": {"rate": 1.0, "kinds": ["400"]}})
    write(harness.watch / "refused.mov", os.urandom(300_000))
    engine = await harness.start()
    engine.scheduler.retry_base = 0.05
    job = await wait_for(lambda: job_named(engine, "refused.mov", JobState.FAILED), what="failed")
    assert job.attempts == 3 and "storage refused part" in (job.last_error or "")
    await wait_for(lambda: harness.remote_files() == [], what="no placeholder left")
    harness.sandbox.control("/_sandbox/faults", {"clear": True})  # the storage heals ...
    await engine.retry(job.id)  # ... and the user chooses Retry
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered after Retry")


async def _never_verified(
    harness: Harness, name: str, size: int, *, verify_timeout: float
) -> tuple[EngineService, Job]:
    """A file Frame.io never finishes assembling: failed after three quick attempts."""
    harness.sandbox.control("/_sandbox/settings", {"assembly_delay": 3600})
    write(harness.watch / name, os.urandom(size))
    engine = await harness.start()
    engine.scheduler.retry_base = 0.05
    engine._uploader.verify_timeout = verify_timeout
    job = await wait_for(lambda: job_named(engine, name, JobState.FAILED), what="failed")
    return engine, job


async def test_9_a_verify_that_never_completes_fails_after_three_attempts_leaving_nothing(
    harness: Harness,
) -> None:
    engine, job = await _never_verified(harness, "stuck.mov", 200_000, verify_timeout=0.5)
    assert job.attempts == 3 and "had not finished processing" in (job.last_error or "")
    await wait_for(lambda: harness.remote_files() == [], what="no placeholder left")


async def test_17_the_sandbox_disk_full_is_shown_on_the_job(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sandbox import part_receive

    def no_space(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(part_receive, "_write_part", no_space)
    write(harness.watch / "full.mov", os.urandom(100_000))
    engine = await harness.start()

    def said_full() -> bool:
        return any(
            isinstance(e, JobStateChanged) and e.error and "storage is full" in e.error.message
            for e in harness.events
        )

    await wait_for(said_full, what="the job says the storage is full")
    monkeypatch.undo()  # space was freed: the part retries go through
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered once there is room")
    await wait_for(lambda: job_named(engine, "full.mov", JobState.DONE), what="recorded as delivered")


# ---- found by an outside review ----
async def test_a_file_moved_after_its_last_byte_is_kept_as_delivered(
    harness: Harness, tmp_path: Path
) -> None:
    harness.sandbox.control("/_sandbox/settings", {"assembly_delay": 1.5})  # Frame.io takes a moment
    write(harness.watch / "keep.mov", os.urandom(100))
    data = os.urandom(600_000)
    clip = write(harness.watch / "clip.mov", data)
    engine = await harness.start()

    async def all_sent() -> bool:  # every part confirmed by storage and recorded by the engine
        job = await job_named(engine, "clip.mov")
        return job is not None and job.bytes_done == job.size

    await wait_for(all_sent, what="every byte sent")
    job = await job_named(engine, "clip.mov")
    assert job is not None
    await engine.pause(job.id)  # before it is verified (a pause, a stop, a kill)
    shutil.move(clip, tmp_path / "clip.mov")  # the editor tidies up
    await engine.resume(job.id)  # while Frame.io is still assembling it
    done = await wait_for(lambda: job_named(engine, "clip.mov", JobState.DONE), what="recorded as delivered")
    assert done.id == job.id
    await _settle(engine)
    assert harness.delivered()["Demo Project/Incoming/clip.mov"]["sha256"] == sha(data)  # not deleted


async def test_two_lost_create_answers_in_a_row_leave_no_placeholder(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"listing_lag": 1.0})
    harness.sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 2, "burst_kind": "lost", "only": "files.create_local_upload"}}
    )
    write(harness.watch / "lost.mov", os.urandom(300_000))
    engine = await harness.start()
    engine._uploader.outcome_wait = 1.2
    engine._uploader.listing_settle = 1.2  # a little longer than the lag (the real ones: 30 s)
    engine.scheduler.retry_base = 0.05
    await wait_for(lambda: job_named(engine, "lost.mov", JobState.DONE), what="delivered")
    await wait_for(lambda: no_placeholders(harness), what="no placeholder left")
    assert len(harness.remote_files()) == 1


async def test_refusals_are_counted_apart_from_other_interruptions(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/faults", {"parts": {"burst": 1, "burst_kind": "400"}})
    write(harness.watch / "bumpy.mov", os.urandom(100_000))
    engine = await harness.start()
    await engine.pause_all()
    job = await wait_for(lambda: job_named(engine, "bumpy.mov", JobState.PENDING), what="queued")
    await engine.store.update(job.id, attempts=5)  # interrupted often (network, sign-outs, a volume)
    engine.scheduler.retry_base = 0.05
    await engine.resume_all()
    done = await wait_for(
        lambda: job_named(engine, "bumpy.mov", JobState.DONE), what="delivered after one refusal"
    )
    assert done.refusals == 1


async def test_a_folder_emptied_after_delivery_is_not_reported_as_unmounted(harness: Harness) -> None:
    for i in range(2):
        write(harness.watch / f"d{i}.mov", os.urandom(500 + i))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 2, what="delivered")
    await _settle(engine)
    await wait_for(lambda: engine._monitor._waiting == set(), what="the engine knows nothing waits")
    for path in list(harness.watch.iterdir()):
        path.unlink()  # the assistant clears the hot folder
    await engine.scan_now()
    await engine.scan_now()
    assert not [e for e in harness.events if isinstance(e, HealthChanged) and not e.ok]


async def test_a_late_create_answer_after_a_pause_leaves_one_known_asset(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.engine import push_uploader

    monkeypatch.setattr(push_uploader, "CREATE_GRACE", 0.1)  # the pause stops waiting for it
    write(harness.watch / "slow.mov", os.urandom(300_000))
    engine = await harness.start()
    await engine.pause_all()
    await wait_for(lambda: job_named(engine, "slow.mov", JobState.PENDING), what="queued")
    client = engine._uploader._client
    real = client.create_local_upload
    sent, answer = asyncio.Event(), asyncio.Event()

    async def slow_answer(account_id: str, folder_id: str, name: str, size: int) -> Any:
        created = await real(account_id, folder_id, name, size)
        if not sent.is_set():
            sent.set()
            await answer.wait()  # created on Frame.io; the answer takes its time
        return created

    monkeypatch.setattr(client, "create_local_upload", slow_answer)
    await engine.resume_all()
    await sent.wait()
    await engine.pause_all()
    await engine.resume_all()
    await wait_for(lambda: engine.scheduler.running, what="the next attempt started")
    answer.set()
    job = await wait_for(lambda: job_named(engine, "slow.mov", JobState.DONE), what="delivered")
    await _settle(engine)
    remote = harness.remote_files()
    assert [f["status"] for f in remote] != [] and no_placeholders(harness)
    assert [f["id"] for f in remote] == [job.remote_file_id]


async def test_a_rewrite_during_the_last_part_is_never_kept_as_delivered(harness: Harness) -> None:
    old, new = os.urandom(400_000), os.urandom(400_000)
    clip = write(harness.watch / "clip.mov", old)
    harness.env["POSTFLOW_PARTS_PER_FILE"] = "1"
    engine = await harness.start()
    await engine.pause_all()
    await wait_for(lambda: job_named(engine, "clip.mov", JobState.PENDING), what="queued")
    http = engine._uploader._http
    real_put = http.put
    puts: list[str] = []

    async def rewriting_put(url: str, **kw: Any) -> Any:
        puts.append(url)
        if len(puts) == 2:  # the last of 2 parts: the app re-saves the file in place meanwhile
            st = os.stat(clip)
            with open(clip, "r+b") as fh:
                fh.write(new)
            os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return await real_put(url, **kw)

    http.put = rewriting_put  # type: ignore[method-assign]
    await engine.resume_all()

    def only_the_new_version() -> bool:
        files = harness.remote_files()
        return [(f["status"] != "created", f["sha256"]) for f in files] == [(True, sha(new))]

    await wait_for(only_the_new_version, what="only the new version on Frame.io")
    assert not [j for j in await engine.jobs() if j.note and "Delivered before" in j.note]


async def test_a_failed_row_is_superseded_once_the_same_file_is_delivered_later(harness: Harness) -> None:
    engine, failed = await _never_verified(harness, "again.mov", 100_000, verify_timeout=0.3)
    harness.sandbox.control("/_sandbox/settings", {"assembly_delay": 0})
    write(harness.watch / "again.mov", os.urandom(100_001))  # re-exported: a new job
    done = await wait_for(lambda: job_named(engine, "again.mov", JobState.DONE), 60, what="delivered")
    assert done.id != failed.id
    view = await engine.job(failed.id)
    assert view is not None and view.job.state is JobState.CANCELLED
    assert view.job.last_error == "Replaced by a newer version of the file."
    told = [e for e in harness.events if isinstance(e, JobStateChanged) and e.view.job.id == failed.id]
    assert told[-1].view.job.state is JobState.CANCELLED  # the window and tray hear it too
    assert not [j for j in await engine.jobs() if j.state is JobState.FAILED]
