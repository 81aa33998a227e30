"""A bandwidth timetable: limits by weekday and time of day, in the computer's local time.

Rules are written as editors say them, one per entry: ``"Mon-Fri 09:00-19:00 20MB/s"``,
``"Sat,Sun 10:00-14:00 5MB/s"``, ``"Mon-Sun 22:00-06:00 unlimited"``. A range that ends at or
before its start runs past midnight and belongs to the day it starts on (Friday 22:00-06:00 is
Friday night into Saturday morning). The first rule that covers a moment wins; outside every
rule the plain ``upload.bandwidth_limit`` applies. Pure: the moment is given, so tests choose
08:59, 09:00, midnight or a DST change, and the engine asks at the boundaries ``next_change``
returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from app.core.errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Capital B is bytes, small b or "bit" is bits, as network people write them; "mb/s" says neither.
UNITS = {
    "B/s": 1, "KB/s": 1000, "kB/s": 1000, "MB/s": 1000**2, "GB/s": 1000**3,
    "kbit/s": 125, "Kbit/s": 125, "Mbit/s": 125_000, "Gbit/s": 125_000_000,
    "kb/s": 125, "Kb/s": 125, "Mb/s": 125_000, "Gb/s": 125_000_000,
    "kbps": 125, "Kbps": 125, "Mbps": 125_000, "Gbps": 125_000_000,
}  # fmt: skip
_RULE = re.compile(
    r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+"
    r"(?P<rate>unlimited|\d+(?:\.\d+)?\s*[A-Za-z/]+)\s*$",
    re.IGNORECASE,
)
EXAMPLE = '"Mon-Fri 09:00-19:00 20MB/s"'


@dataclass(frozen=True)
class Rule:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    rate: int  # bytes per second; 0: unlimited
    text: str
    whole_day: bool = False  # 00:00-24:00

    def covers(self, moment: datetime) -> bool:
        now = moment.time().replace(tzinfo=None)
        day = moment.weekday()
        if self.whole_day:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        # past midnight: the evening of a listed day, or the morning after one
        return (day in self.days and now >= self.start) or ((day - 1) % 7 in self.days and now < self.end)


@dataclass(frozen=True)
class Limit:
    rate: int  # bytes per second; 0: unlimited
    rule: Rule | None  # None: no rule covers this moment (the plain limit)


def parse_rule(text: str) -> Rule:
    found = _RULE.match(text)
    if found is None:
        raise ConfigError(f"bandwidth rule {text!r} is not understood: write it like {EXAMPLE}")
    days = _days(found["days"], text)
    start, end = _clock(found["start"], text), _clock(found["end"], text)
    whole_day = start == end and _clock(found["start"], text) == time(0) and found["end"] == "24:00"
    if start == end and not whole_day:
        raise ConfigError(f"bandwidth rule {text!r}: the time range is empty ({found['start']} to itself)")
    return Rule(days, start, end, _rate(found["rate"], text), text.strip(), whole_day)


def parse_rules(texts: Iterable[str]) -> tuple[Rule, ...]:
    return tuple(parse_rule(t) for t in texts if t.strip())


def limit_at(rules: Sequence[Rule], moment: datetime, default: int) -> Limit:
    """The limit in force at this local moment."""
    for rule in rules:
        if rule.covers(moment):
            return Limit(rule.rate, rule)
    return Limit(default, None)


def next_change(rules: Sequence[Rule], moment: datetime) -> datetime | None:
    """The next local moment (wall clock) a rule starts or ends, within a week; None if no rules.
    Boundaries are wall-clock times: on a DST day 09:00 is still 09:00."""
    if not rules:
        return None
    naive = moment.replace(tzinfo=None)
    candidates = []
    for rule in rules:
        for offset in range(-1, 8):
            day = (naive + timedelta(days=offset)).date()
            if day.weekday() not in rule.days:
                continue
            start = datetime.combine(day, rule.start)
            end = datetime.combine(day + timedelta(days=0 if rule.start < rule.end else 1), rule.end)
            if rule.whole_day:
                end = datetime.combine(day + timedelta(days=1), rule.end)
            candidates += [at for at in (start, end) if at > naive]
    soonest = min(candidates)
    return soonest.replace(tzinfo=moment.tzinfo)


def describe_rate(rate: int) -> str:
    if rate <= 0:
        return "unlimited"
    return f"{rate / 1000**2:g} MB/s" if rate >= 1000**2 else f"{rate / 1000:g} KB/s"


def _days(text: str, rule: str) -> frozenset[int]:
    out: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        if part in ("daily", "every", "everyday"):
            out.update(range(7))
            continue
        ends = part.split("-")
        if len(ends) > 2 or not all(e[:3] in DAYS and len(e) >= 3 for e in ends):
            raise ConfigError(f"bandwidth rule {rule!r}: {part!r} is not a day or a range of days (Mon-Fri)")
        first, last = DAYS.index(ends[0][:3]), DAYS.index(ends[-1][:3])
        day = first
        while True:
            out.add(day)
            if day == last:
                break
            day = (day + 1) % 7
    if not out:
        raise ConfigError(f"bandwidth rule {rule!r}: no day given (e.g. Mon-Fri)")
    return frozenset(out)


def _clock(text: str, rule: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0, 0)  # "until 24:00" is until midnight
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ConfigError(f"bandwidth rule {rule!r}: {text} is not a time of day (00:00 to 24:00)")
    return time(hours, minutes)


def _rate(text: str, rule: str) -> int:
    value = text.strip().replace(" ", "")
    if value.lower() == "unlimited":
        return 0
    number = re.match(r"\d+(?:\.\d+)?", value)
    assert number is not None
    unit = value[number.end() :]
    if unit not in UNITS:
        hint = " (megabytes: MB/s; megabits: Mbit/s)" if unit.lower() in ("mb/s", "gb/s", "kb/s") else ""
        raise ConfigError(
            f"bandwidth rule {rule!r}: unit {unit!r} unknown{hint}; use MB/s, KB/s, GB/s, Mbit/s or Gbit/s"
        )
    rate = int(float(number.group()) * UNITS[unit])
    if rate <= 0:
        raise ConfigError(f"bandwidth rule {rule!r}: a limit must be above 0 (or say unlimited)")
    return rate
