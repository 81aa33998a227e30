"""Pull mode end to end: sandbox + stand-in cloudflared + engine, Frame.io fetching by Range."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, check_exactly_once, expected_from_disk, wait_for, write_random

from app.core.jobs import JobState
from app.core.logging_setup import SECRETS
from app.pull.range_server import RangeServer
from app.pull.tunnel import TunnelState

CHUNK = 64 * 1024


@pytest.fixture
async def pulling(sandbox: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    sandbox.control("/_sandbox/settings", {"part_size": 256 * 1024, "remote_fetch_chunk": CHUNK,
                                           "remote_fetch_parallel": 4})  # fmt: skip
    h = Harness(sandbox, tmp_path / "watch", POSTFLOW_PULL_READY_TIMEOUT="20")
    h.watch.mkdir()
    h.root_options = {"upload_mode": "pull"}
    yield h
    await h.close()


async def _all_done(h: Harness, count: int, timeout: float = 90) -> None:
    assert h.engine is not None
    engine = h.engine

    async def done() -> bool:
        jobs = await engine.jobs()
        failed = [j for j in jobs if j.state is JobState.FAILED]
        assert not failed, [(j.rel_path, j.last_error) for j in failed]
        return sum(j.state is JobState.DONE for j in jobs) >= count

    await wait_for(done, timeout, f"{count} files delivered")


def _pulled(h: Harness) -> list[dict[str, Any]]:
    return [f for f in h.remote_files() if f["source"] == "remote"]


async def test_ten_files_are_pulled_by_range_with_matching_sha256(pulling: Harness) -> None:
    sizes = [1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 300_000, 512 * 1024, 700_001, 1_000_000, 2_500_000]
    for i, size in enumerate(sizes):
        write_random(pulling.watch / f"shot_{i:02d}.mov", size, seed=i)
    engine = await pulling.start()
    await _all_done(pulling, len(sizes))
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert len(_pulled(pulling)) == len(sizes)  # every one went by pull, none by push
    stats = pulling.sandbox.control("/_sandbox/stats")
    assert stats.get("fetch.head", 0) >= len(sizes)
    assert stats.get("fetch.range_get", 0) >= sum(-(-s // CHUNK) for s in sizes)
    assert stats.get("fetch.get", 0) == 0  # never a plain whole-file GET
    assert engine.pull.server().served == {}  # nothing is published any more


async def test_killing_the_tunnel_mid_transfer_restarts_it_and_the_upload_completes(pulling: Harness) -> None:
    pulling.sandbox.control("/_sandbox/settings", {"remote_fetch_parallel": 1})
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 1.0, "kinds": ["slow"]}})
    path = write_random(pulling.watch / "long_take.mov", 6 * 1024 * 1024, seed=7)
    engine = await pulling.start()

    def halfway() -> bool:
        served = engine.pull.server().served if engine.pull.running else {}
        return any(0 < s.covered < path.stat().st_size // 2 for s in served.values())

    await wait_for(halfway, 60, "the pull under way")
    first = engine.pull.status()
    tunnel = engine.pull._tunnel
    assert tunnel is not None and tunnel.process is not None
    os.kill(tunnel.process.pid, signal.SIGKILL)

    def new_tunnel() -> bool:
        status = engine.pull.status()
        return status.state is TunnelState.READY and status.generation > first.generation

    await wait_for(new_tunnel, 60, "a new tunnel")
    assert engine.pull.status().url != first.url  # a new hostname, as a quick tunnel gets
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 0.0}})
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))  # the broken pull is gone
    assert len(_pulled(pulling)) == 1


async def test_fetcher_faults_are_survived(
    pulling: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens: list[str] = []
    publish = RangeServer.publish

    def recording(self: RangeServer, path: str, lifetime: float) -> Any:
        publication = publish(self, path, lifetime)
        tokens.append(publication.token)
        return publication

    monkeypatch.setattr(RangeServer, "publish", recording)
    caplog.set_level(logging.DEBUG)
    pulling.sandbox.control("/_sandbox/settings", {"stall_seconds": 0.3})
    pulling.sandbox.control(
        "/_sandbox/faults", {"seed": 3, "fetch": {"rate": 0.3, "kinds": ["reset", "stall", "slow"]}}
    )
    for i in range(5):
        write_random(pulling.watch / f"take_{i}.mov", 200_000 + i * 150_000, seed=20 + i)
    await pulling.start()
    await _all_done(pulling, 5, timeout=120)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert pulling.sandbox.control("/_sandbox/faults")["injected"]["fetch"] > 0
    assert pulling.sandbox.control("/_sandbox/stats").get("fetch.retry", 0) > 0
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app."))
    assert len(tokens) >= 5 and not [t for t in tokens if t in logged]  # the app never logs a link
    assert SECRETS.redact(f"GET /{tokens[-1]}") == f"GET /{tokens[-1]}"  # a dead link is not kept


async def test_a_file_changing_while_pulled_is_never_delivered_mixed(pulling: Harness) -> None:
    pulling.sandbox.control("/_sandbox/settings", {"remote_fetch_parallel": 1})
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 1.0, "kinds": ["slow"]}})
    path = write_random(pulling.watch / "graded.mov", 4 * 1024 * 1024, seed=1)
    engine = await pulling.start()

    def under_way() -> bool:
        served = engine.pull.server().served if engine.pull.running else {}
        return any(s.covered > 0 for s in served.values())

    await wait_for(under_way, 60, "the pull under way")
    write_random(path, 4 * 1024 * 1024, seed=2)  # re-rendered in place
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 0.0}})

    async def new_version_done() -> bool:
        jobs = await engine.jobs()
        return any(j.state is JobState.DONE for j in jobs) and any(
            j.state is JobState.CANCELLED for j in jobs
        )

    await wait_for(new_version_done, 90, "the first version cancelled, the new one delivered")
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))


async def test_auto_mode_pushes_while_the_tunnel_cannot_run(pulling: Harness, tmp_path: Path) -> None:
    pulling.env["POSTFLOW_CLOUDFLARED"] = str(tmp_path / "no-such-cloudflared")
    pulling.root_options = {"upload_mode": "auto"}
    write_random(pulling.watch / "a.mov", 100_000, seed=5)
    engine = await pulling.start()
    await _all_done(pulling, 1)
    assert len(_pulled(pulling)) == 0 and len(pulling.delivered()) == 1
    tunnel = engine.health_monitor.get("tunnel")
    assert tunnel is not None and not tunnel.ok and "cloudflared was not found" in (tunnel.message or "")


async def test_pull_mode_waits_for_the_tunnel_and_says_why(pulling: Harness, tmp_path: Path) -> None:
    pulling.env["POSTFLOW_CLOUDFLARED"] = str(tmp_path / "no-such-cloudflared")
    write_random(pulling.watch / "a.mov", 100_000, seed=5)
    engine = await pulling.start()

    async def waiting() -> Any:
        jobs = await engine.jobs()
        return jobs and jobs[0].last_error and jobs[0]

    job = await wait_for(waiting, 30, "the job waiting for the tunnel")
    assert job.state in (JobState.PENDING, JobState.UPLOADING) and "cloudflared" in job.last_error
    assert pulling.delivered() == {}


async def test_a_restart_mid_pull_deletes_the_unfinished_file_and_pulls_once_more(pulling: Harness) -> None:
    pulling.sandbox.control("/_sandbox/settings", {"remote_fetch_parallel": 1})
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 1.0, "kinds": ["slow"]}})
    write_random(pulling.watch / "overnight.mov", 4 * 1024 * 1024, seed=11)
    engine = await pulling.start()

    def under_way() -> bool:
        return engine.pull.running and any(s.covered > 0 for s in engine.pull.server().served.values())

    await wait_for(under_way, 60, "the pull under way")
    first = next(f["id"] for f in _pulled(pulling))
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 0.0}})
    await pulling.restart()
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert first not in {f["id"] for f in pulling.remote_files()}  # the broken pull was removed


async def test_a_lost_answer_to_the_pull_request_leaves_no_duplicate(pulling: Harness) -> None:
    pulling.env["POSTFLOW_LISTING_SETTLE"] = "0.5"
    pulling.sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "lost", "only": "files.create_remote_upload"}}
    )
    write_random(pulling.watch / "lost.mov", 300_000, seed=12)
    engine = await pulling.start()
    engine._puller._push.outcome_wait = 0.2
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert pulling.sandbox.control("/_sandbox/faults")["injected"]["api"] == 1


async def test_an_answer_lost_after_frameio_fetched_everything_is_adopted_not_pulled_twice(
    pulling: Harness,
) -> None:
    """The create is carried out and the file fetched while the answer is held, then the
    connection drops: the file Frame.io made is found and kept, not deleted and pulled again."""
    pulling.env["POSTFLOW_LISTING_SETTLE"] = "0.5"
    pulling.sandbox.control("/_sandbox/settings", {"stall_seconds": 1.5})
    pulling.sandbox.control(
        "/_sandbox/faults",
        {"api": {"burst": 1, "burst_kind": "lost_late", "only": "files.create_remote_upload"}},
    )
    write_random(pulling.watch / "held.mov", 300_000, seed=13)
    engine = await pulling.start()
    engine._puller._push.outcome_wait = 0.2
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    stats = pulling.sandbox.control("/_sandbox/stats")
    assert stats["files.create_remote_upload"] == 1  # one request, carried out once, kept
    assert [j.remote_file_id for j in await engine.jobs()] == [_pulled(pulling)[0]["id"]]


async def test_one_long_whole_file_get_is_not_taken_for_a_stall(pulling: Harness) -> None:
    """A fetcher that reads the whole file in one slow GET keeps the link alive while bytes flow."""
    pulling.env["POSTFLOW_PULL_STALL_SECONDS"] = "3"  # the one GET takes about 5 s
    pulling.sandbox.control("/_sandbox/settings", {"remote_fetch_chunk": 0})
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 1.0, "kinds": ["slow"]}})
    write_random(pulling.watch / "one_take.mov", 32 * 1024 * 1024, seed=14)  # 5 s: past what sockets buffer
    engine = await pulling.start()
    progress: list[int] = []

    async def done() -> bool:
        jobs = await engine.jobs()
        live = engine._board.live_bytes()
        progress.extend(v for v in live.values() if v)
        return bool(jobs) and jobs[0].state is JobState.DONE

    await wait_for(done, 90, "the slow pull delivered")
    stats = pulling.sandbox.control("/_sandbox/stats")
    assert stats["files.create_remote_upload"] == 1 and stats.get("fetch.get") == 1  # never re-issued
    assert any(0 < p < 32 * 1024 * 1024 for p in progress), progress  # progress moved during the GET
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))


async def test_switching_a_folder_from_pull_to_push_mid_transfer_leaves_one_copy(pulling: Harness) -> None:
    pulling.sandbox.control("/_sandbox/settings", {"remote_fetch_parallel": 1})
    pulling.sandbox.control("/_sandbox/faults", {"fetch": {"rate": 1.0, "kinds": ["slow"]}})
    write_random(pulling.watch / "switch.mov", 4 * 1024 * 1024, seed=15)
    engine = await pulling.start()

    def under_way() -> bool:
        return engine.pull.running and any(s.covered > 0 for s in engine.pull.server().served.values())

    await wait_for(under_way, 60, "the pull under way")
    await engine.set_upload_mode(engine.roots[0].id, "push")
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert _pulled(pulling) == []  # the unfinished pull was removed; the file went by push
    await wait_for(lambda: not engine.pull.running, 30, "the tunnel stopped")


async def test_switching_from_push_to_pull_mid_transfer_removes_the_half_sent_push(pulling: Harness) -> None:
    pulling.root_options = {"upload_mode": "push"}
    pulling.env["POSTFLOW_BANDWIDTH_LIMIT"] = "400000"  # 400 KB/s: the push takes a few seconds
    write_random(pulling.watch / "late_switch.mov", 2 * 1024 * 1024, seed=16)
    engine = await pulling.start()

    async def some_parts_sent() -> bool:
        jobs = await engine.jobs()
        return bool(jobs) and (await engine.store.upload_state(jobs[0].id)).parts_done != frozenset()

    await wait_for(some_parts_sent, 60, "the push under way")
    pushed = next(f["id"] for f in pulling.remote_files())
    await engine.set_upload_mode(engine.roots[0].id, "pull")
    await _all_done(pulling, 1)
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))
    assert [f["source"] for f in pulling.remote_files()] == ["remote"]  # went by pull in the end
    assert pushed not in {f["id"] for f in pulling.remote_files()}


async def test_the_bandwidth_limit_holds_for_pulls_too(pulling: Harness) -> None:
    pulling.env["POSTFLOW_BANDWIDTH_LIMIT"] = "1000000"  # 1 MB/s
    path = write_random(pulling.watch / "capped.mov", 3 * 1000 * 1000, seed=17)
    engine = await pulling.start()
    await wait_for(lambda: engine.pull.ready_now(), 30, "the tunnel up")
    started = asyncio.get_running_loop().time()
    await _all_done(pulling, 1)
    took = asyncio.get_running_loop().time() - started
    assert took >= (path.stat().st_size - 1_000_000) / 1_000_000 * 0.9  # one second of burst allowed
    check_exactly_once(pulling.sandbox, expected_from_disk(pulling.watch))


async def test_behind_a_proxy_the_tunnel_health_says_cloudflared_cannot_use_it(
    pulling: Harness, tmp_path: Path
) -> None:
    pulling.env["POSTFLOW_PROXY"] = "http://127.0.0.1:9"  # no traffic needed: the advice is what counts
    pulling.env["POSTFLOW_CLOUDFLARED"] = str(tmp_path / "no-such-cloudflared")
    engine = await pulling.start()
    await wait_for(lambda: engine.health_monitor.get("tunnel") is not None, 30, "the tunnel's health")
    tunnel = engine.health_monitor.get("tunnel")
    assert tunnel is not None and not tunnel.ok and "ignores HTTPS_PROXY" in (tunnel.action or "")
