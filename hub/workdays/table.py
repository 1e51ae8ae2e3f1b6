"""Holiday tables: the State Council's yearly holiday notice as a small TOML file.

Strategy: ``chinese-calendar`` knows 2004–2026 and raises for 2027 (DOMAIN.md, "Time limits").
The hub must accept the next year's notice before the package catches up, so an operator
types the notice into one file per year, and this module reads and checks it. The file says
what the notice says, holiday by holiday: the days off (a range) and the weekend days worked
in exchange (调休上班). Everything else in the year follows the weekday rule (Monday–Friday
work, Saturday–Sunday rest). The checks catch typing mistakes rather than policy: a "working
weekend" that is a weekday, overlapping holidays, a range that runs backwards or is
implausibly long, a date far from the table's year.

The format (``docs/hub-operator.md``, "Working-day calendar"):

    format = "hcp-holiday-table"
    format_version = 1
    year = 2025
    notice = "国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）"
    url = "https://www.gov.cn/..."              # optional

    [[holidays]]
    name = "春节"
    en = "Spring Festival"                       # optional
    start = 2025-01-28                           # first day off (TOML date)
    end = 2025-02-04                             # last day off, inclusive
    working_days = [2025-01-26, 2025-02-08]      # 调休: weekend days worked; optional
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from hub.workdays.errors import HolidayTableError

FORMAT = "hcp-holiday-table"
FORMAT_VERSION = 1

# A table is a few dozen lines; anything bigger is not a holiday table.
MAX_TABLE_BYTES = 64 * 1024
# Years a table may describe: far outside this is a typo, not a notice.
MIN_YEAR = 2000
MAX_YEAR = 2100
# The longest day-off range in the official calendar since 2004 is 10 days (Spring Festival
# 2020, extended); 15 leaves room and still catches a mistyped month.
MAX_HOLIDAY_DAYS = 15
# A notice may move days across the new-year boundary (the 2012 notice made Saturday
# 2011-12-31 a working day), so dates up to this many days outside the year are accepted.
YEAR_BOUNDARY_DAYS = 31
MAX_NOTICE_CHARS = 500
MAX_NAME_CHARS = 64

_TOP_KEYS = ("format", "format_version", "year", "notice", "url", "holidays")
_HOLIDAY_KEYS = ("name", "en", "start", "end", "working_days")
_WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(frozen=True)
class Holiday:
    """One holiday of a notice: the days off ``start``…``end`` and the weekend days worked."""

    name: str
    name_en: str | None
    start: date
    end: date
    working_days: tuple[date, ...]

    def days_off(self) -> tuple[date, ...]:
        count = (self.end - self.start).days + 1
        return tuple(self.start + timedelta(days=i) for i in range(count))


@dataclass(frozen=True)
class HolidayTable:
    """A year's holiday notice, checked. ``source`` is the file it came from."""

    year: int
    notice: str
    url: str | None
    holidays: tuple[Holiday, ...]
    source: str

    def overrides(self) -> dict[date, bool]:
        """The days the notice changes: date → is a working day."""
        result: dict[date, bool] = {}
        for holiday in self.holidays:
            for day in holiday.days_off():
                result[day] = False
            for day in holiday.working_days:
                result[day] = True
        return result

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is worked according to this table alone (weekday rule + notice)."""
        return self.overrides().get(day, day.weekday() < 5)


def load_holiday_table(path: str | Path) -> HolidayTable:
    """Read and check a holiday table file; every problem is a HolidayTableError naming the
    file, the key and what was expected."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise HolidayTableError(
            "table.unreadable", file, "", f"无法读取文件：{err}", f"cannot read the file: {err}"
        ) from err
    if len(raw) > MAX_TABLE_BYTES:
        raise HolidayTableError(
            "table.too_large",
            file,
            "",
            f"文件超过 {MAX_TABLE_BYTES} 字节",
            f"the file is larger than {MAX_TABLE_BYTES} bytes",
        )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise HolidayTableError(
            "table.syntax",
            file,
            "",
            f"不是有效的 UTF-8 TOML：{err}",
            f"not valid UTF-8 TOML: {err}",
        ) from err
    return parse_holiday_table(data, source=file)


