"""The bandwidth timetable (pure): which limit holds at a given local moment, and when it changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.core.bandwidth_schedule import describe_rate, limit_at, next_change, parse_rule, parse_rules
from app.core.errors import ConfigError

PARIS = ZoneInfo("Europe/Paris")
MB = 1000**2
DEFAULT = 50 * MB
RULES = parse_rules(["Mon-Fri 09:00-19:00 20MB/s", "Fri 22:00-06:00 unlimited", "Sat,Sun 10:00-14:00 5MB/s"])


def at(text: str, tz: ZoneInfo | timezone = PARIS) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("moment", "rate", "rule"),
    [
        ("2026-12-07 08:59:59", DEFAULT, None),  # a Monday, a second before the working day
        ("2026-12-07 09:00:00", 20 * MB, 0),
        ("2026-12-07 18:59:59", 20 * MB, 0),
        ("2026-12-07 19:00:00", DEFAULT, None),
        ("2026-12-11 23:30:00", 0, 1),  # Friday night: unlimited
        ("2026-12-12 00:00:00", 0, 1),  # across midnight, into Saturday
        ("2026-12-12 05:59:00", 0, 1),
        ("2026-12-12 06:00:00", DEFAULT, None),
        ("2026-12-12 10:00:00", 5 * MB, 2),
        ("2026-12-13 13:59:00", 5 * MB, 2),  # Sunday
        ("2026-12-14 00:30:00", DEFAULT, None),  # Sunday night is not Friday night
        ("2026-12-08 02:00:00", DEFAULT, None),  # Monday night neither
    ],
)
def test_the_limit_in_force(moment: str, rate: int, rule: int | None) -> None:
    limit = limit_at(RULES, at(moment), DEFAULT)
    assert limit.rate == rate
    assert limit.rule is (None if rule is None else RULES[rule])


def test_a_dst_change_keeps_wall_clock_times() -> None:
    rules = parse_rules(["Sun 01:00-09:00 1MB/s"])
    # 2026-03-29: Paris jumps from 02:00 to 03:00. 08:59 is still limited, 09:00 is not.
    assert limit_at(rules, at("2026-03-29 08:59"), DEFAULT).rate == MB
    assert limit_at(rules, at("2026-03-29 09:00"), DEFAULT).rate == DEFAULT
    # The instant one second after 01:59:59 CET is 03:00:00 CEST: still inside the range.
    before = at("2026-03-29 01:59:59")
    after = (before.astimezone(UTC) + timedelta(seconds=1)).astimezone(PARIS)
    assert after.hour == 3 and limit_at(rules, after, DEFAULT).rate == MB
    # And in autumn (2026-10-25, 03:00 back to 02:00) both 02:30s are inside.
    first = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=0)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS, fold=1)
    assert limit_at(rules, first, DEFAULT).rate == MB == limit_at(rules, second, DEFAULT).rate


def test_next_change_is_the_next_wall_clock_boundary() -> None:
    assert next_change(RULES, at("2026-12-07 08:59")) == at("2026-12-07 09:00")
    assert next_change(RULES, at("2026-12-07 09:00")) == at("2026-12-07 19:00")
    assert next_change(RULES, at("2026-12-11 20:00")) == at("2026-12-11 22:00")
    assert next_change(RULES, at("2026-12-11 23:00")) == at("2026-12-12 06:00")
    assert next_change((), at("2026-12-11 23:00")) is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("weekdays 9-5 fast", "not understood"),
        ("Mon-Fro 09:00-19:00 20MB/s", "'mon-fro' is not a day"),
        ("Mon 25:00-26:00 1MB/s", "not a time of day"),
        ("Mon 09:00-09:00 1MB/s", "empty"),
        ("Mon 09:00-10:00 20 furlongs/s", "unit 'furlongs/s' unknown"),
        ("Mon 09:00-10:00 0MB/s", "above 0"),
    ],
)
def test_bad_rules_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_rule(text)


def test_rules_read_as_written() -> None:
    rule = parse_rule("sat-mon 22:00-24:00 100 Mbit/s")
    assert rule.days == {5, 6, 0} and rule.rate == 12_500_000
    assert parse_rule("daily 00:00-06:00 unlimited").days == set(range(7))
    sunday = parse_rules(["Sun 00:00-24:00 1MB/s"])
    assert limit_at(sunday, at("2026-12-13 00:00"), DEFAULT).rate == MB
    assert limit_at(sunday, at("2026-12-13 23:59:59"), DEFAULT).rate == MB
    assert limit_at(sunday, at("2026-12-14 00:00"), DEFAULT).rate == DEFAULT
    assert next_change(sunday, at("2026-12-13 12:00")) == at("2026-12-14 00:00")
    assert (describe_rate(20 * MB), describe_rate(0), describe_rate(500_000)) == (
        "20 MB/s",
        "unlimited",
        "500 KB/s",
    )


async def test_the_timetable_sets_the_shared_limit_live_and_says_so_while_limiting() -> None:
    from app.engine.bandwidth import BandwidthLimiter
    from app.engine.bandwidth_timetable import BandwidthTimetable

    now = [at("2026-12-07 08:59:59")]
    limiter = BandwidthLimiter(DEFAULT)
    table = BandwidthTimetable(limiter, clock=lambda: now[0])
    changes: list[int] = []
    table.on_change = lambda: changes.append(limiter.rate)
    table.configure(["Mon-Fri 09:00-19:00 20MB/s"], DEFAULT)
    assert limiter.rate == DEFAULT and table.note() is None
    now[0] = at("2026-12-07 09:00:00")
    table.apply()
    assert limiter.rate == 20 * MB and table.note() == "Limited to 20 MB/s by the schedule until 19:00"
    now[0] = at("2026-12-07 19:00:00")
    table.apply()
    assert limiter.rate == DEFAULT and table.note() is None
    table.configure([], 3 * MB)  # the schedule removed in Settings: the plain limit at once
    assert limiter.rate == 3 * MB and changes == [DEFAULT, 20 * MB, DEFAULT, 3 * MB]


async def test_a_limit_lifted_while_uploads_wait_frees_them_at_once() -> None:
    """At 19:00 the schedule sets the rate to 0 (unlimited) while parts queue for the budget:
    none of them may fail (a division by zero once did), and none waits at the old rate."""
    import asyncio

    from app.engine.bandwidth import BandwidthLimiter

    limiter = BandwidthLimiter(1_000)  # 1 KB/s: each 10 KB consumer would wait 10 s
    waiting = [asyncio.ensure_future(limiter.consume(10_000)) for _ in range(4)]
    await asyncio.sleep(0.1)
    limiter.rate = 0
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert asyncio.get_running_loop().time() - started < 2


def test_the_tooltip_names_when_the_limit_really_lifts() -> None:
    from app.engine.bandwidth import BandwidthLimiter
    from app.engine.bandwidth_timetable import BandwidthTimetable

    now = [at("2026-12-07 10:00")]  # a Monday
    table = BandwidthTimetable(BandwidthLimiter(0), clock=lambda: now[0])
    # a rule shadowed by the first one ends at 12:00: the limit still holds until 19:00
    table.configure(["Mon-Fri 09:00-19:00 20MB/s", "Mon 11:00-12:00 5MB/s"], 0)
    assert table.note() == "Limited to 20 MB/s by the schedule until 19:00"
    table.configure(["Sat,Sun 00:00-24:00 5MB/s"], 0)
    now[0] = at("2026-12-12 10:00")  # Saturday: the weekend rule goes on until Monday 00:00
    table.apply()
    assert table.note() == "Limited to 5 MB/s by the schedule until Mon 00:00"


@pytest.mark.parametrize(
    ("unit", "rate"),
    [("MB/s", 20 * MB), ("Mbit/s", 2_500_000), ("Mb/s", 2_500_000), ("Mbps", 2_500_000), ("KB/s", 20_000)],
)
def test_bytes_are_capital_b_and_bits_small_b(unit: str, rate: int) -> None:
    assert parse_rule(f"Mon 09:00-10:00 20{unit}").rate == rate


def test_an_ambiguous_unit_is_refused_with_both_readings() -> None:
    with pytest.raises(ConfigError, match=r"megabytes: MB/s; megabits: Mbit/s"):
        parse_rule("Mon 09:00-10:00 20mb/s")
