"""Naming rules as pure functions: what a render's name says, over the names editors type."""

from __future__ import annotations

import pytest

from app.core.errors import ConfigError
from app.core.naming import Parsed, compile_rule, compile_rules, parse_name

VERSIONED = compile_rules(["versioned"])
SHOT_TASK = compile_rules(["shot_task"])

# name → (base, version, extension) under the default rule; None: no version found
CASES: list[tuple[str, tuple[str, int, str] | None]] = [
    ("SHOW_SC010_v003.mov", ("SHOW_SC010", 3, ".mov")),
    ("SHOW_SC010_v001.mov", ("SHOW_SC010", 1, ".mov")),
    ("SHOW_SC010_V004.MOV", ("SHOW_SC010", 4, ".mov")),  # upper-case V and extension
    ("shot_v1.mp4", ("shot", 1, ".mp4")),
    ("shot_v0001.exr", ("shot", 1, ".exr")),
    ("shot_v999999.mov", ("shot", 999_999, ".mov")),
    ("shot_v1000000.mov", None),  # more than six digits is not a version
    ("SHOW_v2_SC010_v003.mov", ("SHOW_v2_SC010", 3, ".mov")),  # the last version-like token wins
    ("A001_C001_v2.mov", ("A001_C001", 2, ".mov")),
    ("Trailer v12.mov", ("Trailer", 12, ".mov")),  # a space before it
    ("Trailer - v12.mov", ("Trailer -", 12, ".mov")),
    ("promo-v3.mxf", ("promo", 3, ".mxf")),
    ("promo.v3.mxf", ("promo", 3, ".mxf")),  # dots
    ("promo.final.v3.mxf", ("promo.final", 3, ".mxf")),
    ("promo_v3", ("promo", 3, "")),  # no extension
    ("Séquence_café_v002.mov", ("Séquence_café", 2, ".mov")),  # unicode
    ("日本語_カット_v010.mov", ("日本語_カット", 10, ".mov")),
    ("Ünïcödé shot_V7.mov", ("Ünïcödé shot", 7, ".mov")),
    ("clip.mov", None),
    ("SC010.mov", None),
    ("SC010_final.mov", None),
    ("SC010_v003_graded.mov", None),  # the version is not at the end
    ("v003.mov", None),  # nothing before the version
    ("_v003.mov", None),
    ("SC010v003.mov", None),  # no separator: too easily a word ("dev3")
    ("SC010_va.mov", None),
    ("SC010_v.mov", None),
    ("SC010_v-1.mov", None),
    ("SC010_v٣.mov", None),  # Arabic-Indic digit: not a version number
    ("SC010_v1.5.mov", None),  # a decimal is not a version number
    ("render_2024_v03.mov", ("render_2024", 3, ".mov")),
    ("2024-05-01_cut_v03.mp4", ("2024-05-01_cut", 3, ".mp4")),
    ("SHOW_SC010_v003.mov.part", None),  # the extension is .part: its stem has no version
    ("SHOW_SC010_v003 (1).mov", None),  # a Finder copy
    ("  spaced  _v4.mov", ("  spaced  ", 4, ".mov")),
    (".hidden_v1.mov", (".hidden", 1, ".mov")),
    ("UPPER_CASE_SHOT_V010.MXF", ("UPPER_CASE_SHOT", 10, ".mxf")),
    ("mixed_Case_v010.Mov", ("mixed_Case", 10, ".mov")),
    ("a_v1.tar.gz", None),  # stem "a_v1.tar"
    ("tab\tname_v2.mov", ("tab\tname", 2, ".mov")),
    ("emoji🎬_v5.mov", ("emoji🎬", 5, ".mov")),
    ("SC010_v003.v004.mov", ("SC010_v003", 4, ".mov")),  # several version-like numbers
    ("x_v00.mov", ("x", 0, ".mov")),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_versioned_preset(name: str, expected: tuple[str, int, str] | None) -> None:
    parsed = parse_name(name, VERSIONED)
    if expected is None:
        assert parsed is None or parsed.version is None, parsed
    else:
        assert parsed is not None and (parsed.base, parsed.version, parsed.extension) == expected


def test_there_are_at_least_forty_names_in_the_table() -> None:
    assert len(CASES) >= 40


def test_versions_of_one_render_share_a_stack_key() -> None:
    keys = {parse_name(n, VERSIONED).stack_key for n in ("SC010_v001.mov", "SC010_V002.MOV", "sc010_v3.mov")}  # type: ignore[union-attr]
    assert len(keys) == 1
    other = parse_name("SC010_v001.wav", VERSIONED)
    assert other is not None and other.stack_key not in keys  # a .wav is not a version of a .mov
    nfd = parse_name("Se\u0301quence_v1.mov", VERSIONED)
    nfc = parse_name("S\u00e9quence_v2.mov", VERSIONED)
    assert nfd is not None and nfc is not None and nfd.stack_key == nfc.stack_key


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("SHOW_SC010_SH020_comp_v004.exr", {"show": "SHOW", "sequence": "SC010", "shot": "SH020",
                                            "task": "comp"}),
        ("ABC_SQ01_0100_grade_V12.mov", {"show": "ABC", "sequence": "SQ01", "shot": "0100", "task": "grade"}),
    ],
)  # fmt: skip
def test_the_shot_task_preset_names_its_fields(name: str, fields: dict[str, str]) -> None:
    parsed = parse_name(name, SHOT_TASK)
    assert parsed is not None and dict(parsed.fields) == fields and parsed.version is not None
    assert parse_name("SHOW_SC010_v004.exr", SHOT_TASK) is None  # too few parts


def test_a_custom_rule_with_named_groups() -> None:
    rule = compile_rule(r"(?P<shot>SC\d+)_(?P<task>[a-z]+)_r(?P<version>\d+)")
    parsed = rule.parse("SC010_comp_r7.mov")
    assert parsed == Parsed(
        "SC010_comp_r7.mov", "custom", "SC010_comp_r", 7, ".mov", {"shot": "SC010", "task": "comp"}
    )
    assert rule.parse("nothing.mov") is None
    fields_only = compile_rule(r"(?P<shot>SC\d+)_.*").parse("SC020_anything.mov")
    assert fields_only is not None and fields_only.version is None and fields_only.stack_key is None


def test_rules_are_tried_in_order() -> None:
    rules = compile_rules(["shot_task", "versioned"])
    assert parse_name("SHOW_SC010_SH020_comp_v004.exr", rules).rule == "shot_task"  # type: ignore[union-attr]
    assert parse_name("promo_v3.mov", rules).rule == "versioned"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("(?P<shot>SC\\d+", "not a valid regular expression"),
        ("SC\\d+_v\\d+", "no named group"),
        ("[", "not a valid regular expression"),
    ],
)
def test_a_bad_rule_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        compile_rule(text)
