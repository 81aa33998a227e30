"""Each health check's red and green paths, run on demand as "Check now" and doctor run them:
a watch volume unmounted, the service stopped, the sign-in expired, the disk nearly full
(a settable threshold). The Discord webhook's paths are in tests/team. And ``postflow doctor``
exits non-zero exactly when a check is red."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from engine_harness import Harness, wait_for
from support_sandbox import RunningSandbox
from tests_auth_helpers import LOOPBACK, follow_authorize

from app.core.events import Health
from app.sandbox.config import SandboxConfig


async def check(harness: Harness, component: str) -> Health:
    assert harness.engine is not None
    items = {h.component: h for h in await harness.engine.check_health()}
    return items[component]


def red(health: Health, *words: str) -> None:
    assert not health.ok, health
    assert health.action, f"{health.component}: a red check says what to do"
    for word in words:
        assert word in (health.message or ""), health


async def test_a_watch_volume_unmounted_is_red_then_green_again(harness: Harness, tmp_path: Path) -> None:
    engine = await harness.start()
    root_id = engine.roots[0].id
    green = await check(harness, f"watch:{root_id}")
    assert green.ok and green.label == f"Watch folder {harness.watch}"
    harness.watch.rename(tmp_path / "unmounted")
    problem = await check(harness, f"watch:{root_id}")
    red(problem, str(harness.watch))
    assert "Mount the filespace" in (problem.action or "")
    again = await check(harness, f"watch:{root_id}")
    assert again.since == problem.since  # unchanged: still red since the first look
    (tmp_path / "unmounted").rename(harness.watch)
    assert (await check(harness, f"watch:{root_id}")).ok


@pytest.fixture
async def stoppable(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A sandbox that can be stopped and started again on the same address, state kept."""
    config = SandboxConfig(state_dir=tmp_path / "sandbox-state", reuse_port=True, transcode_delay=0.05)
    box: dict[str, Any] = {"config": config, "sandbox": RunningSandbox(config).start()}
    yield box
    if box["sandbox"] is not None:
        await asyncio.to_thread(box["sandbox"].stop)


async def test_the_service_stopped_is_red_then_green_when_it_answers_again(
    stoppable: dict[str, Any], tmp_path: Path
) -> None:
    harness = Harness(stoppable["sandbox"], tmp_path / "watch")
    harness.watch.mkdir()
    await harness.start()
    try:
        assert (await check(harness, "network")).ok
        url = stoppable["sandbox"].url
        await asyncio.to_thread(stoppable["sandbox"].stop)
        stoppable["sandbox"] = None
        red(await check(harness, "network"))
        assert "Check the internet connection" in ((await check(harness, "network")).action or "")
        stoppable["sandbox"] = RunningSandbox(stoppable["config"]).start()
        assert stoppable["sandbox"].url == url

        async def answers() -> bool:
            return (await check(harness, "network")).ok

        await wait_for(answers, 30, "network green")
        assert (await check(harness, "network")).message == "Frame.io answers."
    finally:
        await harness.close()


async def test_an_expired_sign_in_is_red_until_signing_in_again(sandbox: Any, tmp_path: Path) -> None:
    sandbox.control("/_sandbox/settings", {"issue_refresh_tokens": False, "access_token_lifetime": 2})
    harness = Harness(sandbox, tmp_path / "watch")
    harness.watch.mkdir()
    await harness.start()
    try:
        fine = await check(harness, "signin")
        assert fine.ok and "Sandbox Editor <editor@sandbox.postflow.invalid>" in (fine.message or "")
        assert "then PostFlow asks you to sign in again" in (fine.message or "")

        async def expired() -> bool:
            return not (await check(harness, "signin")).ok

        await wait_for(expired, 30, "the sign-in to lapse")
        problem = await check(harness, "signin")
        assert "Sign in with Adobe" in (problem.action or "")
        assert "sign in again" in (problem.message or "") or "Signed out" in (problem.message or "")

        sandbox.control("/_sandbox/settings", {"issue_refresh_tokens": True, "access_token_lifetime": 3600})
        assert harness.auth is not None
        flow = harness.auth.auth.new_flow(LOOPBACK)
        await harness.auth.auth.finish(flow, await follow_authorize(flow.authorize_url))
        again = await check(harness, "signin")
        assert again.ok and "renews itself" in (again.message or "")
    finally:
        await harness.close()


async def test_the_disk_nearly_full_by_a_settable_threshold(sandbox: Any, tmp_path: Path) -> None:
    harness = Harness(sandbox, tmp_path / "watch", POSTFLOW_MIN_FREE_MB=str(10**12))  # an exabyte
    harness.watch.mkdir()
    await harness.start()
    try:
        problem = await check(harness, "disk_space")
        red(problem, "MB free on the disk holding PostFlow's", "below the 1000000000000 MB")
        assert "health.min_free_mb" in (problem.action or "")
        harness.env["POSTFLOW_MIN_FREE_MB"] = "1"
        await harness.restart()
        assert (await check(harness, "disk_space")).ok
    finally:
        await harness.close()


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "doctor"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_doctor_exits_non_zero_exactly_when_a_check_is_red(isolated_env: Path, tmp_path: Path) -> None:
    import os

    watch = tmp_path / "Renders"
    watch.mkdir()
    config = isolated_env / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[[watch.roots]]\npath = {json.dumps(str(watch))}\nproject = "Demo Project"\n')
    env = {**os.environ, "POSTFLOW_SANDBOX": "1"}
    fine = doctor(env)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "Everything PostFlow needs is in order." in fine.stdout and "[FAIL]" not in fine.stdout
    assert f"[ok  ] Watch folder {watch}: Readable; files go to Demo Project." in fine.stdout

    full = doctor({**env, "POSTFLOW_MIN_FREE_MB": str(10**12)})
    assert full.returncode == 1 and "[FAIL] Free disk space: Only " in full.stdout
    assert "→ Free some space, or lower health.min_free_mb" in full.stdout

    watch.rename(tmp_path / "gone")
    gone = doctor(env)
    assert gone.returncode == 1 and f"[FAIL] Watch folder {watch}" in gone.stdout
    assert "1 check(s) need attention." in gone.stdout
