"""hub.workdays against the real 2025 and 2026 holiday periods (dates asserted explicitly, as
chinese-calendar 1.11 has them), deadlines that cross them, the counting conventions, and the
refusals: naive datetimes, years the calendar does not know, bad amounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import chinese_calendar  # type: ignore[import-untyped]
import pytest

from hub.workdays import (
    CHINA_TZ,
    PACKAGE_YEARS,
    CalendarError,
    DayCount,
    DayUnit,
    Period,
    WorkCalendar,
    end_of_day,
    local_date,
)

CAL = WorkCalendar()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# Holiday periods (days off) and swapped working weekends (调休上班), as chinese-calendar 1.11
# has them from the State Council notices for 2025 and 2026.
REST_2025 = {
    "元旦 New Year": (date(2025, 1, 1), date(2025, 1, 1)),
    "春节 Spring Festival": (date(2025, 1, 28), date(2025, 2, 4)),
    "清明 Tomb-sweeping": (date(2025, 4, 4), date(2025, 4, 6)),
    "劳动节 Labour Day": (date(2025, 5, 1), date(2025, 5, 5)),
    "端午 Dragon Boat": (date(2025, 5, 31), date(2025, 6, 2)),
    "国庆中秋 National Day + Mid-autumn": (date(2025, 10, 1), date(2025, 10, 8)),
}
WORKED_WEEKENDS_2025 = [
    date(2025, 1, 26),  # Sunday, Spring Festival
    date(2025, 2, 8),  # Saturday, Spring Festival
    date(2025, 4, 27),  # Sunday, Labour Day
    date(2025, 9, 28),  # Sunday, National Day
    date(2025, 10, 11),  # Saturday, National Day
]
REST_2026 = {
    "元旦 New Year": (date(2026, 1, 1), date(2026, 1, 3)),
    "春节 Spring Festival": (date(2026, 2, 15), date(2026, 2, 23)),
    "清明 Tomb-sweeping": (date(2026, 4, 4), date(2026, 4, 6)),
    "劳动节 Labour Day": (date(2026, 5, 1), date(2026, 5, 5)),
    "端午 Dragon Boat": (date(2026, 6, 19), date(2026, 6, 21)),
    "中秋 Mid-autumn": (date(2026, 9, 25), date(2026, 9, 27)),
    "国庆 National Day": (date(2026, 10, 1), date(2026, 10, 7)),
}
WORKED_WEEKENDS_2026 = [
    date(2026, 1, 4),  # Sunday, New Year
    date(2026, 2, 14),  # Saturday, Spring Festival
    date(2026, 2, 28),  # Saturday, Spring Festival
    date(2026, 5, 9),  # Saturday, Labour Day
    date(2026, 9, 20),  # Sunday, National Day
    date(2026, 10, 10),  # Saturday, National Day
]


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [(name, *span) for name, span in REST_2025.items()]
    + [(name, *span) for name, span in REST_2026.items()],
)
def test_real_holiday_periods_are_days_off(name: str, first: date, last: date) -> None:
    for day in days(first, last):
        assert not CAL.is_workday(day), (name, day)
    # the day before and the day after each period is worked (or an ordinary weekend)
    assert CAL.is_workday(first - timedelta(days=1)) or (first - timedelta(days=1)).weekday() > 4
    assert CAL.is_workday(last + timedelta(days=1)) or (last + timedelta(days=1)).weekday() > 4


@pytest.mark.parametrize("day", WORKED_WEEKENDS_2025 + WORKED_WEEKENDS_2026)
def test_swapped_working_weekends_are_workdays(day: date) -> None:
    assert day.weekday() >= 5  # a Saturday or Sunday…
    assert CAL.is_workday(day)  # …that is worked (调休上班)


def test_the_lists_above_are_complete_for_2025_and_2026() -> None:
    for year, rest, worked in (
        (2025, REST_2025, WORKED_WEEKENDS_2025),
        (2026, REST_2026, WORKED_WEEKENDS_2026),
    ):
        off = {d for first, last in rest.values() for d in days(first, last)}
        for day in days(date(year, 1, 1), date(year, 12, 31)):
            expected = day in worked or (day.weekday() < 5 and day not in off)
            assert CAL.is_workday(day) is expected, day
            assert chinese_calendar.is_workday(day) is expected, day


def test_working_day_totals() -> None:
    # 2025: 261 weekdays - 18 weekday holidays + 5 worked weekends
    assert CAL.workdays_between(date(2024, 12, 31), date(2025, 12, 31)) == 248
    # 2026: 261 weekdays - 19 weekday holidays + 6 worked weekends
    assert CAL.workdays_between(date(2025, 12, 31), date(2026, 12, 31)) == 248


# ----------------------------------------------------------------- deadlines across holidays


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        # 2025 Spring Festival: rest 01-28…02-04, worked Sun 01-26 and Sat 02-08
        (date(2025, 1, 24), 1, date(2025, 1, 26)),  # Friday → the worked Sunday
        (date(2025, 1, 26), 1, date(2025, 1, 27)),
        (date(2025, 1, 27), 1, date(2025, 2, 5)),  # eve of the holiday → first day back
        (date(2025, 1, 30), 1, date(2025, 2, 5)),  # 差评 during the holiday
        (date(2025, 1, 27), 4, date(2025, 2, 8)),  # 02-05, 06, 07, Sat 08
        # Ningbo rectification across it: 21 22 23 24 Sun26 27 | 02-05 06 07 Sat08 10 … 14
        (date(2025, 1, 20), 15, date(2025, 2, 14)),
        # 2025 National Day + Mid-autumn: rest 10-01…10-08, worked Sun 09-28 and Sat 10-11
        (date(2025, 9, 26), 1, date(2025, 9, 28)),
        (date(2025, 9, 30), 1, date(2025, 10, 9)),
        (date(2025, 10, 1), 1, date(2025, 10, 9)),
        (date(2025, 10, 8), 3, date(2025, 10, 11)),  # 10-09, 10-10, Sat 10-11
        # 26 Sun28 29 30 | 10-09 10 Sat11 13 14 15 16 17 20 21 22
        (date(2025, 9, 25), 15, date(2025, 10, 22)),
        # 2026 Spring Festival: rest 02-15…02-23, worked Sat 02-14 and Sat 02-28
        (date(2026, 2, 13), 1, date(2026, 2, 14)),
        (date(2026, 2, 14), 1, date(2026, 2, 24)),
        (date(2026, 2, 20), 5, date(2026, 2, 28)),  # 24, 25, 26, 27, Sat 28
        # 11 12 13 Sat14 | 24 25 26 27 Sat28 03-02 03 04 05 06 09
        (date(2026, 2, 10), 15, date(2026, 3, 9)),
        # 2026 New Year: rest 01-01…01-03, worked Sun 01-04
        (date(2025, 12, 31), 1, date(2026, 1, 4)),
    ],
)
def test_add_workdays_across_real_holidays(start: date, amount: int, expected: date) -> None:
    assert CAL.add_workdays(start, amount) == expected
    assert CAL.workdays_between(start, expected) == amount
    assert CAL.add(start, Period(amount, DayUnit.WORKING_DAYS)) == expected


@pytest.mark.parametrize(
    ("start", "amount", "roll", "expected"),
    [
        # Guangdong-style 7 natural days
        (date(2025, 9, 24), 7, False, date(2025, 10, 1)),
        (date(2025, 9, 24), 7, True, date(2025, 10, 9)),  # 民法典 203: ends after the holiday
        (date(2025, 1, 27), 5, True, date(2025, 2, 5)),
        (date(2026, 2, 10), 7, True, date(2026, 2, 24)),
        (date(2026, 2, 7), 7, True, date(2026, 2, 14)),  # lands on the worked Saturday
        (date(2025, 3, 3), 5, True, date(2025, 3, 10)),  # Sat 03-08 → Mon 03-10
        (date(2025, 3, 3), 4, True, date(2025, 3, 7)),
    ],
)
def test_add_natural_days(start: date, amount: int, roll: bool, expected: date) -> None:
    rule = DayCount(roll_to_workday=roll)
    assert CAL.add_natural_days(start, amount, rule=rule) == expected
    assert CAL.add(start, Period(amount, DayUnit.NATURAL_DAYS), rule=rule) == expected


def test_event_day_counting_conventions() -> None:
    monday = date(2025, 3, 3)
    morning = datetime.combine(monday, time(9, 0), CHINA_TZ)
    evening = datetime.combine(monday, time(18, 30), CHINA_TZ)
    default = DayCount()
    counting = DayCount(count_event_day=True)
    cutoff = DayCount(count_event_day=True, event_day_cutoff=time(17, 0))
    # default (民法典 201): the event day never counts, whatever the hour
    assert CAL.add_workdays(morning, 1) == date(2025, 3, 4)
    assert CAL.add_workdays(evening, 1, rule=default) == date(2025, 3, 4)
    # the event day is day 1
    assert CAL.add_workdays(morning, 1, rule=counting) == monday
    assert CAL.add_workdays(evening, 1, rule=counting) == monday
    assert CAL.add_workdays(monday, 1, rule=counting) == monday
    # … unless the event came after office hours
    assert CAL.add_workdays(morning, 1, rule=cutoff) == monday
    assert CAL.add_workdays(evening, 1, rule=cutoff) == date(2025, 3, 4)
    # an event on a holiday never counts its own day
    holiday = datetime(2025, 10, 1, 9, tzinfo=CHINA_TZ)
    assert CAL.add_workdays(holiday, 1, rule=counting) == date(2025, 10, 9)
    # natural days: the event day counts as day 1
    assert CAL.add_natural_days(monday, 1, rule=counting) == monday
    assert CAL.add_natural_days(monday, 5, rule=counting) == date(2025, 3, 7)


def test_datetimes_are_read_in_china_standard_time() -> None:
    # 2025-09-30 17:30 UTC is 2025-10-01 01:30 in Beijing: a holiday
    moment = datetime(2025, 9, 30, 17, 30, tzinfo=UTC)
    assert local_date(moment) == date(2025, 10, 1)
    assert not CAL.is_workday(moment)
    assert CAL.add_workdays(moment, 1) == date(2025, 10, 9)
    other_zone = datetime(2025, 9, 30, 9, 0, tzinfo=timezone(timedelta(hours=-8)))
    assert local_date(other_zone) == date(2025, 10, 1)


def test_end_of_day_is_midnight_beijing_time_exclusive() -> None:
    due = end_of_day(date(2025, 10, 9))
    assert due == datetime(2025, 10, 10, 0, 0, tzinfo=CHINA_TZ)
    assert due == datetime(2025, 10, 9, 16, 0, tzinfo=UTC)


def test_subtract_workdays_for_warnings() -> None:
    assert CAL.subtract_workdays(date(2025, 2, 5), 0) == date(2025, 2, 5)
    assert CAL.subtract_workdays(date(2025, 2, 5), 1) == date(2025, 1, 27)
    assert CAL.subtract_workdays(date(2025, 2, 10), 2) == date(2025, 2, 7)  # skips Sun 02-09
    assert CAL.subtract_workdays(date(2025, 2, 10), 1) == date(2025, 2, 8)  # the worked Sat
    assert CAL.subtract(date(2025, 2, 10), Period(3, DayUnit.NATURAL_DAYS)) == date(2025, 2, 7)
    assert CAL.subtract(date(2025, 2, 10), Period(3, DayUnit.WORKING_DAYS)) == date(2025, 2, 6)


def test_workdays_between_is_signed_and_excludes_the_first_day() -> None:
    assert CAL.workdays_between(date(2025, 1, 27), date(2025, 2, 5)) == 1
    assert CAL.workdays_between(date(2025, 2, 5), date(2025, 1, 27)) == -1
    assert CAL.workdays_between(date(2025, 2, 5), date(2025, 2, 5)) == 0


# ----------------------------------------------------------------- refusals


def test_the_package_knows_2004_to_2026() -> None:
    assert (PACKAGE_YEARS.start, PACKAGE_YEARS.stop) == (2004, 2027)
    assert list(CAL.known_years()) == list(range(2004, 2027))
    assert CAL.known_years()[2025].source.startswith("chinese-calendar ")
    with pytest.raises(TypeError):
        CAL.known_years()[2027] = CAL.known_years()[2026]  # type: ignore[index]


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.is_workday(date(2027, 1, 4)),
        lambda: CAL.is_workday(date(2003, 12, 31)),
        lambda: CAL.add_workdays(date(2026, 12, 20), 15),
        lambda: CAL.add_natural_days(date(2026, 12, 27), 7),
        lambda: CAL.workdays_between(date(2026, 12, 1), date(2027, 1, 5)),
        lambda: CAL.subtract_workdays(date(2004, 1, 2), 3),
    ],
)
def test_unknown_years_are_an_error_that_says_what_is_known(call: object) -> None:
    with pytest.raises(CalendarError) as caught:
        call()  # type: ignore[operator]
    error = caught.value
    assert error.code == "calendar.unknown_year"
    assert "2004–2026" in error.zh and "2004–2026" in error.en
    assert "docs/hub-operator.md" in error.en and "holiday table" in error.en
    assert "节假日表" in error.zh


def test_unknown_year_error_names_the_calculation() -> None:
    with pytest.raises(CalendarError) as caught:
        CAL.add_workdays(date(2026, 12, 20), 15)
    assert "counting 15 working days from 2026-12-20: 2027-01-01 is in 2027" in str(caught.value)


def test_natural_days_without_roll_need_no_calendar() -> None:
    rule = DayCount(roll_to_workday=False)
    assert CAL.add_natural_days(date(2026, 12, 27), 7, rule=rule) == date(2027, 1, 3)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(CalendarError) as caught:
        CAL.add_workdays(datetime(2025, 3, 3, 9, 0), 1)
    assert caught.value.code == "calendar.naive_datetime"


@pytest.mark.parametrize("amount", [0, -1, 1001, True, 1.5])
def test_bad_amounts_are_refused(amount: object) -> None:
    with pytest.raises(CalendarError) as caught:
        CAL.add_workdays(date(2025, 3, 3), amount)  # type: ignore[arg-type]
    assert caught.value.code in ("calendar.range", "calendar.type")
