"""Properties of the deadline arithmetic over every year chinese-calendar knows: adding N
working days lands on a working day, is strictly increasing in N and monotonic in the start,
and counting back gives N; the calendar agrees with chinese-calendar day by day; the counting
conventions relate to each other as documented."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import chinese_calendar  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from hub.workdays import CHINA_TZ, DayCount, WorkCalendar

CAL = WorkCalendar()
# Far enough from the end of 2026 that 60 working days or 60 natural days (rolled) stay
# inside the known years.
LAST_START = date(2026, 9, 1)
starts = st.dates(min_value=date(2004, 1, 1), max_value=LAST_START)
amounts = st.integers(min_value=1, max_value=60)
one_day = timedelta(days=1)


@given(starts, amounts)
def test_adding_working_days_lands_on_a_working_day_after_the_start(
    start: date, amount: int
) -> None:
    end = CAL.add_workdays(start, amount)
    assert end > start
    assert CAL.is_workday(end)
    # no more than N working days in (start, end], and exactly N
    assert CAL.workdays_between(start, end) == amount
    # the day before the end holds one working day fewer
    assert CAL.workdays_between(start, end - one_day) == amount - 1


@given(starts, amounts, amounts)
def test_adding_is_strictly_increasing_in_the_amount(start: date, a: int, b: int) -> None:
    if a < b:
        assert CAL.add_workdays(start, a) < CAL.add_workdays(start, b)
    # and composes: N then M is N + M
    middle = CAL.add_workdays(start, a)
    if middle <= LAST_START:
        assert CAL.add_workdays(middle, b) == CAL.add_workdays(start, a + b)


@given(starts, st.integers(min_value=0, max_value=40), amounts)
def test_adding_is_monotonic_in_the_start(start: date, later_by: int, amount: int) -> None:
    later = start + timedelta(days=later_by)
    if later <= LAST_START:
        assert CAL.add_workdays(start, amount) <= CAL.add_workdays(later, amount)


@given(starts, starts, starts)
def test_counting_is_antisymmetric_and_additive(a: date, b: date, c: date) -> None:
    assert CAL.workdays_between(a, b) == -CAL.workdays_between(b, a)
    assert CAL.workdays_between(a, b) + CAL.workdays_between(b, c) == CAL.workdays_between(a, c)


@given(starts)
def test_agrees_with_chinese_calendar(day: date) -> None:
    assert CAL.is_workday(day) is chinese_calendar.is_workday(day)


@given(st.dates(min_value=date(2004, 4, 1), max_value=LAST_START), amounts)
def test_subtract_undoes_add(start: date, amount: int) -> None:
    end = CAL.add_workdays(start, amount)
    back = CAL.subtract_workdays(end, amount)
    assert back <= start  # the start may be a rest day: back is the last working day ≤ it
    assert CAL.workdays_between(back, start) == 0


@given(starts, amounts)
def test_natural_days(start: date, amount: int) -> None:
    plain = CAL.add_natural_days(start, amount, rule=DayCount(roll_to_workday=False))
    assert plain == start + timedelta(days=amount)
    rolled = CAL.add_natural_days(start, amount)
    assert rolled >= plain and CAL.is_workday(rolled)
    assert CAL.workdays_between(plain - one_day, rolled - one_day) == 0  # no workday skipped


@given(starts, amounts, st.times())
def test_counting_the_event_day_moves_the_anchor_back_one_day(
    start: date, amount: int, at: time
) -> None:
    counting = DayCount(count_event_day=True)
    moment = datetime.combine(start, at, CHINA_TZ)
    assert CAL.add_workdays(moment, amount, rule=counting) == CAL.add_workdays(
        start - one_day, amount
    )
    if CAL.is_workday(start):
        expected = start if amount == 1 else CAL.add_workdays(start, amount - 1)
        assert CAL.add_workdays(start, amount, rule=counting) == expected
    else:
        assert CAL.add_workdays(start, amount, rule=counting) == CAL.add_workdays(start, amount)
    cutoff = DayCount(count_event_day=True, event_day_cutoff=time(17, 0))
    expected_anchor = start - one_day if at < time(17, 0) else start
    assert CAL.add_workdays(moment, amount, rule=cutoff) == CAL.add_workdays(
        expected_anchor, amount
    )


@given(starts, st.integers(min_value=-400, max_value=400))
def test_counting_matches_a_day_by_day_count(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    if end > LAST_START or end.year < 2004:
        return
    low, high = min(start, end), max(start, end)
    naive = sum(CAL.is_workday(low + timedelta(days=i)) for i in range(1, (high - low).days + 1))
    assert CAL.workdays_between(start, end) == (naive if end >= start else -naive)
