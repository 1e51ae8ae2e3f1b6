"""Loading jurisdiction profiles: find the file, follow ``extends``, merge, check, build.

Strategy: a profile is a TOML file named after the profile in a profile directory (the
shipped ``hub/policy/profiles/``, plus any directories an operator adds). ``extends`` names
the profile it builds on; the loader reads the chain, merges each file over its base
(``reader.merge``: tables key by key, code maps and plain values whole) and then checks the
merged result completely: unknown keys, types, ranges, required values, cross-field rules.
Identity keys (schema, name, version, extends, abstract, title, sources) belong to each file
and are never inherited. The reason catalogue the profile names is loaded and its version
checked against the profile's pin. The first problem found is raised as a PolicyError that
names the file holding the value, its key path and what was expected.

Each limit below states its reason. The values themselves are in the profile files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hub.policy.catalogue import LEVEL_CHOICES, ReasonCatalogue, load_catalogue_file
from hub.policy.codes import (
    CHANNEL_KEYS,
    Channel,
    ChannelCode,
    ChannelCodes,
    Level,
    LevelCodes,
    LevelOrder,
)
from hub.policy.errors import PolicyError
from hub.policy.profile import (
    DeadlineRule,
    DefaultRating,
    Profile,
    RatingRules,
    Supervision,
    UploadMode,
    UploadPolicy,
)
from hub.policy.reader import (
    NAME_PATTERN,
    SCHEMA_VERSION,
    VERSION_PATTERN,
    Context,
    KeyPath,
    Node,
    Origins,
    mark,
    merge,
    read_policy_file,
)
from hub.workdays import DayCount

PACKAGE_DIR = Path(__file__).parent
PROFILES_DIR = PACKAGE_DIR / "profiles"
CATALOGUES_DIR = PACKAGE_DIR / "catalogues"

# A chain deeper than this is a mistake (national → province → city → district is 4).
MAX_EXTENDS_DEPTH = 8
# No published 好差评 limit exceeds 15 working days (DOMAIN.md); 90 still leaves room for a
# jurisdiction's own choice and catches a typo such as "150 working days".
MAX_LIMIT_DAYS = 90
# Counter evaluators: a commercial product uses 10 s, the project default is 60 s
# (DOMAIN.md, "One rating per service"); below 5 s nobody can press, above 10 min the press
# can no longer be tied to the case that was just handled.
MIN_INVITE_WINDOW_SECONDS = 5
MAX_INVITE_WINDOW_SECONDS = 600
# 评价次数 is 1 for the rating and 2 for the one follow-up (DOMAIN.md): at most one 追评.
MAX_FOLLOW_UPS = 1
# Defaulting unrated cases to 满意 is a known fraud pattern (DOMAIN.md, "Known failure and
# fraud patterns"); every source that has a default rule gives 基本满意.
ALLOWED_DEFAULT_LEVELS = (Level.BASICALLY_SATISFIED,)
# Code systems every profile must define: GB/T 39046 for the national record, and the
# provincial interface's `satisfaction` and `pf` fields (DOMAIN.md, "Data record").
REQUIRED_LEVEL_SYSTEMS = ("gbt39046", "satisfaction")
REQUIRED_CHANNEL_SYSTEMS = ("gbt39046", "pf")
# The provincial channel code of a default rating ("7 system default" in DOMAIN.md) must
# exist in this system when the profile has a default rule.
DEFAULT_RATING_CHANNEL_SYSTEM = "pf"
MAX_NUMERIC_CODE = 9999
MAX_TEXT_CODE_CHARS = 64
MAX_SOURCES = 50

# Keys that describe one file and are never inherited through `extends`.
OWN_KEYS = ("schema", "name", "version", "extends", "abstract", "title", "sources")

_ORDERS = {order.value: order for order in LevelOrder}
_UPLOAD_MODES = {mode.value: mode for mode in UploadMode}
_CHANNELS = {channel.value: channel for channel in Channel}


def _atomic(path: KeyPath) -> bool:
    """Code maps are replaced whole by a child profile, never merged code by code."""
    return len(path) == 2 and path[0] in ("levels", "channels")


@dataclass
class _Chain:
    data: dict[str, Any]
    origins: Origins
    lineage: tuple[tuple[str, str], ...]
    files: tuple[str, ...]
    raw: tuple[bytes, ...]


class PolicyLoader:
    """Finds and loads profiles and reason catalogues from a list of directories each.

    A name defined in two directories is an error (no silent shadowing): an operator's own
    jurisdiction gets its own name and ``extends`` a shipped profile instead."""

    def __init__(
        self,
        profile_dirs: Sequence[str | Path] = (PROFILES_DIR,),
        catalogue_dirs: Sequence[str | Path] = (CATALOGUES_DIR,),
    ) -> None:
        self.profile_dirs = tuple(Path(d) for d in profile_dirs)
        self.catalogue_dirs = tuple(Path(d) for d in catalogue_dirs)

    # ------------------------------------------------------------------ listing

    def _index(self, dirs: tuple[Path, ...]) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in dirs:
            if not folder.is_dir():
                raise PolicyError(
                    "policy.no_directory",
                    str(folder),
                    "",
                    "策略目录不存在",
                    "policy directory not found",
                )
            for path in sorted(folder.glob("*.toml")):
                name = path.stem
                if not NAME_PATTERN.match(name):
                    raise PolicyError(
                        "policy.file_name",
                        str(path),
                        "",
                        f"文件名 {name!r} 不是有效名称（{NAME_PATTERN.pattern}）",
                        f"file name {name!r} is not a valid name ({NAME_PATTERN.pattern})",
                    )
                if name in found:
                    raise PolicyError(
                        "policy.duplicate_name",
                        str(path),
                        "",
                        f"名称 {name!r} 已由 {found[name]} 定义",
                        f"name {name!r} is already defined by {found[name]}",
                    )
                found[name] = path
        return found

    def profile_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._index(self.profile_dirs)))

    def catalogue_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._index(self.catalogue_dirs)))

    def _find(self, kind: str, name: str, index: dict[str, Path], file: str, key: str) -> Path:
        if name in index:
            return index[name]
        kind_zh = "配置" if kind == "profile" else "选项目录"
        known = ", ".join(sorted(index)) or "-"
        raise PolicyError(
            f"policy.unknown_{kind}",
            file,
            key,
            f"未知的{kind_zh} {name!r}（可用：{known}）",
            f"unknown {kind} {name!r} (available: {known})",
        )

    # ------------------------------------------------------------------ catalogues

    def catalogue(self, name: str) -> ReasonCatalogue:
        return self._catalogue(name, _dirs(self.catalogue_dirs), "")[0]

    def _catalogue(self, name: str, file: str, key: str) -> tuple[ReasonCatalogue, bytes]:
        index = self._index(self.catalogue_dirs)
        return load_catalogue_file(self._find("catalogue", name, index, file, key), name)

    # ------------------------------------------------------------------ profiles

    def profile(self, name: str) -> Profile:
        """The named, non-abstract profile, merged over its bases and fully checked."""
        index = self._index(self.profile_dirs)
        chain = self._chain(name, index, (), _dirs(self.profile_dirs), "")
        file = chain.files[0]
        ctx = Context(file, chain.origins, chain=chain.files)
        if len(chain.lineage) > 1:
            bases = " → ".join(n for n, _ in chain.lineage[1:])
            ctx.chain_note_zh = f"（{name} 及其继承的配置 {bases} 均未设置）"
            ctx.chain_note_en = f" (set neither in {name} nor in the profiles it extends: {bases})"
        return self._parse(Node(chain.data, (), ctx), chain)

    def all_profiles(self) -> dict[str, Profile]:
        """Every non-abstract profile, loaded and checked (an operator's pre-flight check)."""
        index = self._index(self.profile_dirs)
        result: dict[str, Profile] = {}
        for name in sorted(index):
            chain = self._chain(name, index, (), _dirs(self.profile_dirs), "")
            if chain.data.get("abstract") is not True:
                result[name] = self.profile(name)
        return result

    def _chain(
        self,
        name: str,
        index: dict[str, Path],
        trail: tuple[str, ...],
        referrer: str,
        key: str,
    ) -> _Chain:
        path = self._find("profile", name, index, referrer, key)
        data, raw = read_policy_file(path)
        file = str(path)
        own = Node(data, (), Context(file))
        schema = own.integer("schema", 0, 1_000_000)
        if schema != SCHEMA_VERSION:
            own.fail(
                "policy.schema",
                "schema",
                f"本版本只能读取 schema {SCHEMA_VERSION}，文件为 {schema}",
                f"this hub reads schema {SCHEMA_VERSION}, the file has {schema}",
            )
        declared = own.text("name", pattern=NAME_PATTERN)
        if declared != name:
            own.fail(
                "policy.name_mismatch",
                "name",
                f"name 应与文件名一致（{name!r}），实际为 {declared!r}",
                f"name must match the file name ({name!r}), got {declared!r}",
            )
        version = own.text("version", pattern=VERSION_PATTERN)
        if own.present("abstract"):
            own.boolean("abstract")
        if not own.present("extends"):
            origins: Origins = {}
            mark(origins, (), data, file)
            return _Chain(data, origins, ((name, version),), (file,), (raw,))
        base_name = own.text("extends", pattern=NAME_PATTERN)
        if base_name in (*trail, name):
            cycle = " → ".join((*trail, name, base_name))
            own.fail(
                "policy.extends_cycle",
                "extends",
                f"继承关系成环：{cycle}",
                f"profiles extend each other in a cycle: {cycle}",
            )
        if len(trail) + 1 >= MAX_EXTENDS_DEPTH:
            own.fail(
                "policy.extends_depth",
                "extends",
                f"继承层级超过 {MAX_EXTENDS_DEPTH} 层",
                f"more than {MAX_EXTENDS_DEPTH} levels of extends",
            )
        base = self._chain(base_name, index, (*trail, name), file, "extends")
        inherited = {k: v for k, v in base.data.items() if k not in OWN_KEYS}
        origins = {p: f for p, f in base.origins.items() if not p or p[0] not in OWN_KEYS}
        merged = merge(inherited, data, file, origins, _atomic)
        return _Chain(
            merged,
            origins,
            ((name, version), *base.lineage),
            (file, *base.files),
            (raw, *base.raw),
        )

    # ------------------------------------------------------------------ checking

    def _parse(self, top: Node, chain: _Chain) -> Profile:
        top.integer("schema", 0, 1_000_000)
        name = top.text("name", pattern=NAME_PATTERN)
        version = top.text("version", pattern=VERSION_PATTERN)
        if top.present("extends"):
            top.text("extends", pattern=NAME_PATTERN)
        if top.present("abstract") and top.boolean("abstract"):
            top.fail(
                "policy.abstract",
                "abstract",
                f"{name} 是供其他配置继承的基础配置，不能直接使用",
                f"{name} is an abstract base for other profiles and cannot be used itself",
            )
        title_zh, title_en = top.text_pair("title")
        sources = _sources(top)
        day_count = _day_count(top.table("day_count"))

        deadlines = top.table("deadlines")
        callback = _deadline(deadlines, "callback")
        rectification = _deadline(deadlines, "rectification")
        feedback = _deadline(deadlines, "feedback")
        report_form = _deadline(deadlines, "report_form", required=False)
        deadlines.finish()
        assert callback is not None and rectification is not None and feedback is not None

        rating = _rating(top.table("rating"))
        supervision = _supervision(top.table("supervision"))
        upload = _upload(top.table("upload"))

        reasons_node = top.table("reasons")
        catalogue_name = reasons_node.text("catalogue", pattern=NAME_PATTERN)
        pinned = reasons_node.text("version", pattern=VERSION_PATTERN)
        catalogue, catalogue_raw = self._catalogue(
            catalogue_name, reasons_node.file_of("catalogue"), "reasons.catalogue"
        )
        if catalogue.version != pinned:
            reasons_node.fail(
                "policy.catalogue_version",
                "version",
                f"配置要求选项目录 {catalogue_name} 的版本 {pinned!r}，"
                f"而 {catalogue.source} 为 {catalogue.version!r}",
                f"the profile pins catalogue {catalogue_name} at version {pinned!r}, "
                f"but {catalogue.source} is version {catalogue.version!r}",
            )
        reasons_node.finish()

        level_codes = _level_codes(top.table("levels"))
        channel_codes = _channel_codes(top.table("channels"))
        if rating.default is not None:
            pf = channel_codes[DEFAULT_RATING_CHANNEL_SYSTEM]
            if Channel.SYSTEM_DEFAULT not in pf.codes:
                Node(chain.data.get("channels", {}), ("channels",), top.ctx).conflict(
                    (DEFAULT_RATING_CHANNEL_SYSTEM,),
                    "配置了默认评价规则（rating.default），渠道编码须包含 system_default",
                    "the profile has a default rating rule (rating.default), so this channel "
                    "coding must define system_default",
                )
        top.finish()

        digest = hashlib.sha256()
        for raw in (*chain.raw, catalogue_raw):
            digest.update(hashlib.sha256(raw).digest())
        return Profile(
            name=name,
            version=version,
            title_zh=title_zh,
            title_en=title_en,
            sources=sources,
            lineage=chain.lineage,
            files=(*chain.files, catalogue.source),
            digest=digest.hexdigest(),
            day_count=day_count,
            callback=callback,
            rectification=rectification,
            feedback=feedback,
            report_form=report_form,
            rating=rating,
            supervision=supervision,
            upload=upload,
            reasons=catalogue,
            level_codes=level_codes,
            channel_codes=channel_codes,
        )


def _dirs(folders: tuple[Path, ...]) -> str:
    return ", ".join(str(folder) for folder in folders)


def _sources(top: Node) -> tuple[str, ...]:
    values = top.array("sources")
    holder = Node({}, (*top.path, "sources"), top.ctx)
    if not values or len(values) > MAX_SOURCES:
        top.out_of_range("sources", values, f" 1–{MAX_SOURCES} 条出处", f"1–{MAX_SOURCES} sources")
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            holder.wrong_type(index, value, "非空字符串", "a non-blank string")
    return tuple(values)


def _day_count(node: Node) -> DayCount:
    count_event_day = node.boolean("count_event_day")
    cutoff = node.clock("event_day_cutoff") if node.present("event_day_cutoff") else None
    if cutoff is not None and not count_event_day:
        node.conflict(
            ("event_day_cutoff", "count_event_day"),
            "event_day_cutoff 仅在 count_event_day = true 时才能设置",
            "event_day_cutoff is only meaningful with count_event_day = true",
        )
    roll = node.boolean("roll_to_workday")
    node.finish()
    return DayCount(count_event_day, cutoff, roll)


def _deadline(parent: Node, key: str, *, required: bool = True) -> DeadlineRule | None:
    node = parent.table(key) if required else parent.optional_table(key)
    if node is None:
        return None
    within = node.period("within", 1, MAX_LIMIT_DAYS)
    warn = node.period("warn_before", 0, MAX_LIMIT_DAYS)
    if warn.unit is not within.unit:
        node.conflict(
            ("warn_before", "within"),
            f"warn_before 应与 within 使用相同的单位（{within.unit.value}）",
            f"warn_before must count in the same unit as within ({within.unit.value})",
        )
    if warn.amount >= within.amount:
        node.conflict(
            ("warn_before", "within"),
            f"预警提前量 {warn.zh} 应小于时限 {within.zh}，否则预警早于起算",
            f"warn_before {warn} must be less than the limit {within}, or the warning would "
            "start before the period does",
        )
    node.finish()
    return DeadlineRule(key, within, warn)


def _rating(node: Node) -> RatingRules:
    invite = node.integer(
        "invite_window_seconds", MIN_INVITE_WINDOW_SECONDS, MAX_INVITE_WINDOW_SECONDS
    )
    requires_reason = node.boolean("bad_rating_requires_reason")
    follow_ups = node.integer("follow_up_ratings", 0, MAX_FOLLOW_UPS)
    reopen = node.boolean("reopen_on_unhappy_follow_up")
    if reopen and follow_ups == 0:
        node.conflict(
            ("reopen_on_unhappy_follow_up", "follow_up_ratings"),
            "不允许追评（follow_up_ratings = 0）时不能因追评重开工单",
            "cannot reopen on a follow-up when no follow-up is allowed (follow_up_ratings = 0)",
        )
    supplementary = node.optional_period("supplementary_window", 1, MAX_LIMIT_DAYS)
    default: DefaultRating | None = None
    default_node = node.optional_table("default")
    if default_node is not None:
        after = default_node.period("after", 1, MAX_LIMIT_DAYS)
        level = default_node.choice("level", LEVEL_CHOICES)
        if level not in ALLOWED_DEFAULT_LEVELS:
            allowed = ", ".join(lv.key for lv in ALLOWED_DEFAULT_LEVELS)
            default_node.fail(
                "policy.default_level",
                "level",
                f"默认评价只能是 {allowed}：将未评价办件默认为其他等级会歪曲结果",
                f"a default rating may only be {allowed}: defaulting unrated cases to any "
                "other level distorts the results",
            )
        default_node.finish()
        default = DefaultRating(after, level)
    node.finish()
    return RatingRules(invite, requires_reason, follow_ups, reopen, supplementary, default)


def _supervision(node: Node) -> Supervision:
    revisit = node.optional_integer("revisit_sample_percent", 1, 100)
    due = node.month_day("annual_report_due") if node.present("annual_report_due") else None
    callback_target = node.integer("real_name_callback_target_percent", 1, 100)
    rectification_target = node.integer("real_name_rectification_target_percent", 1, 100)
    node.finish()
    return Supervision(revisit, due, callback_target, rectification_target)


def _upload(node: Node) -> UploadPolicy:
    mode = node.choice("mode", _UPLOAD_MODES)
    fallback = node.choice("fallback", _UPLOAD_MODES) if node.present("fallback") else None
    if fallback is mode:
        node.conflict(
            ("fallback", "mode"),
            "备用方式 fallback 与 mode 相同",
            "the fallback is the same as mode",
        )
    node.finish()
    return UploadPolicy(mode, fallback)


def _systems(node: Node, required: tuple[str, ...]) -> list[str]:
    for system in required:
        if system not in node.data:
            node.require(system)
    for system in node.data:
        if not NAME_PATTERN.match(system):
            node.fail(
                "policy.format",
                system,
                f"编码体系名称应匹配 {NAME_PATTERN.pattern}",
                f"a code system name must match {NAME_PATTERN.pattern}",
            )
    return list(node.data)


def _level_codes(node: Node) -> MappingProxyType[str, LevelCodes]:
    result: dict[str, LevelCodes] = {}
    for system in _systems(node, REQUIRED_LEVEL_SYSTEMS):
        table = node.table(system)
        order = table.choice("order", _ORDERS)
        first = table.integer("first_code", 0, MAX_NUMERIC_CODE)
        table.finish()
        result[system] = LevelCodes(system, order, first)
    node.finish()
    return MappingProxyType(result)


def _channel_codes(node: Node) -> MappingProxyType[str, ChannelCodes]:
    result: dict[str, ChannelCodes] = {}
    for system in _systems(node, REQUIRED_CHANNEL_SYSTEMS):
        table = node.table(system)
        codes: dict[Channel, ChannelCode] = {}
        seen: dict[ChannelCode, str] = {}
        kind: type | None = None
        for key, value in table.data.items():
            table.asked.append(key)
            if key not in _CHANNELS:
                table.fail(
                    "policy.unknown_key",
                    key,
                    f"未知的渠道（可用：{', '.join(CHANNEL_KEYS)}）",
                    f"unknown channel (expected one of: {', '.join(CHANNEL_KEYS)})",
                )
            if isinstance(value, int) and not isinstance(value, bool):
                table.integer(key, 0, MAX_NUMERIC_CODE)
            elif isinstance(value, str):
                table.text(key, limit=MAX_TEXT_CODE_CHARS)
            else:
                table.wrong_type(key, value, "整数或字符串代码", "an integer or string code")
            if kind is not None and type(value) is not kind:
                table.fail(
                    "policy.type",
                    key,
                    "同一编码体系内的代码类型应一致（全为整数或全为字符串）",
                    "all codes of one system must have one type (all integers or all strings)",
                )
            kind = type(value)
            if value in seen:
                table.fail(
                    "policy.duplicate_code",
                    key,
                    f"代码 {value!r} 已用于 {seen[value]}",
                    f"code {value!r} is already used for {seen[value]}",
                )
            seen[value] = key
            codes[_CHANNELS[key]] = value
        if not codes:
            table.fail("policy.missing", None, "编码表为空", "the code map is empty")
        table.finish()
        result[system] = ChannelCodes(system, codes)
    node.finish()
    return MappingProxyType(result)


# ----------------------------------------------------------------------------- shortcuts

_DEFAULT_LOADER = PolicyLoader()


def load_profile(name: str) -> Profile:
    """A shipped profile by name (``hub/policy/profiles/<name>.toml``)."""
    return _DEFAULT_LOADER.profile(name)


def profile_names() -> tuple[str, ...]:
    return _DEFAULT_LOADER.profile_names()
