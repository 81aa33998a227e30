"""Version stacks end to end (issue 20): renders v001, v002, v003 land in one Frame.io version
stack in version order, whatever order they arrive in, across restarts and when versions finish
together; checked on the sandbox with the official ``frameio`` SDK."""

from __future__ import annotations

import os
from typing import Any

import httpx
from engine_harness import Harness, wait_for, write
from frameio import Frameio

from app.core.jobs import JobState
from app.engine.service import EngineService

SETTLED = ("stacked", "alone", "failed")


def sdk(harness: Harness, http: httpx.Client) -> Frameio:
    return Frameio(base_url=harness.sandbox.url, token=harness.sandbox.token(), httpx_client=http)


async def settled(engine: EngineService, count: int) -> list[Any]:
    """Every delivered versioned job has joined its stack (or was found alone)."""

    async def done() -> list[Any] | None:
        jobs = [j for j in await engine.jobs() if j.state is JobState.DONE and j.version is not None]
        ready = len(jobs) == count and all(j.stack_state in SETTLED for j in jobs)
        return jobs if ready else None

    result: list[Any] = await wait_for(done, 60, f"{count} versions settled in their stack")
    return result


def stacks_of(harness: Harness) -> list[list[str]]:
    """Each version stack in the seeded root's "Incoming" folder: its files' names, oldest first,
    read with the official SDK (the head must be last)."""

    def read() -> list[list[str]]:
        with httpx.Client(timeout=10) as http:
            return read_with(sdk(harness, http))

    def read_with(client: Frameio) -> list[list[str]]:
        files = harness.sandbox.files()
        account = harness.sandbox.control("/_sandbox/health")["seed_account_id"]
        stack_ids = sorted({f["version_stack_id"] for f in files if f["version_stack_id"]})
        out = []
        for stack_id in stack_ids:
            names = [f.name for f in client.version_stacks.index(account, stack_id)]
            head = client.version_stacks.show(account, stack_id).data.head_version
            assert head is not None and head.name == names[-1], (head, names)
            out.append(names)
        return out

    return read()


async def deliver(harness: Harness, engine: EngineService, names: list[str], total: int) -> None:
    for name in names:
        write(harness.watch / name, os.urandom(3000 + len(name)))
    await wait_for(lambda: len(harness.delivered()) == total, 60, f"{total} delivered")


async def test_three_versions_in_order_make_one_stack(harness: Harness) -> None:
    engine = await harness.start()
    for n, name in enumerate(["SC010_v001.mov", "SC010_v002.mov", "SC010_v003.mov"], start=1):
        await deliver(harness, engine, [name], n)
        await settled(engine, n)
    assert stacks_of(harness) == [["SC010_v001.mov", "SC010_v002.mov", "SC010_v003.mov"]]
    jobs = {j.name: j for j in await engine.jobs()}
    assert jobs["SC010_v003.mov"].note == "Stacked on v002."
    view = engine.view(jobs["SC010_v003.mov"])
    assert view.name_fields == (("version", "v003"),) and view.folder == ""
    assert jobs["SC010_v001.mov"].stack_state == "stacked" and jobs["SC010_v001.mov"].version == 1


async def test_out_of_order_arrivals_end_in_version_order(harness: Harness) -> None:
    engine = await harness.start()
    for n, name in enumerate(["SC020_v001.mov", "SC020_v003.mov", "SC020_v002.mov"], start=1):
        await deliver(harness, engine, [name], n)
        await settled(engine, n)
    assert stacks_of(harness) == [["SC020_v001.mov", "SC020_v002.mov", "SC020_v003.mov"]]
    note = {j.name: j.note for j in await engine.jobs()}["SC020_v002.mov"]
    assert note == "Stacked on v001, below v003."


async def test_two_versions_finishing_together_and_a_restart(harness: Harness) -> None:
    engine = await harness.start()
    await deliver(harness, engine, ["Promo_v1.mov"], 1)
    await settled(engine, 1)
    engine = await harness.restart()
    await deliver(harness, engine, ["Promo_v3.mov", "Promo_v2.mov"], 3)  # at the same moment
    await settled(engine, 3)
    assert stacks_of(harness) == [["Promo_v1.mov", "Promo_v2.mov", "Promo_v3.mov"]]


async def test_different_renders_and_folders_are_different_stacks(harness: Harness) -> None:
    engine = await harness.start()
    names = ["A_v1.mov", "A_v2.mov", "B_v1.mov", "B_v2.mov", "A_v1.wav", "Day2/A_v3.mov", "plain.mov"]
    await deliver(harness, engine, names, len(names))
    await settled(engine, len(names) - 1)  # plain.mov has no version: nothing to stack
    assert sorted(stacks_of(harness)) == [["A_v1.mov", "A_v2.mov"], ["B_v1.mov", "B_v2.mov"]]
    states = {j.rel_path: j.stack_state for j in await engine.jobs()}
    assert (
        states["A_v1.wav"] == "alone" and states["Day2/A_v3.mov"] == "alone" and states["plain.mov"] is None
    )


async def test_stacking_can_be_turned_off_per_folder(harness: Harness) -> None:
    harness.root_options["stack_versions"] = False
    engine = await harness.start()
    await deliver(harness, engine, ["X_v1.mov", "X_v2.mov"], 2)

    async def done() -> bool:
        return all(j.state is JobState.DONE for j in await engine.jobs())

    await wait_for(done, 30, "both done")
    assert {(j.version, j.stack_state) for j in await engine.jobs()} == {(1, None), (2, None)}
    assert stacks_of(harness) == []


