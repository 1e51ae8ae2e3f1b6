"""Holiday tables: the file format, its refusals (each naming the file and the key), the import
path for 2027 (with a fixture that is TEST DATA, not the real notice), agreement with
chinese-calendar for every year it knows, and conflicts between tables."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import groupby
from pathlib import Path

import chinese_calendar.constants as cc  # type: ignore[import-untyped]
import pytest

from hub.workdays import (
    FORMAT,
    PACKAGE_YEARS,
    CalendarError,
    HolidayTableError,
    WorkCalendar,
    import_holiday_table,
    load_holiday_table,
    parse_holiday_table,
)

FIXTURES = Path(__file__).parent / "fixtures"
TEST_2027 = FIXTURES / "holidays-2027-TEST.toml"
REAL_2025 = FIXTURES / "holidays-2025.toml"

HEAD = 'format = "hcp-holiday-table"\nformat_version = 1\nyear = 2027\nnotice = "test"\n'
ONE = "[[holidays]]\nname = 'x'\nstart = 2027-01-01\nend = 2027-01-03\n"


# ----------------------------------------------------------------- 2027: the import path


def test_2027_is_unknown_until_its_table_is_imported() -> None:
    plain = WorkCalendar()
    with pytest.raises(CalendarError) as caught:
        plain.add_workdays(date(2026, 12, 25), 5)
    assert caught.value.code == "calendar.unknown_year"

    calendar = import_holiday_table(TEST_2027)
    assert list(calendar.known_years())[-1] == 2027
    source = calendar.known_years()[2027]
    assert source.source == str(TEST_2027)
    assert source.notice is not None and source.notice.startswith("TEST DATA")
    assert "2027 (" in calendar.describe_known_years()
    assert 2027 not in plain.known_years()  # calendars are immutable

    # 12-28 Mon … 12-31 Thu, then the (test) New Year rest 01-01…01-03, then Mon 01-04
    assert calendar.add_workdays(date(2026, 12, 25), 5) == date(2027, 1, 4)
    assert not calendar.is_workday(date(2027, 2, 8))  # a Monday in the test Spring Festival
    assert calendar.is_workday(date(2027, 2, 20))  # the test data's worked Saturday
    assert calendar.is_workday(date(2027, 3, 1))  # plain weekday rule
    assert not calendar.is_workday(date(2027, 3, 6))  # plain Saturday
    assert calendar.add_workdays(date(2027, 2, 5), 1) == date(2027, 2, 15)
    with pytest.raises(CalendarError):
        calendar.is_workday(date(2028, 1, 3))


def test_the_2027_fixture_is_labelled_as_test_data() -> None:
    text = TEST_2027.read_text(encoding="utf-8")
    assert text.startswith("# TEST DATA. NOT AN OFFICIAL CALENDAR.")
    table = load_holiday_table(TEST_2027)
    assert all("测试数据" in h.name for h in table.holidays)


def test_from_directory_loads_every_table(tmp_path: Path) -> None:
    (tmp_path / "2027.toml").write_bytes(TEST_2027.read_bytes())
    calendar = WorkCalendar.from_directory(tmp_path)
    assert 2027 in calendar.known_years()
    with pytest.raises(CalendarError) as caught:
        WorkCalendar.from_directory(tmp_path / "missing")
    assert caught.value.code == "calendar.no_directory"


# ----------------------------------------------------------------- years the package knows


def test_a_table_that_agrees_with_the_package_is_accepted() -> None:
    calendar = import_holiday_table(REAL_2025)
    assert calendar.known_years()[2025].source == str(REAL_2025)
    assert calendar.add_workdays(date(2025, 1, 27), 1) == date(2025, 2, 5)


def test_a_table_that_disagrees_is_refused_unless_replacing(tmp_path: Path) -> None:
    altered = tmp_path / "2025-altered.toml"
    altered.write_text(
        REAL_2025.read_text(encoding="utf-8").replace("end = 2025-02-04", "end = 2025-02-05"),
        encoding="utf-8",
    )
    with pytest.raises(CalendarError) as caught:
        import_holiday_table(altered)
    assert caught.value.code == "calendar.disagrees"
    assert "2025-02-05" in str(caught.value) and "replace=True" in caught.value.en
    replaced = import_holiday_table(altered, replace=True)
    assert not replaced.is_workday(date(2025, 2, 5))
    assert WorkCalendar().is_workday(date(2025, 2, 5))


def _table_from_package(year: int) -> dict[str, object]:
    """A holiday table written from chinese-calendar's own data for ``year``."""
    off = sorted(d for d in cc.holidays if d.year == year)
    runs: list[list[date]] = []
    for _, group in groupby(enumerate(off), key=lambda pair: pair[1] - timedelta(days=pair[0])):
        runs.append([d for _, d in group])
    worked = sorted(d for d in cc.workdays if d.year == year)
    holidays: list[dict[str, object]] = [
        {"name": f"run {i}", "start": run[0], "end": run[-1]} for i, run in enumerate(runs)
    ]
    holidays[0]["working_days"] = worked
    return {
        "format": FORMAT,
        "format_version": 1,
        "year": year,
        "notice": "from chinese-calendar",
        "holidays": holidays,
    }


@pytest.mark.parametrize("year", list(PACKAGE_YEARS))
def test_every_package_year_round_trips_through_the_format(year: int) -> None:
    table = parse_holiday_table(_table_from_package(year), source=f"package-{year}")
    calendar = WorkCalendar([table])  # raises calendar.disagrees on any difference
    assert calendar.known_years()[year].source == f"package-{year}"


