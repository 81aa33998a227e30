"""The engine, in process, against the sandbox: delivery, structure, sign-out, user actions."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, sha, wait_for, write
from tests_auth_helpers import LOOPBACK, follow_authorize

from app.core.events import HealthChanged, JobStateChanged
from app.core.jobs import JobState


async def test_nested_files_land_in_mirrored_folders_once(harness: Harness) -> None:
    files = {
        "A001/Day 01/clip_a.mov": os.urandom(700_000),
        "A001/Day 01/clip_b.mov": os.urandom(1),
        "A001/Day 02/clip_c.mov": os.urandom(300_000),
        "top.mp4": os.urandom(5000),
        "A001/Day 01/ignored.tmp": b"x",
        "A001/.hidden/clip.mov": b"x",
    }
    for rel, data in files.items():
        write(harness.watch / rel, data)
    engine = await harness.start()
    expected = {
        f"Demo Project/Incoming/{rel}": data
        for rel, data in files.items()
        if ".tmp" not in rel and ".hidden" not in rel
    }
    await wait_for(lambda: set(harness.delivered()) == set(expected), what="all delivered")
    delivered = harness.delivered()
    assert {p: delivered[p]["sha256"] for p in expected} == {p: sha(d) for p, d in expected.items()}
    assert len(harness.remote_files()) == len(expected)  # nothing twice, no stray placeholder

    async def all_done() -> bool:
        return all(j.state is JobState.DONE for j in await harness.engine.jobs())  # type: ignore[union-attr]

    await wait_for(all_done, what="every job recorded as delivered")  # Frame.io may say so first
    # A restart finds the same files and uploads nothing again.
    engine = await harness.restart()
    await engine.scan_now()  # every file seen again (stability window 0.3 s) ...
    await wait_for(lambda: engine.settling() == 0, what="files settled")
    await engine.scan_now()  # ... and offered again after it: nothing new is queued
    assert len(harness.remote_files()) == len(expected)
    assert all(j.state is JobState.DONE for j in await harness.engine.jobs())  # type: ignore[union-attr]


async def test_concurrent_jobs_never_create_the_same_folder_twice(harness: Harness) -> None:
    for i in range(8):
        write(harness.watch / "New Reel" / "Sub" / f"shot_{i}.mov", os.urandom(1000 + i))
    await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 8, what="8 delivered")
    folders = harness.sandbox.control("/_sandbox/folders")["folders"]
    paths = [f["path"] for f in folders]
    assert paths.count("Demo Project/Incoming") == 1
    assert paths.count("Demo Project/Incoming/New Reel") == 1
    assert paths.count("Demo Project/Incoming/New Reel/Sub") == 1


async def test_same_path_with_new_content_is_uploaded_as_a_new_file(harness: Harness) -> None:
    target = write(harness.watch / "cut.mov", os.urandom(2000))
    engine = await harness.start()
    # The engine's "done", not the sandbox's "uploaded": rewritten during the last part's check,
    # the first version could not be vouched for and is rightly removed (one version, not two).
    await wait_for(lambda: _count(engine, JobState.DONE, 1), what="the first version done")
    new = os.urandom(3000)
    target.write_bytes(new)

    def versions() -> list[dict[str, Any]]:
        return [f for f in harness.remote_files() if f["status"] != "created"]

    await wait_for(lambda: len(versions()) == 2, what="second version")
    shas = {f["sha256"] for f in versions()}
    assert sha(new) in shas and len(shas) == 2


async def test_sign_out_mid_queue_pauses_and_sign_in_resumes(harness: Harness) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(2_000_000)  # slow enough to sign out mid-way
    harness.env["POSTFLOW_MAX_CONCURRENT_FILES"] = "1"
    data = {f"reel_{i}.mov": os.urandom(1_000_000) for i in range(4)}
    for name, blob in data.items():
        write(harness.watch / name, blob)
    engine = await harness.start()
    await wait_for(
        lambda: any(isinstance(e, JobStateChanged) and e.state == "uploading" for e in harness.events)
    )
    auth = harness.auth
    assert auth is not None and auth.provider.tokens is not None
    harness.sandbox.http.post(
        "/ims/revoke", data={"client_id": "postflow-sandbox", "token": auth.provider.tokens.refresh_token}
    )
    harness.sandbox.http.post(
        "/ims/revoke", data={"client_id": "postflow-sandbox", "token": auth.provider.tokens.access_token}
    )
    await auth.provider.adopt(dataclasses.replace(auth.provider.tokens, expires_at=time.time() - 1))
    await wait_for(lambda: engine.waiting_for_sign_in, what="signed-out state")
    jobs = await engine.jobs()
    assert not [j for j in jobs if j.state is JobState.FAILED]
    assert len(harness.delivered()) < 4

    async def nothing_uploading() -> bool:
        return all(j.state is not JobState.UPLOADING for j in await engine.jobs())

    await wait_for(nothing_uploading, what="uploads paused")
    # Sign in again: everything finishes.
    flow = auth.auth.new_flow(LOOPBACK)
    await auth.auth.finish(flow, await follow_authorize(flow.authorize_url))
    await wait_for(lambda: len(harness.delivered()) == 4, timeout=60, what="all delivered after sign-in")
    assert {f["sha256"] for f in harness.delivered().values()} == {sha(d) for d in data.values()}
    assert len(harness.remote_files()) == 4


async def test_pause_resume_cancel_and_retry(harness: Harness) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(1_000_000)
    harness.env["POSTFLOW_MAX_CONCURRENT_FILES"] = "1"
    write(harness.watch / "long.mov", os.urandom(3_000_000))
    write(harness.watch / "short.mov", os.urandom(10_000))
    engine = await harness.start()
    await wait_for(
        lambda: any(isinstance(e, JobStateChanged) and e.state == "uploading" for e in harness.events)
    )
    await engine.pause_all()
    states = [(j.rel_path, j.state) for j in await engine.jobs()]
    assert all(state is not JobState.UPLOADING for _, state in states), states
    await engine.resume_all()
    first = await wait_for(lambda: _uploading(engine, "long.mov"), what="the long upload")
    await engine.cancel(first.id)
    cancelled = await engine.store.get(first.id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    await wait_for(lambda: len(harness.delivered()) == 1, what="the other file")
    await wait_for(lambda: all(f["status"] != "created" for f in harness.remote_files()),
                   what="placeholder removed")  # fmt: skip
    await engine.retry(first.id)
    await wait_for(lambda: len(harness.delivered()) == 2, timeout=60, what="retried file")


async def _uploading(engine: Any, name: str) -> Any:
    return next(
        (j for j in await engine.jobs() if j.state is JobState.UPLOADING and j.rel_path == name), None
    )


async def test_missing_project_fails_clearly_without_looping(harness: Harness) -> None:
    write(harness.watch / "clip.mov", b"data")
    engine = await harness.start(project="No Such Project")
    job = await wait_for(lambda: _failed(engine), what="failure")
    assert "No Such Project" in job.last_error and job.attempts == 1
    await engine.scan_now()
    await engine.scan_now()
    assert (await engine.store.get(job.id)).attempts == 1  # type: ignore[union-attr]


async def _failed(engine: Any) -> Any:
    return next((j for j in await engine.jobs() if j.state is JobState.FAILED), None)


async def test_unreachable_folder_is_a_health_problem_not_a_loss(harness: Harness, tmp_path: Path) -> None:
    write(harness.watch / "a.mov", os.urandom(100))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 1)
    hidden = tmp_path / "unmounted"
    harness.watch.rename(hidden)

    def first_problem() -> int | None:
        return next(
            (i for i, e in enumerate(harness.events) if isinstance(e, HealthChanged) and not e.ok), None
        )

    await wait_for(lambda: first_problem() is not None, what="health problem")
    problem_at = first_problem()
    assert problem_at is not None
    assert "cannot be read" in (harness.events[problem_at].message or "")
    hidden.rename(harness.watch)
    await wait_for(lambda: any(isinstance(e, HealthChanged) and e.ok for e in harness.events[problem_at:]),
                   what="healthy again")  # fmt: skip
    await engine.scan_now()
    await wait_for(lambda: engine.settling() == 0, what="settled")
    await engine.scan_now()
    assert len(harness.remote_files()) == 1  # nothing re-uploaded after the volume came back


async def test_expired_part_urls_start_a_fresh_upload_without_leftovers(harness: Harness) -> None:
    """Storage refuses every part (URLs expired mid-upload): the placeholder is replaced, once."""
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(1_000_000)
    write(harness.watch / "late.mov", os.urandom(2_000_000))
    engine = await harness.start()
    await wait_for(
        lambda: any(isinstance(e, JobStateChanged) and e.state == "uploading" for e in harness.events)
    )
    await wait_for(lambda: harness.remote_files(), what="a placeholder")
    harness.sandbox.control("/_sandbox/clock", {"advance_seconds": 2 * 86400})  # every URL is now expired
    await wait_for(lambda: len(harness.delivered()) == 1, timeout=60, what="delivered after expiry")
    assert len(harness.remote_files()) == 1  # the expired placeholder was deleted

    async def done() -> Any:
        job = (await engine.jobs())[0]
        return job if job.state is JobState.DONE else None

    job = await wait_for(done, what="job recorded as done")
    assert job.remote_file_id == harness.remote_files()[0]["id"]


async def test_signed_out_engine_does_not_spam_events(harness: Harness) -> None:
    from app.core.events import AuthStateChanged

    engine = await harness.start()
    assert harness.auth is not None
    await harness.auth.auth.sign_out()
    await wait_for(lambda: engine.waiting_for_sign_in or not harness.auth.provider.tokens, what="signed out")
    write(harness.watch / "waiting.mov", os.urandom(1000))
    await wait_for(lambda: engine.waiting_for_sign_in, what="engine waiting")
    before = sum(isinstance(e, AuthStateChanged) for e in harness.events)
    for _ in range(2):  # what the engine's keychain poll does every 2 s while signed out
        await harness.auth.provider.load()
    assert sum(isinstance(e, AuthStateChanged) for e in harness.events) == before


async def test_offline_volume_keeps_queued_jobs_waiting_not_cancelled(
    harness: Harness, tmp_path: Path
) -> None:
    engine = await harness.start()
    await engine.pause_all()
    data = {f"clip_{i}.mov": os.urandom(2000 + i) for i in range(3)}
    for name, blob in data.items():
        write(harness.watch / name, blob)
    await wait_for(lambda: _count(engine, JobState.PENDING, 3), what="3 queued")
    unmounted = tmp_path / "unmounted"
    harness.watch.rename(unmounted)  # the LucidLink mount drops
    await engine.resume_all()
    await wait_for(
        lambda: all(
            e.error and "cannot be read" in e.error.message
            for e in harness.events
            if isinstance(e, JobStateChanged) and e.state == "pending" and e.error
        ),
        what="waiting jobs",
    )
    await wait_for(
        lambda: (
            sum(
                1
                for e in harness.events
                if isinstance(e, JobStateChanged) and e.error and "cannot be read" in e.error.message
            )
            >= 1
        ),
        what="a job waiting for the volume",
    )
    jobs = await engine.jobs()
    assert not [j for j in jobs if j.state in (JobState.CANCELLED, JobState.FAILED)]
    unmounted.rename(harness.watch)  # back
    await wait_for(lambda: len(harness.delivered()) == 3, timeout=60, what="delivered after remount")
    assert {f["sha256"] for f in harness.delivered().values()} == {sha(d) for d in data.values()}


async def _count(engine: Any, state: JobState, n: int) -> bool:
    return sum(1 for j in await engine.jobs() if j.state is state) == n


async def test_a_file_rewritten_during_its_upload_is_never_delivered_mixed(harness: Harness) -> None:
    harness.env["POSTFLOW_BANDWIDTH_LIMIT"] = str(1_000_000)
    target = write(harness.watch / "SHOW_SC010_v003.mov", os.urandom(3_000_000))
    engine = await harness.start()
    await wait_for(
        lambda: any(isinstance(e, JobStateChanged) and e.state == "uploading" for e in harness.events)
    )
    await wait_for(lambda: harness.remote_files(), what="placeholder")
    new = os.urandom(3_000_000)  # same size, new content: a re-export over the old file
    target.write_bytes(new)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    await wait_for(lambda: len(harness.delivered()) == 1, timeout=60, what="the new version delivered")
    await wait_for(lambda: _count(engine, JobState.DONE, 1))
    remote = harness.remote_files()
    assert [f["sha256"] for f in remote] == [sha(new)]  # the half-sent old version was deleted
    states = sorted(j.state.value for j in await engine.jobs())
    assert states == ["cancelled", "done"]


async def test_a_second_engine_on_the_same_folder_refuses_to_start(harness: Harness) -> None:
    from tests_auth_helpers import sandbox_settings

    from app.core.settings import make_root
    from app.engine.instance_lock import AlreadyRunning
    from app.engine.service import EngineService

    first = await harness.start()
    assert harness.auth is not None
    settings = sandbox_settings(harness.sandbox, **harness.env)
    second = EngineService(settings, harness.auth.auth, harness.auth.frameio, harness.bus,
                           [make_root(str(harness.watch), "Demo Project")])  # fmt: skip
    with pytest.raises(AlreadyRunning) as info:
        await second.start()
    assert "already uploading" in info.value.message
    assert await first.jobs() == []  # the first engine is untouched and still serving


async def test_a_lost_create_answer_leaves_no_duplicate(harness: Harness) -> None:
    harness.sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "lost", "only": "files.create_local_upload"}}
    )
    write(harness.watch / "once.mov", os.urandom(600_000))
    engine = await harness.start()
    engine._uploader.outcome_wait = 0.2  # the real waits are 30 s
    engine._uploader.listing_settle = 0.2
    await wait_for(lambda: _count(engine, JobState.DONE, 1), timeout=60, what="delivered")
    assert len(harness.remote_files()) == 1 and harness.remote_files()[0]["status"] != "created"
    assert harness.sandbox.control("/_sandbox/faults")["injected"]["api"] == 1


async def test_a_failed_assembly_is_uploaded_again_as_a_new_file(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"fail_next_uploads": 1})
    data = os.urandom(700_000)
    write(harness.watch / "retry_me.mov", data)
    engine = await harness.start()
    await wait_for(lambda: _count(engine, JobState.DONE, 1), timeout=60, what="delivered")
    assert [f["sha256"] for f in harness.remote_files()] == [sha(data)]  # the failed one was deleted
