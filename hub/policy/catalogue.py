"""The reason catalogue: rating options (评价选项) as versioned data.

Strategy (DOMAIN.md, "Data record"): rating options are "a catalogue of indicator codes (5xx in
the examples), versioned, shown according to the chosen level, grouped by indicator". A
catalogue file lists indicators (服务态度, 服务效率, …) and under each its options: an integer
code (the provincial ``evalDetail`` value, e.g. "501,502"; 0…65535 as in docs/hub-api.md),
zh and en labels, and the levels the option is offered for. The loader refuses duplicate
codes and indicator keys, unknown levels, and a catalogue that offers no option for a 差评
level (a 差评 must be able to carry a reason: DOMAIN.md, Zhouzhi practice). A profile names
its catalogue and pins its version, so a catalogue change is a visible, versioned event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hub.policy.codes import Level
from hub.policy.reader import (
    NAME_PATTERN,
    SCHEMA_VERSION,
    VERSION_PATTERN,
    Context,
    Node,
    mark,
    read_policy_file,
)

# docs/hub-api.md: reason codes are integers 0 … 65535.
MIN_REASON_CODE = 0
MAX_REASON_CODE = 65535
# Far more than any published catalogue; a limit keeps the rating page and device menus sane.
MAX_OPTIONS = 500

LEVEL_CHOICES = {level.key: level for level in Level}


@dataclass(frozen=True)
class ReasonOption:
    code: int
    indicator: str
    zh: str
    en: str
    levels: frozenset[Level]

    def offered_for(self, level: Level) -> bool:
        return level in self.levels


@dataclass(frozen=True)
class Indicator:
    key: str
    zh: str
    en: str
    options: tuple[ReasonOption, ...]


@dataclass(frozen=True)
class ReasonCatalogue:
    name: str
    version: str
    title_zh: str
    title_en: str
    indicators: tuple[Indicator, ...]
    source: str
    by_code: Mapping[int, ReasonOption]

    def option(self, code: int) -> ReasonOption | None:
        return self.by_code.get(code)

    def options_for(self, level: Level) -> tuple[ReasonOption, ...]:
        """The options shown for ``level``, in catalogue order."""
        return tuple(o for i in self.indicators for o in i.options if level in o.levels)

    def not_offered(self, level: Level, codes: Iterable[int]) -> tuple[int, ...]:
        """The codes in ``codes`` that are unknown or not offered for ``level``."""
        return tuple(
            c for c in codes if c not in self.by_code or level not in self.by_code[c].levels
        )


def load_catalogue_file(path: Path, expected_name: str) -> tuple[ReasonCatalogue, bytes]:
    """The checked catalogue at ``path`` and the file's bytes."""
    data, raw = read_policy_file(path)
    ctx = Context(str(path))
    mark(ctx.origins, (), data, str(path))
    return parse_catalogue(Node(data, (), ctx), expected_name), raw


def parse_catalogue(top: Node, expected_name: str) -> ReasonCatalogue:
    schema = top.integer("schema", 0, 1_000_000)
    if schema != SCHEMA_VERSION:
        top.fail(
            "policy.schema",
            "schema",
            f"本版本只能读取 schema {SCHEMA_VERSION}，文件为 {schema}",
            f"this hub reads schema {SCHEMA_VERSION}, the file has {schema}",
        )
    name = top.text("name", pattern=NAME_PATTERN)
    if name != expected_name:
        top.fail(
            "policy.name_mismatch",
            "name",
            f"name 应与文件名一致（{expected_name!r}），实际为 {name!r}",
            f"name must match the file name ({expected_name!r}), got {name!r}",
        )
    version = top.text("version", pattern=VERSION_PATTERN)
    title_zh, title_en = top.text_pair("title")
    raw_indicators = top.array("indicators")
    if not raw_indicators:
        top.fail(
            "policy.missing", "indicators", "至少需要一个指标", "at least one indicator is required"
        )
    indicators: list[Indicator] = []
    by_code: dict[int, ReasonOption] = {}
    where: dict[int, str] = {}
    keys: set[str] = set()
    for i, raw in enumerate(raw_indicators):
        node = _element(top, "indicators", i, raw)
        key = node.text("key", pattern=NAME_PATTERN)
        if key in keys:
            node.fail(
                "policy.duplicate", "key", f"指标 {key!r} 重复", f"duplicate indicator key {key!r}"
            )
        keys.add(key)
        zh, en = node.text("zh"), node.text("en")
        options: list[ReasonOption] = []
        raw_options = node.array("options")
        for j, raw_option in enumerate(raw_options):
            option_node = _element(node, "options", j, raw_option)
            code = option_node.integer("code", MIN_REASON_CODE, MAX_REASON_CODE)
            if code in by_code:
                option_node.fail(
                    "policy.duplicate_code",
                    "code",
                    f"选项代码 {code} 重复（已用于 {where[code]}）",
                    f"duplicate option code {code} (already used at {where[code]})",
                )
            option = ReasonOption(
                code,
                key,
                option_node.text("zh"),
                option_node.text("en"),
                _levels(option_node),
            )
            option_node.finish()
            by_code[code] = option
            where[code] = f"indicators[{i}].options[{j}]"
            options.append(option)
        if not options:
            node.fail(
                "policy.missing",
                "options",
                "每个指标至少需要一个选项",
                "every indicator needs at least one option",
            )
        node.finish()
        indicators.append(Indicator(key, zh, en, tuple(options)))
    if len(by_code) > MAX_OPTIONS:
        top.fail(
            "policy.range",
            "indicators",
            f"选项超过 {MAX_OPTIONS} 个",
            f"more than {MAX_OPTIONS} options",
        )
    for level in Level:
        if level.is_bad and not any(level in o.levels for o in by_code.values()):
            top.fail(
                "policy.no_bad_reason",
                "indicators",
                f"没有为“{level.zh}”提供任何选项：差评必须能选择原因",
                f"no option is offered for {level.key!r}: a 差评 must be able to carry a reason",
            )
    top.finish()
    source = top.ctx.file
    return ReasonCatalogue(
        name, version, title_zh, title_en, tuple(indicators), source, MappingProxyType(by_code)
    )


def _element(parent: Node, key: str, index: int, raw: Any) -> Node:
    node = Node({}, (*parent.path, key), parent.ctx)
    if not isinstance(raw, dict):
        node.wrong_type(index, raw, "表（[[...]]）", "a table ([[...]])")
    return Node(raw, (*parent.path, key, index), parent.ctx)


def _levels(node: Node) -> frozenset[Level]:
    values = node.array("levels")
    if not values:
        node.fail(
            "policy.missing", "levels", "至少需要一个评价等级", "at least one level is required"
        )
    levels: list[Level] = []
    child = Node({}, (*node.path, "levels"), node.ctx)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            child.wrong_type(index, value, "评价等级名称", "a level name")
        if value not in LEVEL_CHOICES:
            child.fail(
                "policy.choice",
                index,
                f"{value!r} 不是评价等级（可用：{', '.join(LEVEL_CHOICES)}）",
                f"{value!r} is not a level (expected one of: {', '.join(LEVEL_CHOICES)})",
            )
        if LEVEL_CHOICES[value] in levels:
            child.fail(
                "policy.duplicate", index, f"评价等级 {value!r} 重复", f"duplicate level {value!r}"
            )
        levels.append(LEVEL_CHOICES[value])
    return frozenset(levels)