async def test_a_comment_from_the_template_on_each_upload(harness: Harness) -> None:
    harness.root_options["comment"] = "{shot} {version} from {machine}: {name}"
    harness.root_options["naming"] = ("(?P<shot>SC\\d+)_v(?P<version>\\d+)", "versioned")
    harness.env["POSTFLOW_MACHINE_NAME"] = "Edit Bay 3"
    engine = await harness.start()
    await deliver(harness, engine, ["SC030_v004.mov"], 1)

    async def posted() -> list[str] | None:
        jobs = await engine.jobs()
        if not jobs or jobs[0].remote_file_id is None:
            return None
        account = harness.sandbox.control("/_sandbox/health")["seed_account_id"]
        with httpx.Client(timeout=10) as http:
            texts = [c.text for c in sdk(harness, http).comments.index(account, jobs[0].remote_file_id)]
        return texts or None

    assert await wait_for(posted, 30, "the comment") == ["SC030 v004 from Edit Bay 3: SC030_v004.mov"]
    await engine.scan_now()
    engine = await harness.restart()  # posted once, never again
    await settled(engine, 1)
    assert await posted() == ["SC030 v004 from Edit Bay 3: SC030_v004.mov"]


async def test_thirty_shots_at_once_keep_the_version_stack_limit(harness: Harness) -> None:
    """30 shots each delivered as v001 and v002 together: 30 stacks, made within Frame.io's 10
    creates a minute (windows shrunk 20× here, the headers saying so), without one 429."""
    harness.sandbox.control("/_sandbox/settings", {"rate_window_scale": 0.05})
    engine = await harness.start()
    names = [f"SH{n:03d}_v00{v}.mov" for n in range(30) for v in (1, 2)]
    await deliver(harness, engine, names, 60)
    await settled(engine, 60)
    stacks = stacks_of(harness)
    assert sorted(stacks) == [[f"SH{n:03d}_v001.mov", f"SH{n:03d}_v002.mov"] for n in range(30)]
    stats = harness.sandbox.control("/_sandbox/stats")
    assert stats.get("version_stacks.create") == 30, stats
    assert not any(k.startswith("429:") for k in stats), stats
    assert not [j for j in await engine.jobs() if j.stack_state == "failed"]


async def test_routing_by_a_parsed_field_puts_shots_in_their_own_folders(harness: Harness) -> None:
    harness.root_options.update(naming=("shot_task",), route_by="shot")
    engine = await harness.start()
    names = [
        "SHOW_SQ01_SH010_comp_v001.mov",
        "SHOW_SQ01_SH010_comp_v002.mov",
        "SHOW_SQ01_SH020_comp_v001.mov",
        "Day2/SHOW_SQ01_SH020_grade_v001.mov",
        "notes_v1.mov",
    ]
    await deliver(harness, engine, names, len(names))
    await settled(engine, 4)
    assert sorted(harness.delivered()) == [
        "Demo Project/Incoming/Day2/SH020/SHOW_SQ01_SH020_grade_v001.mov",
        "Demo Project/Incoming/SH010/SHOW_SQ01_SH010_comp_v001.mov",
        "Demo Project/Incoming/SH010/SHOW_SQ01_SH010_comp_v002.mov",
        "Demo Project/Incoming/SH020/SHOW_SQ01_SH020_comp_v001.mov",
        "Demo Project/Incoming/notes_v1.mov",  # no shot in its name: where it is
    ]
    assert stacks_of(harness) == [["SHOW_SQ01_SH010_comp_v001.mov", "SHOW_SQ01_SH010_comp_v002.mov"]]


async def test_a_version_moved_elsewhere_on_frame_io_leaves_the_new_one_alone(harness: Harness) -> None:
    """Someone filed v001 into another folder on Frame.io: v002 is not stacked with it (a stack
    lives in one folder) and nothing fails."""
    engine = await harness.start()
    await deliver(harness, engine, ["Spot_v001.mov"], 1)
    await settled(engine, 1)
    [first] = await engine.jobs()
    account = harness.sandbox.control("/_sandbox/health")["seed_account_id"]
    with httpx.Client(timeout=10) as http:
        from frameio.files import FileMoveParamsData
        from frameio.folders import FolderCreateParamsData

        client = sdk(harness, http)
        parent = client.files.show(account, first.remote_file_id).data.parent_id
        archive = client.folders.create(account, parent, data=FolderCreateParamsData(name="_old")).data
        client.files.move(account, first.remote_file_id, data=FileMoveParamsData(parent_id=archive.id))
    await deliver(harness, engine, ["Spot_v002.mov"], 2)
    jobs = {j.name: j for j in await settled(engine, 2)}
    assert jobs["Spot_v002.mov"].stack_state == "alone" and stacks_of(harness) == []


async def test_versions_delivered_before_the_upgrade_are_found_by_the_next_one(harness: Harness) -> None:
    """A queue from a PostFlow without naming rules: its delivered renders get their version at
    the next start, so v002 after the upgrade stacks onto v001 from before it."""
    engine = await harness.start()
    await deliver(harness, engine, ["Old_v001.mov"], 1)
    await settled(engine, 1)

    def forget(db: Any) -> None:  # what an older PostFlow left: no version, no stack key
        db.execute("UPDATE jobs SET version = NULL, stack_key = NULL, stack_state = NULL")
        db.execute("DELETE FROM meta WHERE key = 'versions_backfilled'")

    await engine.store.run(forget)
    engine = await harness.restart()
    assert [j.version for j in await engine.jobs()] == [1]
    await deliver(harness, engine, ["Old_v002.mov"], 2)
    await settled(engine, 2)
    assert stacks_of(harness) == [["Old_v001.mov", "Old_v002.mov"]]