# ----------------------------------------------------------------- conflicts between tables


def test_two_tables_for_one_year_are_refused() -> None:
    table = load_holiday_table(TEST_2027)
    with pytest.raises(CalendarError) as caught:
        WorkCalendar([table, table])
    assert caught.value.code == "calendar.duplicate_year"


def test_tables_that_disagree_about_a_boundary_day_are_refused(tmp_path: Path) -> None:
    # Test data: the 2027 table works Sunday 2027-12-26; a 2028 table gives it off.
    a = tmp_path / "a.toml"
    a.write_text(
        HEAD
        + ONE
        + "[[holidays]]\nname = 'y'\nstart = 2027-12-20\nend = 2027-12-24\n"
        + "working_days = [2027-12-26]\n",
        encoding="utf-8",
    )
    b = tmp_path / "b.toml"
    b.write_text(
        HEAD.replace("2027", "2028")
        + "[[holidays]]\nname = 'z'\nstart = 2027-12-25\nend = 2028-01-02\n",
        encoding="utf-8",
    )
    with pytest.raises(CalendarError) as caught:
        WorkCalendar([load_holiday_table(a), load_holiday_table(b)])
    assert caught.value.code == "calendar.conflict"
    assert "2027-12-26" in str(caught.value)


def test_a_later_notice_may_change_the_last_days_of_the_year_before() -> None:
    # As the 2012 notice made Saturday 2011-12-31 a working day (chinese-calendar has it).
    assert WorkCalendar().is_workday(date(2011, 12, 31))
    table = parse_holiday_table(
        {
            "format": FORMAT,
            "format_version": 1,
            "year": 2027,
            "notice": "test data",
            "holidays": [
                {
                    "name": "t",
                    "start": date(2027, 1, 1),
                    "end": date(2027, 1, 3),
                    "working_days": [date(2026, 12, 27)],
                }
            ],
        }
    )
    calendar = WorkCalendar([table])
    assert calendar.is_workday(date(2026, 12, 27))  # a Sunday, now worked
    assert not WorkCalendar().is_workday(date(2026, 12, 27))


# ----------------------------------------------------------------- refusals of the format


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        (HEAD + ONE + "yaer = 1\n", "table.unknown_key", "holidays[0].yaer"),
        ("yaer = 2027\n" + HEAD + ONE, "table.unknown_key", "yaer"),
        (HEAD.replace('notice = "test"\n', "") + ONE, "table.missing", "notice"),
        (HEAD.replace("year = 2027", 'year = "2027"') + ONE, "table.type", "year"),
        (HEAD.replace("year = 2027", "year = 1999") + ONE, "table.range", "year"),
        (HEAD.replace("hcp-holiday-table", "holidays") + ONE, "table.format", "format"),
        (HEAD.replace("format_version = 1", "format_version = 2") + ONE, "", "format_version"),
        (HEAD.replace("format_version = 1", "format_version = true") + ONE, "table.type", ""),
        (HEAD + 'notice2 = ""\n', "table.unknown_key", "notice2"),
        (HEAD + "holidays = []\n", "table.missing", "holidays"),
        (HEAD.replace('"test"', '"  "') + ONE, "table.range", "notice"),
        (HEAD + ONE.replace("2027-01-03", "2026-12-30"), "table.range", "holidays[0].end"),
        (HEAD + ONE.replace("2027-01-03", "2027-01-31"), "table.range", "holidays[0].end"),
        (HEAD + ONE.replace("2027-01-03", "2027-01-03T00:00:00"), "table.type", "[0].end"),
        (HEAD + ONE.replace("end", "ende"), "table.unknown_key", "holidays[0].ende"),
        (HEAD + ONE + "working_days = [2027-01-04]\n", "table.not_weekend", "working_days[0]"),
        (HEAD + ONE + "working_days = 2027-01-09\n", "table.type", "holidays[0].working_days"),
        (HEAD + ONE + ONE.replace("01-01", "01-03"), "table.duplicate", "holidays[1].start"),
        (HEAD + ONE + "working_days = [2027-01-02]\n", "table.duplicate", "working_days"),
        (HEAD + ONE.replace("2027-01-0", "2029-01-0"), "table.range", "holidays[0].start"),
        (HEAD + ONE + "working_days = [2026-11-01]\n", "table.range", "working_days"),
        (HEAD + ONE + "[[holidays]]\nname = 'y\n", "table.syntax", ""),
        (HEAD + "holidays = [1]\n", "table.type", "holidays[0]"),
    ],
)
def test_bad_tables_are_refused_with_file_and_key(
    tmp_path: Path, text: str, code: str, key: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayTableError) as caught:
        load_holiday_table(path)
    error = caught.value
    assert error.code == code or not code
    assert key in error.key
    assert str(path) in error.zh and str(path) in error.en
    assert str(error).startswith(f"[{error.code}] ")


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(HolidayTableError) as caught:
        load_holiday_table(tmp_path / "missing.toml")
    assert caught.value.code == "table.unreadable"
    big = tmp_path / "big.toml"
    big.write_text(HEAD + ONE + "#" * 70_000 + "\n", encoding="utf-8")
    with pytest.raises(HolidayTableError) as caught:
        load_holiday_table(big)
    assert caught.value.code == "table.too_large"
