"""Naming rules: what a render's name says (show, sequence, shot, task, version).

Pure functions, tested with tables. A rule is a regular expression with named groups, matched
against the whole file name without its extension; ``version`` (digits) is what version
stacking needs, every other group is a field for routing and comment templates. Presets cover
what editors type; a custom rule is checked when it is saved, so a typo is a message beside the
field, never a file that silently stops stacking.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.core.errors import ConfigError

# ``<anything>_v<NNN>``: the last version-like token wins (``SHOW_v2_SC010_v003`` is version 3 of
# ``SHOW_v2_SC010``); ``_``, ``-``, ``.`` or a space before it; ``v`` or ``V``.
VERSIONED = r"(?P<base>.+?)[ _.\-][vV](?P<version>\d{1,6})"
# ``<SHOW>_<SEQ>_<SHOT>_<TASK>_v<NNN>``
SHOT_TASK = r"(?P<show>[^_]+)_(?P<sequence>[^_]+)_(?P<shot>[^_]+)_(?P<task>[^_]+)_[vV](?P<version>\d{1,6})"
PRESETS: Mapping[str, str] = {"versioned": VERSIONED, "shot_task": SHOT_TASK}
DEFAULT_RULES = ("versioned",)
MAX_VERSION = 999_999


@dataclass(frozen=True)
class Parsed:
    """A name a rule matched. ``base`` is what versions of one render share (the name without
    its version and extension); ``stack_key`` is how two names are compared: NFC, case folded,
    with the extension (a ``.wav`` and a ``.mov`` of one shot are not versions of each other)."""

    name: str
    rule: str
    base: str
    version: int | None
    extension: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def stack_key(self) -> str | None:
        if self.version is None:
            return None
        return unicodedata.normalize("NFC", f"{self.base}{self.extension}").casefold()

    @property
    def version_label(self) -> str:
        return "" if self.version is None else f"v{self.version:03d}"


@dataclass(frozen=True)
class NamingRule:
    name: str  # a preset's name, or "custom"
    pattern: re.Pattern[str]

    def parse(self, file_name: str) -> Parsed | None:
        stem, extension = split_extension(file_name)
        match = self.pattern.fullmatch(stem)
        if match is None:
            return None
        groups = {k: v for k, v in match.groupdict().items() if v is not None}
        raw = groups.pop("version", None)
        version = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
        if version is not None and version > MAX_VERSION:
            version = None
        base = groups.pop("base", None)
        if base is None:  # no explicit base: the name with its version token removed
            base = _without_version(stem, match) if raw is not None else stem
        return Parsed(file_name, self.name, base, version, extension, groups)


def split_extension(file_name: str) -> tuple[str, str]:
    """``clip.v2.mov`` → (``clip.v2``, ``.mov``); a leading dot is not an extension."""
    dot = file_name.rfind(".")
    if dot <= 0:
        return file_name, ""
    return file_name[:dot], file_name[dot:].lower()


def compile_rule(text: str) -> NamingRule:
    """A preset's name or a regular expression. Raises ``ConfigError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise ConfigError("A naming rule cannot be empty: use a preset (versioned, shot_task) or a pattern.")
    if text in PRESETS:
        return NamingRule(text, re.compile(PRESETS[text]))
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise ConfigError(f"The naming rule {text!r} is not a valid regular expression: {exc}.") from None
    if not pattern.groupindex:
        raise ConfigError(
            f"The naming rule {text!r} has no named group: name what it finds, e.g. "
            "(?P<shot>SC\\d+)_v(?P<version>\\d+)."
        )
    return NamingRule("custom", pattern)


def compile_rules(texts: Sequence[str]) -> tuple[NamingRule, ...]:
    return tuple(compile_rule(t) for t in texts)


def parse_name(file_name: str, rules: Sequence[NamingRule]) -> Parsed | None:
    """The first rule that matches, in order; None when none does."""
    for rule in rules:
        parsed = rule.parse(file_name)
        if parsed is not None:
            return parsed
    return None


def _without_version(stem: str, match: re.Match[str]) -> str:
    start, end = match.span("version")
    head = stem[:start]
    # drop the ``v``/``V`` and the separator before it: ``SC010_v003`` → ``SC010``
    if head[-1:] in ("v", "V"):
        head = head[:-1]
    if head[-1:] in ("_", "-", ".", " "):
        head = head[:-1]
    return head + stem[end:]


# ---- comment templates ----
TEMPLATE_FIELDS = ("name", "base", "version", "path", "machine", "rendered_at", "size")


def template_fields(rules: Sequence[NamingRule]) -> tuple[str, ...]:
    """What a comment template may name: the file's facts, and every rule's named groups."""
    groups = [g for r in rules for g in r.pattern.groupindex if g not in ("base", "version")]
    return (*TEMPLATE_FIELDS, *dict.fromkeys(groups))


def check_template(template: str, rules: Sequence[NamingRule]) -> None:
    """Raises ``ConfigError`` naming the first field the template cannot fill."""
    allowed = template_fields(rules)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(
            f"The comment template {template!r} is not valid: {exc} (write {{{{ for a brace)."
        ) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise ConfigError(
                f"The comment template names {{{name}}}, which PostFlow cannot fill: use "
                + ", ".join(f"{{{f}}}" for f in allowed)
            )


def render_comment(template: str, parsed: Parsed | None, facts: Mapping[str, str]) -> str:
    """The comment text; a field the name did not give is left empty."""
    values: dict[str, str] = {f: "" for f in TEMPLATE_FIELDS}
    values.update(facts)
    if parsed is not None:
        values.update(parsed.fields)
        values["base"] = parsed.base
        values["version"] = parsed.version_label
    return string.Formatter().vformat(template, (), _Blank(values)).strip()


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def explain(file_name: str, rules: Sequence[NamingRule], stacking: bool = True) -> str:
    """One line for the settings page's "test your pattern": what the rules read in a name."""
    parsed = parse_name(file_name, rules)
    if parsed is None:
        return f"{file_name}: no rule matches (uploaded as it is, never stacked)"
    said = [f"{k} {v}" for k, v in parsed.fields.items()]
    if parsed.version is None:
        return f"{file_name}: " + (", ".join(said) or "matched") + "; no version (never stacked)"
    said.append(f"version {parsed.version_label}")
    stack = f"stacks with other versions of “{parsed.base}{parsed.extension}”" if stacking else "not stacked"
    return f"{file_name}: {', '.join(said)}; {stack} ({parsed.rule})"