def parse_holiday_table(data: Mapping[str, Any], *, source: str = "<table>") -> HolidayTable:
    """Check an already-parsed table (the dictionary ``tomllib`` returns)."""
    r = _Reader(source)
    r.keys(data, _TOP_KEYS, "")
    fmt = r.get(data, "format", str, "")
    if fmt != FORMAT:
        r.fail("table.format", "format", f"应为 {FORMAT!r}", f"expected {FORMAT!r}, got {fmt!r}")
    version = r.get(data, "format_version", int, "")
    if version != FORMAT_VERSION:
        r.fail(
            "table.format_version",
            "format_version",
            f"本版本只能读取格式版本 {FORMAT_VERSION}，而文件为 {version}",
            f"this hub reads format_version {FORMAT_VERSION}, the file has {version}",
        )
    year = r.get(data, "year", int, "")
    if not MIN_YEAR <= year <= MAX_YEAR:
        r.fail(
            "table.range",
            "year",
            f"年份应在 {MIN_YEAR}–{MAX_YEAR} 之间，实际为 {year}",
            f"expected a year in {MIN_YEAR}–{MAX_YEAR}, got {year}",
        )
    notice = r.text(data, "notice", "", MAX_NOTICE_CHARS)
    url = r.text(data, "url", "", 2000, required=False)
    entries = r.get(data, "holidays", list, "")
    if not entries:
        r.fail(
            "table.missing",
            "holidays",
            "至少需要一个节假日",
            "at least one holiday is required",
        )
    earliest = date(year, 1, 1) - timedelta(days=YEAR_BOUNDARY_DAYS)
    latest = date(year, 12, 31) + timedelta(days=YEAR_BOUNDARY_DAYS)
    holidays: list[Holiday] = []
    seen: dict[date, str] = {}
    for index, entry in enumerate(entries):
        at = f"holidays[{index}]"
        if not isinstance(entry, dict):
            r.fail("table.type", at, "应为表（[[holidays]]）", "expected a table ([[holidays]])")
        r.keys(entry, _HOLIDAY_KEYS, at + ".")
        name = r.text(entry, "name", at + ".", MAX_NAME_CHARS)
        name_en = r.text(entry, "en", at + ".", MAX_NAME_CHARS, required=False)
        start = r.day(entry, "start", at + ".")
        end = r.day(entry, "end", at + ".")
        if end < start:
            r.fail(
                "table.range",
                at + ".end",
                f"结束日期 {end} 早于开始日期 {start}",
                f"end {end} is before start {start}",
            )
        if (end - start).days + 1 > MAX_HOLIDAY_DAYS:
            r.fail(
                "table.range",
                at + ".end",
                f"放假天数超过 {MAX_HOLIDAY_DAYS} 天（{start}…{end}），请检查日期",
                f"more than {MAX_HOLIDAY_DAYS} days off ({start}…{end}); check the dates",
            )
        if start.year != year and end.year != year:
            r.fail(
                "table.range",
                at + ".start",
                f"节假日 {start}…{end} 不在 {year} 年内",
                f"holiday {start}…{end} is not in {year}",
            )
        worked_raw = entry.get("working_days", [])
        if not isinstance(worked_raw, list):
            r.fail("table.type", at + ".working_days", "应为日期列表", "expected a list of dates")
        worked: list[date] = []
        for k in range(len(worked_raw)):
            key = f"{at}.working_days[{k}]"
            day = r.day_value(worked_raw[k], key)
            if day.weekday() < 5:
                r.fail(
                    "table.not_weekend",
                    key,
                    f"{day} 是{_WEEKDAY_NAMES[day.weekday()]}，调休上班日应为周六或周日",
                    f"{day} is a {day.strftime('%A')}; a swapped working day must be a "
                    "Saturday or Sunday",
                )
            worked.append(day)
        holiday = Holiday(name, name_en, start, end, tuple(worked))
        for key, days in ((at + ".start", holiday.days_off()), (at + ".working_days", worked)):
            for day in days:
                if not earliest <= day <= latest:
                    r.fail(
                        "table.range",
                        key,
                        f"{day} 距 {year} 年超过 {YEAR_BOUNDARY_DAYS} 天",
                        f"{day} is more than {YEAR_BOUNDARY_DAYS} days outside {year}",
                    )
                if day in seen:
                    r.fail(
                        "table.duplicate",
                        key,
                        f"{day} 已在 {seen[day]} 中出现",
                        f"{day} already appears in {seen[day]}",
                    )
                seen[day] = at
        holidays.append(holiday)
    return HolidayTable(year, notice, url, tuple(holidays), source)


class _Reader:
    """Typed access to the parsed TOML with errors that name the file and key."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, code: str, key: str, zh: str, en: str) -> NoReturn:
        raise HolidayTableError(code, self.file, key, zh, en)

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(
                    "table.unknown_key",
                    prefix + key,
                    f"未知的键（可用：{', '.join(allowed)}）",
                    f"unknown key (expected one of: {', '.join(allowed)})",
                )

    def get(self, table: Mapping[str, Any], key: str, kind: type, prefix: str) -> Any:
        if key not in table:
            self.fail("table.missing", prefix + key, "缺少必填项", "required value is missing")
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(
                "table.type",
                prefix + key,
                f"应为 {kind.__name__}，实际为 {type(value).__name__}",
                f"expected {kind.__name__}, got {type(value).__name__}",
            )
        return value

    def text(
        self,
        table: Mapping[str, Any],
        key: str,
        prefix: str,
        limit: int,
        *,
        required: bool = True,
    ) -> Any:
        if not required and key not in table:
            return None
        value = self.get(table, key, str, prefix)
        if not value.strip() or len(value) > limit:
            self.fail(
                "table.range",
                prefix + key,
                f"应为 1–{limit} 个字符的非空文本",
                f"expected non-blank text of 1–{limit} characters",
            )
        return value

    def day(self, table: Mapping[str, Any], key: str, prefix: str) -> date:
        if key not in table:
            self.fail("table.missing", prefix + key, "缺少必填项", "required value is missing")
        return self.day_value(table[key], prefix + key)

    def day_value(self, value: object, key: str) -> date:
        if isinstance(value, datetime) or not isinstance(value, date):
            self.fail(
                "table.type",
                key,
                f"应为 TOML 日期（如 2027-01-01），实际为 {value!r}",
                f"expected a TOML date such as 2027-01-01, got {value!r}",
            )
        return value
