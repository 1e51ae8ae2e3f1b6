"""China's official working-day calendar and the deadline arithmetic of the 差评 workflow.

Strategy: a ``WorkCalendar`` answers "is this day worked?" from three layers, most specific
first: (1) days named by an imported holiday table (``hub.workdays.table``: the State
Council's notice for a year, typed in by an operator); (2) for the years ``chinese-calendar``
knows (2004–2026 with version 1.11), that package's data; (3) for a year known only through
its table, the weekday rule. A day in any other year is a ``CalendarError`` that names the
known years and says how to import a table: never a silent guess (DOMAIN.md, "Time limits":
the hub "must say clearly when a date is outside what it knows"). Calendars are immutable;
``with_table`` returns a new one, so hub processes can share one without locks.

Counting convention (``DayCount``; the jurisdiction profile sets it, hub.policy):
- The day of the event is not counted; counting starts on the next day. This is the general
  rule for periods in Chinese law (民法典 第二百零一条: "开始的当日不计入，自下一日开始计算").
  "Callback within 1 working day" (DOMAIN.md: Ningbo, Liaoning) of a 差评 given on Monday
  therefore ends on Tuesday. An event on a rest day or after office hours needs no special
  case: its day is not counted anyway, and the first working day after it is day 1 (a 差评
  on 2025-10-01 must be called back by 2025-10-09, the first working day after National Day).
- A jurisdiction that counts the event day itself sets ``count_event_day``; it may add an
  ``event_day_cutoff`` (e.g. 17:00, office closing): events at or after it count from the
  next day. On a rest day the event day is never a working day, so it never counts.
- "N working days" (工作日) skip rest days and holidays and count swapped working weekends
  (调休上班), as the official calendar says (行政许可法 第八十二条: 以工作日计算，不含法定节假日).
- "N natural days" (自然日) count every day. When the last day is a rest day the period ends
  on the next working day (民法典 第二百零三条: 期间的最后一日是法定休假日的，以法定休假日结束
  的次日为期间的最后一日) unless the profile switches ``roll_to_workday`` off.
- A period ends at 24:00 (China Standard Time) of its last day (民法典 第二百零三条: 截止时间为
  二十四时): ``end_of_day`` gives that instant, exclusive.
Datetimes must carry a time zone (a naive one is refused, not guessed); they are converted to
China Standard Time, UTC+8 (China has had no daylight saving time since 1991, so a fixed
offset is exact for every year this calendar can know).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import chinese_calendar.constants as _cc  # type: ignore[import-untyped]

from hub.workdays.errors import CalendarError
from hub.workdays.table import HolidayTable, load_holiday_table

CHINA_TZ = timezone(timedelta(hours=8), "CST")

# Longest period the arithmetic accepts. No 好差评 limit exceeds a few weeks (DOMAIN.md: 15
# working days is the longest); the cap turns a caller's wrong unit into an error rather than
# a multi-year walk.
MAX_PERIOD_DAYS = 1000

HOW_TO_IMPORT_ZH = "请按 docs/hub-operator.md“Working-day calendar”一节导入该年的节假日表"
HOW_TO_IMPORT_EN = (
    'import that year\'s holiday table as described in docs/hub-operator.md, "Working-day calendar"'
)

_ONE_DAY = timedelta(days=1)


def _package_data() -> tuple[frozenset[date], frozenset[date], range, str]:
    holidays = frozenset(_cc.holidays)
    workdays = frozenset(_cc.workdays)
    years = range(min(holidays).year, max(holidays).year + 1)
    version = importlib.metadata.version("chinese-calendar")
    return holidays, workdays, years, f"chinese-calendar {version}"


_PKG_HOLIDAYS, _PKG_WORKDAYS, PACKAGE_YEARS, PACKAGE_SOURCE = _package_data()


class DayUnit(StrEnum):
    """How a period counts days (DOMAIN.md: limits are in working days or natural days)."""

    WORKING_DAYS = "working_days"
    NATURAL_DAYS = "natural_days"


@dataclass(frozen=True)
class Period:
    """``amount`` days of ``unit``, e.g. 15 working days."""

    amount: int
    unit: DayUnit

    def __str__(self) -> str:
        word = "working" if self.unit is DayUnit.WORKING_DAYS else "natural"
        return f"{self.amount} {word} day{'' if self.amount == 1 else 's'}"

    @property
    def zh(self) -> str:
        return f"{self.amount}个{'工作日' if self.unit is DayUnit.WORKING_DAYS else '自然日'}"


@dataclass(frozen=True)
class DayCount:
    """How a period is counted from its event (see the module docstring for each rule)."""

    count_event_day: bool = False
    event_day_cutoff: time | None = None
    roll_to_workday: bool = True


# 民法典 第二百零一条 and 第二百零三条: the event day does not count; a natural-day period
# that ends on a rest day ends on the next working day.
DEFAULT_DAY_COUNT = DayCount()


@dataclass(frozen=True)
class YearSource:
    """Where the calendar's knowledge of one year comes from."""

    year: int
    source: str  # "chinese-calendar 1.11.0", or the holiday table's file
    notice: str | None  # the notice a table cites; None for the package


