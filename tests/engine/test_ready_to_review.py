"""Ready to review: each delivered file is followed until the sandbox's Frame.io has transcoded
it (proxies in ``media_links``) and announced once, never before; a transcode failure and a
file deleted on Frame.io are reported as such; a restart neither forgets nor repeats."""

from __future__ import annotations

from typing import Any

from engine_harness import Harness, wait_for, write

from app.core.events import FileReviewed
from app.engine.review_watch import CANNOT_PLAY, DELETED, playable
from app.engine.service import EngineService


def quick(engine: EngineService, grace: float = 120.0) -> None:
    """Polls sooner than in production (2 s, then ×1.5 up to a minute) so the test is short."""
    engine.review_watch.first_check = 0.1
    engine.review_watch.max_interval = 0.5
    engine.review_watch.grace = grace


def reviewed(harness: Harness) -> list[FileReviewed]:
    return [e for e in harness.events if isinstance(e, FileReviewed)]


async def test_ten_files_of_different_sizes_each_announced_once_after_transcoding(harness: Harness) -> None:
    sandbox = harness.sandbox
    sandbox.control("/_sandbox/settings", {"transcode_delay": 0.2, "transcode_bytes_per_second": 2_000_000})
    seen_status: dict[str, tuple[str, bool]] = {}

    def at_announcement(event: Any) -> None:
        """What the sandbox says at the very moment PostFlow announces the file."""
        if isinstance(event, FileReviewed):
            [remote] = [f for f in list(sandbox.sandbox.store.files.values()) if f.name == event.rel_path]
            seen_status[event.rel_path] = (remote.status, remote.transcode_failed)

    harness.bus.subscribe(at_announcement)
    engine = await harness.start()
    quick(engine)
    sizes = {f"R{n:02d}.mov": 10_000 + n * 300_000 for n in range(10)}  # 10 KB … 2.7 MB: 0.2 s … 1.6 s
    for name, size in sizes.items():
        write(harness.watch / name, bytes([len(name)]) * size)
    await wait_for(lambda: len(reviewed(harness)) == 10, 90, "ten files ready to review")
    events = reviewed(harness)
    assert sorted(e.rel_path for e in events) == sorted(sizes)
    assert all(e.ready and e.message is None and e.link for e in events)
    assert seen_status == {name: ("transcoded", False) for name in sizes}
    assert {e.rel_path: e.size for e in events} == sizes
    # Waiting for the transcode is proven by what the sandbox said at each announcement (above);
    # the seconds waited depend on the machine's load, so they are only checked to be reported.
    assert all(e.waited_seconds > 0 for e in events)
    assert sandbox.control("/_sandbox/stats").get("429:files.show", 0) == 0  # within the documented limit
    assert engine.review_watch.following == 0

    await harness.restart()  # the outcome is persisted: nobody is told twice
    quick(harness.engine)  # type: ignore[arg-type]
    write(harness.watch / "after.mov", b"z" * 5000)
    await wait_for(lambda: len(reviewed(harness)) == 11, 60, "the next file")
    assert [e.rel_path for e in reviewed(harness)][-1] == "after.mov"


async def test_a_transcode_failure_is_reported_as_such(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"fail_next_transcodes": 1})
    engine = await harness.start()
    quick(engine, grace=0.5)
    write(harness.watch / "damaged.mov", b"d" * 7000)
    [event] = await wait_for(lambda: reviewed(harness), 60, "the outcome")
    assert not event.ready and event.message == CANNOT_PLAY
    write(harness.watch / "fine.mov", b"f" * 7000)  # the next one plays
    await wait_for(lambda: len(reviewed(harness)) == 2, 60, "the next outcome")
    assert reviewed(harness)[1].ready and reviewed(harness)[1].rel_path == "fine.mov"
    view = await engine.job(event.job_id)
    assert view is not None and view.job.state.value == "done"  # delivered stays delivered


async def test_a_file_deleted_on_frameio_before_it_was_ready_is_said(harness: Harness, api: Any) -> None:
    harness.sandbox.control("/_sandbox/settings", {"transcode_delay": 30})
    engine = await harness.start()
    quick(engine)
    write(harness.watch / "gone.mov", b"g" * 4000)
    delivered = await wait_for(lambda: harness.delivered().get("Demo Project/Incoming/gone.mov"), 60, "up")
    await wait_for(lambda: engine.review_watch.following == 1, 30, "followed")
    account = api.get("/v4/accounts").json()["data"][0]["id"]
    assert api.delete(f"/v4/accounts/{account}/files/{delivered['id']}").status_code == 204
    [event] = await wait_for(lambda: reviewed(harness), 60, "the outcome")
    assert not event.ready and event.message == DELETED


async def test_a_restart_while_waiting_still_announces_once(harness: Harness) -> None:
    harness.sandbox.control("/_sandbox/settings", {"transcode_delay": 3})
    engine = await harness.start()
    quick(engine)
    write(harness.watch / "slow.mov", b"s" * 4000)
    await wait_for(lambda: engine.review_watch.following == 1, 60, "followed")
    await harness.restart()
    quick(harness.engine)  # type: ignore[arg-type]
    await wait_for(lambda: reviewed(harness), 60, "the outcome")
    [event] = reviewed(harness)
    assert event.ready and event.rel_path == "slow.mov"


def test_a_video_needs_a_playback_proxy_a_still_only_a_preview() -> None:
    thumb = {"thumbnail": {"url": "https://x/t.jpg", "download_url": "https://x/t.jpg"}}
    assert not playable({"media_type": "video/quicktime", "media_links": thumb})
    assert playable({"media_type": "image/jpeg", "media_links": thumb})
    assert playable(
        {"media_type": "video/mp4", "media_links": {"efficient": {"download_url": "https://x/e"}}}
    )
    assert not playable({"media_type": "video/mp4", "media_links": {"high_quality": {"download_url": None}}})
    assert not playable({"media_type": "video/mp4"})
