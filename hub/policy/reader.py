"""Reading policy files: TOML in, checked Python values out, every refusal a PolicyError.

Strategy: ``tomllib`` parses; ``merge`` lays a profile over the profile it extends, section by
section, and remembers which file every value came from, so an error in an inherited value
names the file that holds it. ``Node`` walks one table: each typed getter checks presence,
type and range and records the key as known; ``finish()`` then refuses any key nobody asked
for (a misspelt setting must not be silently ignored). Values are the settings a jurisdiction
chooses; nothing here holds a policy value itself.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from hub.policy.errors import PolicyError
from hub.workdays import DayUnit, Period

# The file layout this hub reads; a file with another number is refused, not guessed at.
SCHEMA_VERSION = 1
# A profile or catalogue is a few hundred lines; far bigger is not a policy file.
MAX_POLICY_FILE_BYTES = 256 * 1024
# Profile, catalogue and code-system names: file stems and identifiers in records.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
MAX_TEXT_CHARS = 200

_PERIOD = re.compile(r"^\s*(\d{1,4})\s+(working|natural)\s+days?\s*$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

KeyPath = tuple[str | int, ...]
E = TypeVar("E")


def format_path(path: KeyPath) -> str:
    """("indicators", 2, "code") → "indicators[2].code"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def read_toml(path: Path) -> dict[str, Any]:
    return read_policy_file(path)[0]


def read_policy_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed file and its bytes (for the digest a profile carries)."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PolicyError(
            "policy.unreadable", file, "", f"无法读取文件：{err}", f"cannot read the file: {err}"
        ) from err
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise PolicyError(
            "policy.too_large",
            file,
            "",
            f"文件超过 {MAX_POLICY_FILE_BYTES} 字节",
            f"the file is larger than {MAX_POLICY_FILE_BYTES} bytes",
        )
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise PolicyError(
            "policy.syntax",
            file,
            "",
            f"不是有效的 UTF-8 TOML：{err}",
            f"not valid UTF-8 TOML: {err}",
        ) from err


# ----------------------------------------------------------------------------- merging

Origins = dict[KeyPath, str]


def mark(origins: Origins, path: KeyPath, value: object, file: str) -> None:
    """Record ``file`` as the origin of ``value`` at ``path`` and of everything inside it."""
    origins[path] = file
    if isinstance(value, dict):
        for key, inner in value.items():
            mark(origins, (*path, key), inner, file)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            mark(origins, (*path, index), inner, file)


def merge(
    base: Mapping[str, Any],
    child: Mapping[str, Any],
    file: str,
    origins: Origins,
    atomic: Callable[[KeyPath], bool],
    path: KeyPath = (),
) -> dict[str, Any]:
    """``child`` over ``base``: tables merge key by key; any other value, and any table for
    which ``atomic(path)`` holds (a code map), replaces the inherited one whole."""
    out = dict(base)
    for key, value in child.items():
        here = (*path, key)
        inherited = out.get(key)
        if isinstance(value, dict) and isinstance(inherited, dict) and not atomic(here):
            out[key] = merge(inherited, value, file, origins, atomic, here)
            origins[here] = file
        else:
            for stale in [p for p in origins if p[: len(here)] == here]:
                del origins[stale]
            out[key] = value
            mark(origins, here, value, file)
    return out


# ----------------------------------------------------------------------------- walking


@dataclass
class Context:
    """What every Node of one load shares: the file being loaded (blamed for missing values)
    and where each present value came from."""

    file: str
    origins: Origins = field(default_factory=dict)
    chain_note_zh: str = ""
    chain_note_en: str = ""
    chain: tuple[str, ...] = ()  # the files of an extends chain, most specific first