def local_moment(moment: date | datetime) -> tuple[date, time | None]:
    """The China Standard Time date (and time, for a datetime) of ``moment``."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise CalendarError(
                "calendar.naive_datetime",
                f"时间 {moment.isoformat()} 缺少时区，无法确定是哪一天",
                f"datetime {moment.isoformat()} has no time zone, so its day is ambiguous",
            )
        local = moment.astimezone(CHINA_TZ)
        return local.date(), local.time()
    if not isinstance(moment, date):
        raise CalendarError(
            "calendar.type",
            f"应为 date 或带时区的 datetime，实际为 {type(moment).__name__}",
            f"expected a date or an aware datetime, got {type(moment).__name__}",
        )
    return moment, None


def local_date(moment: date | datetime) -> date:
    return local_moment(moment)[0]


def start_of_day(day: date) -> datetime:
    """00:00 China Standard Time of ``day``."""
    return datetime.combine(day, time(0), CHINA_TZ)


def end_of_day(day: date) -> datetime:
    """24:00 China Standard Time of ``day`` (exclusive: on time means strictly before it)."""
    return start_of_day(day + _ONE_DAY)


def _check_amount(amount: int, *, minimum: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise CalendarError(
            "calendar.type",
            f"天数应为整数，实际为 {amount!r}",
            f"the number of days must be an integer, got {amount!r}",
        )
    if not minimum <= amount <= MAX_PERIOD_DAYS:
        raise CalendarError(
            "calendar.range",
            f"天数应在 {minimum}–{MAX_PERIOD_DAYS} 之间，实际为 {amount}",
            f"the number of days must be in {minimum}–{MAX_PERIOD_DAYS}, got {amount}",
        )


def _year_ranges(years: Iterable[int]) -> str:
    """2004, 2005, …, 2026, 2028 → "2004–2026, 2028"."""
    parts: list[str] = []
    ordered = sorted(years)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}–{ordered[j]}")
        i = j + 1
    return ", ".join(parts) or "-"


class WorkCalendar:
    """The working-day calendar: chinese-calendar plus imported holiday tables."""

    def __init__(self, tables: Iterable[HolidayTable] = (), *, replace: bool = False) -> None:
        """``replace``: let these tables override years chinese-calendar knows even where
        they disagree (a correction). Without it a disagreeing table is an error, and an
        agreeing one is accepted (so a table stays valid after a package upgrade)."""
        self._entries: tuple[tuple[HolidayTable, bool], ...] = tuple(
            (table, replace) for table in tables
        )
        self._build()

    def _build(self) -> None:
        owned: dict[int, HolidayTable] = {}
        overrides: dict[date, bool] = {}
        origin: dict[date, HolidayTable] = {}
        for table, replace in self._entries:
            if table.year in owned:
                raise CalendarError(
                    "calendar.duplicate_year",
                    f"{table.year} 年已有节假日表（{owned[table.year].source}），"
                    f"不能再导入 {table.source}",
                    f"{table.year} already has a holiday table ({owned[table.year].source}); "
                    f"cannot import {table.source} too",
                )
            if table.year in PACKAGE_YEARS and not replace:
                self._check_agrees(table)
            for day, worked in table.overrides().items():
                if day in overrides and overrides[day] != worked:
                    other = origin[day]
                    raise CalendarError(
                        "calendar.conflict",
                        f"{day} 在 {other.source} 与 {table.source} 中的安排不一致",
                        f"{day} is a working day in one of {other.source} and {table.source} "
                        "and a day off in the other",
                    )
                overrides[day] = worked
                origin[day] = table
            owned[table.year] = table
        self._owned = owned
        self._overrides = overrides
        sources = {year: YearSource(year, PACKAGE_SOURCE, None) for year in PACKAGE_YEARS}
        for year, table in owned.items():
            sources[year] = YearSource(year, table.source, table.notice)
        self._years = MappingProxyType(dict(sorted(sources.items())))
        # per-year prefix counts for workdays_between; filled on first use (idempotent, so
        # sharing a calendar between threads is safe)
        self._prefixes: dict[int, tuple[int, ...]] = {}

    @staticmethod
    def _check_agrees(table: HolidayTable) -> None:
        day = date(table.year, 1, 1)
        differences: list[date] = []
        while day.year == table.year:
            if table.is_workday(day) != _package_is_workday(day):
                differences.append(day)
            day += _ONE_DAY
        if differences:
            shown = ", ".join(str(d) for d in differences[:5])
            more = f" (+{len(differences) - 5})" if len(differences) > 5 else ""
            raise CalendarError(
                "calendar.disagrees",
                f"{table.source} 与 {PACKAGE_SOURCE} 对 {table.year} 年的安排不一致："
                f"{shown}{more}；如确需以该表为准，请以 replace=True 导入",
                f"{table.source} disagrees with {PACKAGE_SOURCE} about {table.year} on "
                f"{shown}{more}; import it with replace=True to make the table win",
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_directory(cls, directory: str | Path) -> WorkCalendar:
        """chinese-calendar plus every ``*.toml`` holiday table in ``directory``."""
        folder = Path(directory)
        if not folder.is_dir():
            raise CalendarError(
                "calendar.no_directory",
                f"节假日表目录不存在：{folder}",
                f"holiday table directory not found: {folder}",
            )
        return cls(load_holiday_table(path) for path in sorted(folder.glob("*.toml")))

    def with_table(
        self, table: HolidayTable | str | Path, *, replace: bool = False
    ) -> WorkCalendar:
        """A new calendar that also knows ``table`` (a checked table or a file to load)."""
        loaded = table if isinstance(table, HolidayTable) else load_holiday_table(table)
        new = WorkCalendar.__new__(WorkCalendar)
        new._entries = (*self._entries, (loaded, replace))
        new._build()
        return new

    # ------------------------------------------------------------------ what it knows

    def known_years(self) -> Mapping[int, YearSource]:
        """Read-only view: year → where its calendar comes from, in year order."""
        return self._years

    def describe_known_years(self) -> str:
        """e.g. "2004–2026 (chinese-calendar 1.11.0), 2027 (holidays-2027.toml)"."""
        groups: dict[str, list[int]] = {}
        for year, source in self._years.items():
            groups.setdefault(source.source, []).append(year)
        return ", ".join(f"{_year_ranges(ys)} ({src})" for src, ys in groups.items())

    def _unknown(self, day: date, zh_doing: str = "", en_doing: str = "") -> CalendarError:
        known = _year_ranges(self._years)
        return CalendarError(
            "calendar.unknown_year",
            f"{zh_doing}{day} 所在的 {day.year} 年不在工作日历中（已知年份：{known}）；"
            + HOW_TO_IMPORT_ZH,
            f"{en_doing}{day} is in {day.year}, which the working-day calendar does not know "
            f"(known years: {known}); " + HOW_TO_IMPORT_EN,
        )

    # ------------------------------------------------------------------ queries

    def is_workday(self, day: date | datetime) -> bool:
        """Whether ``day`` (its China Standard Time date) is an official working day."""
        d = local_date(day)
        if d.year not in self._years:
            raise self._unknown(d)
        worked = self._overrides.get(d)
        if worked is not None:
            return worked
        if d.year in self._owned:
            return d.weekday() < 5
        return _package_is_workday(d)

    def _days(self, first: date, step: timedelta, zh: str, en: str) -> Iterator[date]:
        day = first
        while True:
            if day.year not in self._years:
                raise self._unknown(day, zh, en)
            yield day
            day += step

    def add_workdays(
        self, start: date | datetime, amount: int, *, rule: DayCount = DEFAULT_DAY_COUNT
    ) -> date:
        """The last day of a period of ``amount`` (≥ 1) working days from ``start``."""
        _check_amount(amount, minimum=1)
        anchor = _anchor(start, rule)
        zh, en = _doing(start, amount, "个工作日", "working days")
        count = 0
        for day in self._days(anchor + _ONE_DAY, _ONE_DAY, zh, en):
            if self.is_workday(day):
                count += 1
                if count == amount:
                    return day
        raise AssertionError("unreachable")  # pragma: no cover

    def add_natural_days(
        self, start: date | datetime, amount: int, *, rule: DayCount = DEFAULT_DAY_COUNT
    ) -> date:
        """The last day of a period of ``amount`` (≥ 1) natural days from ``start``; with
        ``rule.roll_to_workday`` a last day that is a rest day moves to the next working
        day. Without it no calendar knowledge is needed, so no year is ever refused."""
        _check_amount(amount, minimum=1)
        last = _anchor(start, rule) + timedelta(days=amount)
        if not rule.roll_to_workday:
            return last
        zh, en = _doing(start, amount, "个自然日", "natural days")
        for day in self._days(last, _ONE_DAY, zh, en):
            if self.is_workday(day):
                return day
        raise AssertionError("unreachable")  # pragma: no cover

    def add(
        self, start: date | datetime, period: Period, *, rule: DayCount = DEFAULT_DAY_COUNT
    ) -> date:
        """The last day of ``period`` counted from ``start``."""
        if period.unit is DayUnit.WORKING_DAYS:
            return self.add_workdays(start, period.amount, rule=rule)
        return self.add_natural_days(start, period.amount, rule=rule)

    def subtract_workdays(self, day: date | datetime, amount: int) -> date:
        """The ``amount``-th working day before ``day`` (``day`` itself for 0): where an
        upcoming-deadline warning starts."""
        _check_amount(amount, minimum=0)
        d = local_date(day)
        if amount == 0:
            return d
        zh, en = (
            f"从 {d} 往前数 {amount} 个工作日时，",
            f"counting {amount} working days back from {d}: ",
        )
        count = 0
        for candidate in self._days(d - _ONE_DAY, -_ONE_DAY, zh, en):
            if self.is_workday(candidate):
                count += 1
                if count == amount:
                    return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    def subtract(self, day: date | datetime, period: Period) -> date:
        """``day`` moved back by ``period`` (natural days: plain date arithmetic)."""
        if period.unit is DayUnit.WORKING_DAYS:
            return self.subtract_workdays(day, period.amount)
        _check_amount(period.amount, minimum=0)
        return local_date(day) - timedelta(days=period.amount)

    def workdays_between(self, first: date | datetime, last: date | datetime) -> int:
        """Working days after ``first`` up to and including ``last`` (the event day does not
        count, as in ``add_workdays``); negative when ``last`` is before ``first``. So
        ``workdays_between(d, add_workdays(d, n)) == n``. Cost: one lookup per year spanned
        (per-year prefix counts, built on first use)."""
        a, b = local_date(first), local_date(last)
        sign = 1
        if b < a:
            a, b, sign = b, a, -1
        if a == b:
            return 0
        lo = a + _ONE_DAY
        for year in range(lo.year, b.year + 1):
            if year not in self._years:
                day = max(lo, date(year, 1, 1))
                raise self._unknown(
                    day, f"计算 {a} 至 {b} 的工作日时，", f"counting working days from {a} to {b}: "
                )
        count = 0
        for year in range(lo.year, b.year + 1):
            prefix = self._prefix(year)
            start = lo.timetuple().tm_yday if year == lo.year else 1
            end = b.timetuple().tm_yday if year == b.year else len(prefix) - 1
            count += prefix[end] - prefix[start - 1]
        return sign * count

    def _prefix(self, year: int) -> tuple[int, ...]:
        """prefix[i] = working days among the first i days of ``year`` (prefix[0] = 0)."""
        cached = self._prefixes.get(year)
        if cached is None:
            counts = [0]
            day = date(year, 1, 1)
            while day.year == year:
                counts.append(counts[-1] + self.is_workday(day))
                day += _ONE_DAY
            cached = self._prefixes[year] = tuple(counts)
        return cached


def _package_is_workday(day: date) -> bool:
    return day in _PKG_WORKDAYS or (day.weekday() < 5 and day not in _PKG_HOLIDAYS)


def _anchor(start: date | datetime, rule: DayCount) -> date:
    """The day counting starts after: the event day itself, or the day before it when the
    profile counts the event day (and the event came before the cutoff)."""
    day, moment = local_moment(start)
    if rule.count_event_day and (
        moment is None or rule.event_day_cutoff is None or moment < rule.event_day_cutoff
    ):
        return day - _ONE_DAY
    return day


def _doing(start: date | datetime, amount: int, zh_unit: str, en_unit: str) -> tuple[str, str]:
    day = local_date(start)
    return (
        f"从 {day} 起算 {amount}{zh_unit}时，",
        f"counting {amount} {en_unit} from {day}: ",
    )


def import_holiday_table(
    path: str | Path, *, into: WorkCalendar | None = None, replace: bool = False
) -> WorkCalendar:
    """Load the holiday table at ``path`` and return ``into`` (default: a calendar of
    chinese-calendar alone) extended with it."""
    return (into or WorkCalendar()).with_table(path, replace=replace)
