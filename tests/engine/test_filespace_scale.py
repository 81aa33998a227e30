"""Filespace scale (issue 19), in process against the sandbox on real files: the queue reads only
what it can start, the watcher looks only where something happened, moves are not uploads, a
deleted file leaves the queue, names are one identity whatever their Unicode form, and a render
that stalled half-written is never uploaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, sha, wait_for, write

from app.core.events import JobAdded
from app.core.jobs import JobState
from app.engine.queue_store import NewFile, QueueStore
from app.engine.service import GONE_NOTE, EngineService

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None and not os.environ.get("POSTFLOW_REQUIRE_DESKTOP"), reason="ffmpeg is not installed"
)


def make_mov(path: Path, seconds: float = 1.0) -> bytes:
    assert FFMPEG is not None, "ffmpeg is needed: apt-get install ffmpeg"
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                    "-t", str(seconds), "-c:v", "mpeg4", "-y", str(path)], check=True)  # fmt: skip
    return path.read_bytes()


def added(h: Harness) -> list[JobAdded]:
    return [e for e in h.events if isinstance(e, JobAdded)]


async def done_count(engine: EngineService, count: int) -> bool:
    """The engine has finished these jobs (Frame.io saying "uploaded" comes a moment before)."""
    return sum(j.state is JobState.DONE for j in await engine.jobs()) == count


async def jobs_at(engine: EngineService, rel_path: str) -> list[Any]:
    return [j for j in await engine.jobs() if j.rel_path == rel_path]


# ---- queue at scale ----
async def test_the_scheduler_reads_only_as_many_rows_as_it_can_start(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q.sqlite3")
    await store.open()
    try:
        files = [NewFile("r", f"d{i % 50}/c{i:05d}.mov", f"/w/c{i}.mov", 10 + i, i) for i in range(10_000)]
        results = await store.add_many(files)  # one transaction
        assert sum(1 for a in results if a.job is not None) == 10_000
        assert all(a.job is None for a in await store.add_many(files[:100]))  # known: not again
        first = await store.ready_jobs(2, time.time(), [["r"]])
        assert [j.rel_path for j in first] == [files[0].rel_path, files[1].rel_path]
        await store.transition(first[0].id, None, None, not_before=time.time() + 60)  # waiting to retry
        assert [j.id for j in await store.ready_jobs(2, time.time(), [["r"]])] == [
            first[1].id,
            first[1].id + 1,
        ]
        assert await store.ready_jobs(5, time.time(), [["other"]]) == []
        assert await store.roots_with_work(["r", "other"]) == {"r"}

        def plan(index: str, order: str, where: str) -> Any:
            def run(db: Any) -> str:
                rows = db.execute(
                    f"EXPLAIN QUERY PLAN SELECT id FROM jobs INDEXED BY {index} WHERE state = 'pending' AND "
                    f"{where} AND not_before <= 1 AND root_id = 'r' ORDER BY priority DESC, {order}"
                ).fetchall()
                return " ".join(str(r[-1]) for r in rows)

            return run

        for index, order in (("jobs_next", "id"), ("jobs_next_smallest", "size, id")):
            for where in ("priority > 0", "priority <= 0"):
                found = await store.run(plan(index, order, where))
                assert f"COVERING INDEX {index}" in found and "TEMP B-TREE" not in found, (
                    found
                )  # no scan, no sort
        assert len(await store.known_versions("r")) == 10_000
    finally:
        await store.close()


async def test_a_restart_offers_no_known_file_to_the_queue_again(harness: Harness) -> None:
    for i in range(30):
        write(harness.watch / f"day{i % 3}" / f"c{i:02d}.mov", os.urandom(100 + i))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 30, what="thirty delivered")
    before = len(added(harness))
    engine = await harness.restart()
    await engine.scan_now()
    assert engine.settling() == 0  # known versions are not even waited for
    await engine.scan_now()
    assert len(added(harness)) == before and len(harness.remote_files()) == 30


# ---- watcher at scale ----
async def test_polling_alone_finds_everything_when_events_are_off(harness: Harness) -> None:
    harness.env["POSTFLOW_USE_EVENTS"] = "0"
    engine = await harness.start()
    assert engine._watcher._observer is None
    files = {f"A/B{i}/C/clip{i}.mov": os.urandom(2000 + i) for i in range(5)}
    for rel, data in files.items():
        write(harness.watch / rel, data)
    await wait_for(lambda: len(harness.delivered()) == 5, what="found by scanning alone")
    found = {p.removeprefix("Demo Project/Incoming/"): f["sha256"] for p, f in harness.delivered().items()}
    assert found == {rel: sha(data) for rel, data in files.items()}


async def test_an_event_makes_a_look_at_one_folder_and_our_own_reads_make_none(harness: Harness) -> None:
    for i in range(20):
        write(harness.watch / f"other{i}" / "x.mov", os.urandom(500))
    harness.env["POSTFLOW_SCAN_INTERVAL"] = "3600"  # the safety net stays out of the way
    engine = await harness.start()
    watcher = engine._watcher
    await wait_for(lambda: len(harness.delivered()) == 20, what="first files")
    full, looks = watcher.full_scans, watcher.folder_looks
    write(harness.watch / "new" / "clip.mov", os.urandom(3000))
    await wait_for(lambda: len(harness.delivered()) == 21, what="the new file, from its event")
    assert watcher.full_scans == full
    assert 1 <= watcher.folder_looks - looks <= 4  # its folder (and its parent), not 22 folders
    looks = watcher.folder_looks
    for _ in range(20):  # PostFlow reading a file (an upload, a checksum) is not a change
        for p in harness.watch.rglob("*.mov"):
            p.read_bytes()
    write(harness.watch / "marker.mov", os.urandom(10))  # then a real change, to see the looks settle
    await wait_for(lambda: len(harness.delivered()) == 22, what="the real change")
    assert watcher.folder_looks - looks <= 2 and watcher.full_scans == full


async def test_an_empty_file_does_not_keep_the_watcher_busy(harness: Harness) -> None:
    harness.env["POSTFLOW_SCAN_INTERVAL"] = "3600"
    (harness.watch / "empty.mov").touch()
    engine = await harness.start()
    await wait_for(lambda: engine.settling() == 1, what="seen")
    assert engine._watcher._next_wait() > 60  # nothing to look at soon: it sleeps
    assert [(f.rel_path, f.size, f.held) for f in engine.settling_files()] == [("empty.mov", 0, "")]


# ---- moves, deletions, replacements ----
async def test_a_delivered_file_moved_and_renamed_is_not_uploaded_again(harness: Harness) -> None:
    data = os.urandom(4000)
    write(harness.watch / "clip.mov", data)
    engine = await harness.start()
    await wait_for(lambda: done_count(engine, 1), what="done (verified, not just uploaded)")
    (harness.watch / "Selects").mkdir()
    os.rename(harness.watch / "clip.mov", harness.watch / "Selects" / "hero.mov")  # mtime kept
    await wait_for(lambda: jobs_at(engine, "Selects/hero.mov"), what="recorded as moved")
    [job] = await jobs_at(engine, "Selects/hero.mov")
    assert job.state is JobState.DONE and job.note and "Moved from clip.mov" in job.note
    await engine.scan_now()
    assert len(harness.remote_files()) == 1 and len(await engine.jobs()) == 1
    # Frame.io keeps the file where it was (mirroring is off by default)
    assert list(harness.delivered()) == ["Demo Project/Incoming/clip.mov"]


async def test_a_file_moved_while_postflow_was_stopped_is_not_uploaded_again(harness: Harness) -> None:
    write(harness.watch / "clip.mov", os.urandom(4000))
    write(harness.watch / "copied.mov", os.urandom(4100))
    engine = await harness.start()
    await wait_for(lambda: done_count(engine, 2), what="both done (not just uploaded: verified)")
    await harness.engine.stop()  # type: ignore[union-attr]
    (harness.watch / "Selects").mkdir()
    os.rename(harness.watch / "clip.mov", harness.watch / "Selects" / "hero.mov")
    shutil.copy2(harness.watch / "copied.mov", harness.watch / "Selects" / "copy.mov")  # a copy is new
    engine = await harness.start()
    await wait_for(lambda: jobs_at(engine, "Selects/hero.mov"), what="recorded as moved")
    [job] = await jobs_at(engine, "Selects/hero.mov")
    assert job.state is JobState.DONE and job.note and "Moved from clip.mov" in job.note
    await wait_for(lambda: len(harness.delivered()) == 3, what="the copy delivered")
    assert sorted(harness.delivered()) == [
        "Demo Project/Incoming/Selects/copy.mov", "Demo Project/Incoming/clip.mov",
        "Demo Project/Incoming/copied.mov",
    ]  # fmt: skip
    assert sorted(j.rel_path for j in await engine.jobs()) == [
        "Selects/copy.mov",
        "Selects/hero.mov",
        "copied.mov",
    ]


async def test_a_move_is_mirrored_on_frame_io_when_asked(harness: Harness) -> None:
    harness.env["POSTFLOW_MIRROR_MOVES"] = "1"
    data = os.urandom(4000)
    write(harness.watch / "clip.mov", data)
    write(harness.watch / "Selects" / "keep.mov", os.urandom(10))  # the folder exists on Frame.io
    engine = await harness.start()
    await wait_for(lambda: done_count(engine, 2), what="both done (not just uploaded: verified)")
    os.rename(harness.watch / "clip.mov", harness.watch / "Selects" / "hero.mov")
    await wait_for(lambda: "Demo Project/Incoming/Selects/hero.mov" in harness.delivered(), what="mirrored")
    moved = harness.delivered()["Demo Project/Incoming/Selects/hero.mov"]
    assert moved["sha256"] == sha(data) and len(harness.remote_files()) == 2
    [job] = await jobs_at(engine, "Selects/hero.mov")
    assert job.state is JobState.DONE


async def test_a_file_deleted_while_queued_leaves_the_queue_with_a_note(harness: Harness) -> None:
    write(harness.watch / "other" / "keep.txt", b"the folder is not empty (an empty one looks unmounted)")
    engine = await harness.start()
    await engine.pause_all()
    clip = write(harness.watch / "clip.mov", os.urandom(5000))
    await wait_for(lambda: jobs_at(engine, "clip.mov"), what="queued")
    clip.unlink()

    async def ended() -> bool:
        return any(j.state is JobState.CANCELLED for j in await jobs_at(engine, "clip.mov"))

    await wait_for(ended, what="left the queue")
    [job] = await jobs_at(engine, "clip.mov")
    assert job.state is JobState.CANCELLED and job.last_error == GONE_NOTE
    await engine.resume_all()
    await engine.scan_now()
    assert harness.remote_files() == []


async def test_a_file_replaced_while_uploading_ends_as_its_new_version(harness: Harness) -> None:
    old, new = os.urandom(600_000), os.urandom(500_000)
    clip = write(harness.watch / "clip.mov", old)
    harness.env["POSTFLOW_PARTS_PER_FILE"] = "1"
    engine = await harness.start()
    http = engine._uploader._http
    real_put = http.put
    puts: list[str] = []

    async def replacing_put(url: str, **kw: Any) -> Any:
        puts.append(url)
        if len(puts) == 1:  # the editor re-exports the file while its first part is on its way
            tmp = clip.with_name("clip.mov.tmp")
            tmp.write_bytes(new)
            os.replace(tmp, clip)
        return await real_put(url, **kw)

    http.put = replacing_put  # type: ignore[method-assign]

    async def settled() -> bool:
        return sorted(j.state.value for j in await engine.jobs()) == ["cancelled", "done"]

    await wait_for(settled, what="the old version cancelled, the new one delivered")
    assert [(f["status"] != "created", f["sha256"]) for f in harness.remote_files()] == [(True, sha(new))]


# ---- names ----
async def test_the_nfd_and_nfc_names_of_one_file_are_one_file(harness: Harness) -> None:
    nfd = unicodedata.normalize("NFD", "Séquence café.mov")
    nfc = unicodedata.normalize("NFC", nfd)
    data = os.urandom(3000)
    write(harness.watch / nfd, data)
    engine = await harness.start()
    await wait_for(lambda: done_count(engine, 1), what="done (verified, not just uploaded)")
    assert list(harness.delivered()) == [f"Demo Project/Incoming/{nfc}"]
    os.rename(harness.watch / nfd, harness.watch / nfc)  # another machine spells it the other way
    await engine.scan_now()
    await engine.scan_now()
    assert len(harness.remote_files()) == 1 and len(await engine.jobs()) == 1
    assert [j.rel_path for j in await engine.jobs()] == [nfc]


async def test_a_name_that_is_not_text_fails_plainly_and_its_neighbours_go(harness: Harness) -> None:
    """Bytes that are not UTF-8 (a Linux or SMB volume allows them) cannot be sent to Frame.io
    faithfully: that file fails with a sentence saying so, the files found with it are
    delivered, and a restart does not queue it again."""
    os.makedirs(harness.watch / "day")
    with open(os.fsencode(harness.watch / "day") + b"/clip\xff.mov", "wb") as bad:
        bad.write(os.urandom(2000))
    write(harness.watch / "day" / "fine.mov", os.urandom(2100))
    engine = await harness.start()
    await wait_for(lambda: len(harness.delivered()) == 1, what="the good file delivered")

    async def failed() -> Any:
        return next((j for j in await engine.jobs() if j.state is JobState.FAILED), None)

    job = await wait_for(failed, what="the bad name failed")
    assert job.rel_path == "day/clip\ufffd.mov" and job.error_title == "Name Frame.io would refuse"
    assert "not valid text" in (job.last_error or "") and "Rename it" in (job.last_error or "")
    assert list(harness.delivered()) == ["Demo Project/Incoming/day/fine.mov"]
    engine = await harness.restart()
    await engine.scan_now()
    assert len(await engine.jobs()) == 2 and len(harness.remote_files()) == 1


def test_folder_times_are_trusted_once_the_volume_has_shown_it_keeps_them(tmp_path: Path) -> None:
    from app.core.roots import make_root
    from app.engine.file_filter import FileFilter
    from app.engine.tree_scan import TRUST_AFTER_SCANS, TreeState

    root_dir = tmp_path / "fs"
    for i in range(10):
        write(root_dir / f"d{i}" / "c.mov", b"x" * (i + 1))
    past = time.time() - 60
    for d in [root_dir, *root_dir.iterdir()]:
        os.utime(d, (past, past))
    tree, f = TreeState(make_root(str(root_dir), "P")), FileFilter.of([".mov"], [])
    assert len(tree.full_scan(f).changed) == 10
    for _ in range(TRUST_AFTER_SCANS - 1):
        assert not tree.full_scan(f)
    assert tree.trust_mtimes is True
    tree.listed = 0
    assert not tree.full_scan(f) and tree.listed == 0  # nothing listed: only known files looked at
    clip = root_dir / "d3" / "c.mov"
    st = clip.stat()
    clip.write_bytes(b"rewritten in place")  # the folder's time does not move
    os.utime(root_dir / "d3", (past, past))
    assert [c.rel_path for c in tree.full_scan(f).changed] == ["d3/c.mov"]
    write(root_dir / "d5" / "new.mov", b"new")  # the folder's time moves: it is listed
    diff = tree.full_scan(f)
    assert [c.rel_path for c in diff.changed] == ["d5/new.mov"] and tree.listed == 1
    assert st.st_size != clip.stat().st_size


def test_a_case_insensitive_volume_keeps_one_identity_per_file(tmp_path: Path) -> None:
    from app.core.roots import make_root
    from app.engine.file_filter import FileFilter
    from app.engine.tree_scan import TreeState

    root_dir = tmp_path / "fs"
    clip = write(root_dir / "Clip.MOV", b"x" * 10)
    tree, f = TreeState(make_root(str(root_dir), "P")), FileFilter.of([".mov"], [])
    tree.case_insensitive = True  # as a macOS or Windows volume (this one is not)
    assert [c.rel_path for c in tree.full_scan(f).changed] == ["Clip.MOV"]
    st = clip.stat()
    os.rename(clip, root_dir / "clip.mov")
    os.utime(root_dir / "clip.mov", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not tree.full_scan(f)  # the same file: nothing to queue, nothing moved
    after_restart = TreeState(make_root(str(root_dir), "P"))
    after_restart.case_insensitive = True
    after_restart.expect([("Clip.MOV", st.st_size, st.st_mtime_ns)])  # the queue knows the old spelling
    assert not after_restart.full_scan(f)  # renamed by case while stopped: still known


def test_a_folder_unreadable_for_a_moment_keeps_its_files(tmp_path: Path, monkeypatch: Any) -> None:
    from app.core.roots import make_root
    from app.engine import tree_scan
    from app.engine.file_filter import FileFilter

    root_dir = tmp_path / "fs"
    write(root_dir / "A" / "c.mov", b"x")
    write(root_dir / "B" / "d.mov", b"y")
    tree, f = tree_scan.TreeState(make_root(str(root_dir), "P")), FileFilter.of([".mov"], [])
    tree.full_scan(f)
    real_scandir = os.scandir

    def flaky(path: Any) -> Any:  # a network volume's hiccup (tests run as root: chmod cannot do it)
        if str(path).endswith("/A"):
            raise OSError(5, "Input/output error")
        return real_scandir(path)

    monkeypatch.setattr(tree_scan.os, "scandir", flaky)
    assert not tree.full_scan(f).removed  # full scan: A's file is not "deleted"
    assert not tree.scan_dirs(["A"], f).removed  # a look at A alone neither
    monkeypatch.setattr(tree_scan.os, "scandir", real_scandir)
    (root_dir / "A" / "c.mov").unlink()
    assert list(tree.scan_dirs(["A"], f).removed) == ["A/c.mov"]  # readable again: now it is gone


# ---- the media-complete gate ----
@needs_ffmpeg
async def test_a_stalled_half_written_mov_waits_however_long_its_size_stays_still(
    harness: Harness, tmp_path: Path
) -> None:
    whole = make_mov(tmp_path / "made.mov")
    clip = write(harness.watch / "render.mov", whole[: len(whole) // 2])  # the encoder stalled here
    engine = await harness.start()  # stability window 0.3 s
    await wait_for(lambda: any(f.held for f in engine.settling_files()), what="held")
    [held] = engine.settling_files()
    assert "render has not finished" in held.held or "still being written" in held.held
    deadline = time.monotonic() + 10 * 0.3  # ten whole windows, size unchanged
    while time.monotonic() < deadline:
        await engine.scan_now()
    assert await engine.jobs() == [] and harness.remote_files() == []
    clip.write_bytes(whole)  # the render finishes
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered once complete")
    assert harness.delivered()["Demo Project/Incoming/render.mov"]["sha256"] == sha(whole)


@needs_ffmpeg
async def test_a_complete_mov_goes_after_the_quiet_period_not_the_whole_window(
    harness: Harness, tmp_path: Path
) -> None:
    harness.env.update(POSTFLOW_STABLE_SECONDS="120", POSTFLOW_QUIET_SECONDS="0.3")
    engine = await harness.start()
    whole = make_mov(tmp_path / "made.mov")
    write(harness.watch / "finished.mov", whole)
    write(harness.watch / "notes.wav", os.urandom(4000))  # not judged: waits the whole window
    await wait_for(lambda: len(harness.delivered()) == 1, timeout=60, what="the MOV, well before 120 s")
    assert list(harness.delivered()) == ["Demo Project/Incoming/finished.mov"]
    assert [f.rel_path for f in engine.settling_files()] == ["notes.wav"]


async def test_a_done_marker_holds_a_file_until_it_appears(harness: Harness) -> None:
    harness.root_options = {"done_marker": ".done"}
    write(harness.watch / "A" / "clip.mov", os.urandom(2000))
    engine = await harness.start()
    await wait_for(lambda: any(f.held for f in engine.settling_files()), what="held")
    assert engine.settling_files()[0].held == "waiting for clip.mov.done"
    await engine.scan_now()
    assert harness.remote_files() == []
    write(harness.watch / "A" / "clip.mov.done", b"")
    await wait_for(lambda: len(harness.delivered()) == 1, what="delivered once marked done")
    assert list(harness.delivered()) == ["Demo Project/Incoming/A/clip.mov"]  # the marker is not uploaded


def test_render_temporaries_are_ignored_by_default() -> None:
    from app.core.settings import DEFAULT_EXTENSIONS, DEFAULT_IGNORE
    from app.engine.file_filter import FileFilter

    f = FileFilter.of(DEFAULT_EXTENSIONS, DEFAULT_IGNORE)
    for name in ("clip.mov.prtemp", "clip.tmp.mov", "~clip.mov", "clip.mov.part", "x.aep.tmp"):
        assert not f.accepts(name), name
    for folder in ("Adobe Premiere Pro Video Previews", "CacheClip", "Adobe After Effects Auto-Save"):
        assert f.ignores_dir(folder), folder
    assert f.accepts("SHOW_SC010_v003.mov") and not f.ignores_dir("Day 01")