class Node:
    """A TOML table at ``path`` with typed, range-checked getters. Absent optional values and
    values set to ``false`` (which switches off an inherited optional setting) read as None."""

    def __init__(self, data: Mapping[str, Any], path: KeyPath, ctx: Context) -> None:
        self.data = data
        self.path = path
        self.ctx = ctx
        self.asked: list[str] = []

    # -- errors

    def file_of(self, key: str | int | None) -> str:
        path = self.path if key is None else (*self.path, key)
        while path:
            if path in self.ctx.origins:
                return self.ctx.origins[path]
            path = path[:-1]
        return self.ctx.file

    def fail(self, code: str, key: str | int | None, zh: str, en: str) -> NoReturn:
        path = self.path if key is None else (*self.path, key)
        raise PolicyError(code, self.file_of(key), format_path(path), zh, en)

    def conflict(self, keys: tuple[str | int, ...], zh: str, en: str) -> NoReturn:
        """Settings that contradict each other: blamed on the one set in the most specific
        file (the child that introduced the contradiction), and named in the message."""
        rank = {file: i for i, file in enumerate(self.ctx.chain)}
        key = min(keys, key=lambda k: rank.get(self.file_of(k), len(rank)))
        names = ", ".join(format_path((*self.path, k)) for k in keys)
        self.fail("policy.conflict", key, f"{zh}（相关设置：{names}）", f"{en} (settings: {names})")

    def wrong_type(self, key: str | int, value: object, zh: str, en: str) -> NoReturn:
        self.fail(
            "policy.type",
            key,
            f"应为{zh}，实际为 {_toml_type(value)} {_show(value)}",
            f"expected {en}, got {_toml_type(value)} {_show(value)}",
        )

    def out_of_range(self, key: str | int, value: object, zh: str, en: str) -> NoReturn:
        self.fail(
            "policy.range",
            key,
            f"{_show(value)} 超出范围：应为{zh}",
            f"{_show(value)} is out of range: expected {en}",
        )

    # -- presence

    def present(self, key: str) -> bool:
        """Whether ``key`` holds a value (``false`` means "switched off" for optional ones)."""
        self.asked.append(key)
        return key in self.data and self.data[key] is not False

    def require(self, key: str) -> Any:
        self.asked.append(key)
        if key not in self.data:
            self.fail(
                "policy.missing",
                key,
                "缺少必填项" + self.ctx.chain_note_zh,
                "required value is missing" + self.ctx.chain_note_en,
            )
        return self.data[key]

    def finish(self) -> None:
        """Refuse keys that no getter asked for."""
        for key in self.data:
            if key not in self.asked:
                allowed = ", ".join(dict.fromkeys(self.asked)) or "-"
                self.fail(
                    "policy.unknown_key",
                    key,
                    f"未知的键（此处可用：{allowed}）",
                    f"unknown key (expected one of: {allowed})",
                )

    # -- typed getters

    def integer(self, key: str, lo: int, hi: int, value: object = None) -> int:
        value = self.require(key) if value is None else value
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(key, value, "整数", "an integer")
        if not lo <= value <= hi:
            self.out_of_range(key, value, f" {lo}–{hi} 的整数", f"an integer in {lo}–{hi}")
        return value

    def optional_integer(self, key: str, lo: int, hi: int) -> int | None:
        return self.integer(key, lo, hi) if self.present(key) else None

    def boolean(self, key: str) -> bool:
        value = self.require(key)
        if not isinstance(value, bool):
            self.wrong_type(key, value, "布尔值 true 或 false", "a boolean, true or false")
        return value

    def text(
        self, key: str, *, limit: int = MAX_TEXT_CHARS, pattern: re.Pattern[str] | None = None
    ) -> str:
        value = self.require(key)
        if not isinstance(value, str):
            self.wrong_type(key, value, "字符串", "a string")
        if pattern is not None and not pattern.match(value):
            self.fail(
                "policy.format",
                key,
                f"{value!r} 格式不对：应匹配 {pattern.pattern}",
                f"{value!r} is malformed: expected {pattern.pattern}",
            )
        if not value.strip() or len(value) > limit:
            self.out_of_range(
                key,
                value,
                f" 1–{limit} 个字符的非空文本",
                f"non-blank text of 1–{limit} characters",
            )
        return value

    def choice(self, key: str, choices: Mapping[str, E]) -> E:
        value = self.require(key)
        if not isinstance(value, str):
            self.wrong_type(key, value, "字符串", "a string")
        if value not in choices:
            names = ", ".join(choices)
            self.fail(
                "policy.choice",
                key,
                f"{value!r} 不是可选值（可用：{names}）",
                f"{value!r} is not one of: {names}",
            )
        return choices[value]

    def table(self, key: str) -> Node:
        value = self.require(key)
        if not isinstance(value, dict):
            self.wrong_type(key, value, "表（TOML table）", "a table")
        return Node(value, (*self.path, key), self.ctx)

    def optional_table(self, key: str) -> Node | None:
        return self.table(key) if self.present(key) else None

    def array(self, key: str) -> list[Any]:
        value = self.require(key)
        if not isinstance(value, list):
            self.wrong_type(key, value, "数组", "an array")
        return value

    def text_pair(self, key: str) -> tuple[str, str]:
        """``{ zh = "…", en = "…" }``."""
        node = self.table(key)
        pair = node.text("zh"), node.text("en")
        node.finish()
        return pair

    def period(self, key: str, lo: int, hi: int) -> Period:
        """A period written ``"15 working days"`` or ``"7 natural days"``."""
        value = self.require(key)
        if not isinstance(value, str):
            self.wrong_type(
                key, value, '形如 "15 working days" 的字符串', 'a string like "15 working days"'
            )
        match = _PERIOD.match(value)
        if match is None:
            self.fail(
                "policy.format",
                key,
                f'{value!r} 格式不对：应为 "<天数> working days"（工作日）'
                f'或 "<天数> natural days"（自然日）',
                f'{value!r} is malformed: expected "<n> working days" or "<n> natural days"',
            )
        amount = int(match.group(1))
        if not lo <= amount <= hi:
            self.out_of_range(key, value, f" {lo}–{hi} 天", f"{lo}–{hi} days")
        unit = DayUnit.WORKING_DAYS if match.group(2) == "working" else DayUnit.NATURAL_DAYS
        return Period(amount, unit)

    def optional_period(self, key: str, lo: int, hi: int) -> Period | None:
        return self.period(key, lo, hi) if self.present(key) else None

    def clock(self, key: str) -> time:
        value = self.text(key)
        match = _CLOCK.match(value)
        if match is None:
            self.fail(
                "policy.format",
                key,
                f"{value!r} 应为 HH:MM（24 小时制）",
                f"{value!r}: expected HH:MM (24-hour)",
            )
        return time(int(match.group(1)), int(match.group(2)))

    def month_day(self, key: str) -> tuple[int, int]:
        value = self.text(key)
        match = _MONTH_DAY.match(value)
        if match is None or int(match.group(2)) > _DAYS_IN_MONTH[int(match.group(1)) - 1]:
            self.fail(
                "policy.format",
                key,
                f"{value!r} 应为 MM-DD 形式的日期（如 12-31）",
                f"{value!r}: expected a month and day MM-DD such as 12-31",
            )
        return int(match.group(1)), int(match.group(2))


def _toml_type(value: object) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }
    return names.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
