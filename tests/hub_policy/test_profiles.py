"""The shipped profiles: their values against DOMAIN.md's table, the citation of every value,
and the deadlines they produce on the real 2025/2026 calendar (and past it, with a 2027
holiday table that is TEST DATA)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from hub.policy import (
    PROFILES_DIR,
    DeadlineState,
    Level,
    PolicyError,
    PolicyLoader,
    UploadMode,
    load_profile,
    profile_names,
)
from hub.workdays import (
    CHINA_TZ,
    CalendarError,
    DayCount,
    DayUnit,
    Period,
    WorkCalendar,
    import_holiday_table,
)

CAL = WorkCalendar()
FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED = ("guangdong-2019", "mangshi", "ningbo", "shandong-hrss")


def wd(n: int) -> Period:
    return Period(n, DayUnit.WORKING_DAYS)


def nd(n: int) -> Period:
    return Period(n, DayUnit.NATURAL_DAYS)


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


def test_the_shipped_profiles() -> None:
    assert profile_names() == ("base", *SHIPPED)


# ----------------------------------------------------------------- values vs DOMAIN.md


def test_ningbo() -> None:
    p = load_profile("ningbo")
    assert p.callback.within == wd(1)  # callback within 1 working day
    assert p.rectification.within == wd(15)  # rectification and feedback: 15 working days
    assert p.feedback.within == wd(15)
    assert p.rating.follow_up_ratings == 1  # 用户可根据整改情况进行1次追评
    assert p.rating.reopen_on_unhappy_follow_up
    assert p.rating.default is None and p.rating.supplementary_window is None
    assert p.upload.mode is UploadMode.REALTIME and p.upload.fallback is UploadMode.MONTHLY


def test_mangshi() -> None:
    p = load_profile("mangshi")
    assert p.rating.default is not None
    assert p.rating.default.after == wd(5)  # 5 working days → 基本满意
    assert p.rating.default.level is Level.BASICALLY_SATISFIED
    assert p.rectification.within == wd(15)
    assert p.supervision.real_name_callback_target_percent == 100
    assert p.supervision.real_name_rectification_target_percent == 100


def test_guangdong_2019() -> None:
    p = load_profile("guangdong-2019")
    assert p.rating.default is not None
    assert p.rating.default.after == nd(7)  # 7 natural days → 基本满意
    assert p.rating.default.level is Level.BASICALLY_SATISFIED
    assert p.day_count == DayCount(roll_to_workday=False)


def test_shandong_hrss() -> None:
    p = load_profile("shandong-hrss")
    assert p.rating.supplementary_window == wd(5)  # within 5 working days of the service day
    assert p.report_form is not None and p.report_form.within == nd(5)  # 5 days after rect.
    assert p.supervision.revisit_sample_percent == 20  # ≥ 20% of 差评
    assert p.supervision.annual_report_due == (12, 31)  # by the end of December
    assert p.supervision.real_name_callback_target_percent == 100
    assert p.supervision.real_name_rectification_target_percent == 100
    assert p.upload.mode is UploadMode.REALTIME and p.upload.fallback is UploadMode.MONTHLY
    assert [r.name for r in p.deadline_rules()] == [
        "callback",
        "rectification",
        "feedback",
        "report_form",
    ]


@pytest.mark.parametrize("name", SHIPPED)
def test_common_settings(name: str) -> None:
    p = load_profile(name)
    assert p.rating.invite_window_seconds == 60  # project default (a product uses 10 s)
    assert p.rating.bad_rating_requires_reason  # Zhouzhi practice
    assert p.rating.needs_reason(Level.DISSATISFIED)
    assert p.rating.needs_reason(Level.VERY_DISSATISFIED)
    assert not p.rating.needs_reason(Level.BASICALLY_SATISFIED)
    assert p.reasons.name == "reference" and p.reasons.version == "2025.1"
    assert p.sources and p.title_zh and p.title_en
    assert p.lineage == ((name, "2025.1"), ("base", "2025.1"))
    assert p.files[0].endswith(f"{name}.toml") and p.files[-1].endswith("reference.toml")
    assert re.fullmatch(r"[0-9a-f]{64}", p.digest)
    assert load_profile(name).digest == p.digest  # stable
    assert p.callback.warn_before == wd(0)


def test_digests_differ_between_profiles() -> None:
    assert len({load_profile(name).digest for name in SHIPPED}) == len(SHIPPED)


def test_base_is_abstract() -> None:
    with pytest.raises(PolicyError) as caught:
        load_profile("base")
    assert caught.value.code == "policy.abstract"


_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][\w-]*\s*=")
_OWN = re.compile(r"^(schema|name|version|extends|abstract|title|sources)\s*=")


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_value_cites_its_source_in_a_comment(path: Path) -> None:
    """Each group of settings is directly preceded by a comment (its source)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#"), "the file opens with a comment on what it is"
    section = ""
    for number, line in enumerate(lines):
        if line.startswith("["):
            section = line
            continue
        if not _ASSIGNMENT.match(line) or (not section and _OWN.match(line)):
            continue
        back = number - 1
        while back >= 0 and _ASSIGNMENT.match(lines[back]):
            back -= 1
        assert back >= 0 and lines[back].lstrip().startswith("#"), (
            f"{path.name}:{number + 1} {line.strip()!r} has no source comment above it"
        )


# ----------------------------------------------------------------- deadlines


def test_ningbo_callback_of_a_late_evening_差评_before_national_day() -> None:
    p = load_profile("ningbo")
    received = cst(2025, 9, 30, 21, 45)  # after office hours, eve of the holiday
    deadline = p.deadline(p.callback, received, calendar=CAL)
    assert deadline.last_day == date(2025, 10, 9)
    assert deadline.due_at == cst(2025, 10, 10, 0, 0)
    assert deadline.warn_from == cst(2025, 10, 9, 0, 0)  # warn on the last day
    assert deadline.state(cst(2025, 10, 8, 23, 59)) is DeadlineState.PENDING
    assert deadline.state(cst(2025, 10, 9, 9, 0)) is DeadlineState.UPCOMING
    assert deadline.state(cst(2025, 10, 10, 0, 0)) is DeadlineState.OVERDUE
    assert deadline.state(datetime(2025, 10, 9, 15, 59, tzinfo=UTC)) is DeadlineState.UPCOMING


def test_ningbo_rectification_across_the_2026_spring_festival() -> None:
    p = load_profile("ningbo")
    received = cst(2026, 2, 10, 10, 0)
    deadline = p.deadline(p.rectification, received, calendar=CAL)
    # 11 12 13 Sat14 | rest 15…23 | 24 25 26 27 Sat28 03-02 03 04 05 06 09
    assert deadline.last_day == date(2026, 3, 9)
    # warning 3 working days before: 03-04
    assert deadline.warn_from == cst(2026, 3, 4, 0, 0)
    feedback = p.deadline(p.feedback, received, calendar=CAL)
    assert feedback.last_day == deadline.last_day


def test_mangshi_default_rating_across_the_2025_spring_festival() -> None:
    p = load_profile("mangshi")
    assert p.rating.default is not None
    served = cst(2025, 1, 24, 16, 0)  # Friday
    applies = p.rating.default.applies_from(served, calendar=CAL, rule=p.day_count)
    # Sun 01-26 (worked), 01-27 | rest 01-28…02-04 | 02-05, 02-06, 02-07
    assert applies == cst(2025, 2, 8, 0, 0)


def test_guangdong_default_is_exactly_seven_calendar_days() -> None:
    p = load_profile("guangdong-2019")
    assert p.rating.default is not None
    served = cst(2025, 9, 24, 10, 0)
    applies = p.rating.default.applies_from(served, calendar=CAL, rule=p.day_count)
    assert applies == cst(2025, 10, 2, 0, 0)  # last day 10-01, a holiday: not moved
    # the same rule with 民法典 203 rolling would end after the holiday
    rolled = p.rating.default.applies_from(served, calendar=CAL, rule=DayCount())
    assert rolled == cst(2025, 10, 10, 0, 0)


def test_shandong_supplementary_window_and_report_form() -> None:
    p = load_profile("shandong-hrss")
    served = cst(2025, 4, 30, 11, 0)  # eve of Labour Day (rest 05-01…05-05)
    until = p.rating.supplementary_until(served, calendar=CAL, rule=p.day_count)
    assert until == cst(2025, 5, 13, 0, 0)  # 05-06 07 08 09 12 → last day 05-12
    assert (
        load_profile("ningbo").rating.supplementary_until(served, calendar=CAL, rule=p.day_count)
        is None
    )
    assert p.report_form is not None
    rectified = cst(2025, 9, 26, 15, 0)
    form = p.deadline(p.report_form, rectified, calendar=CAL)
    # 5 natural days → 10-01, a holiday: ends on the first working day after it (民法典 203)
    assert form.last_day == date(2025, 10, 9)
    assert form.warn_from == cst(2025, 10, 8, 0, 0)


def test_a_deadline_past_the_known_calendar_is_an_error_until_imported() -> None:
    p = load_profile("ningbo")
    received = cst(2026, 12, 21, 9, 0)
    with pytest.raises(CalendarError) as caught:
        p.deadline(p.rectification, received, calendar=CAL)
    assert caught.value.code == "calendar.unknown_year"
    calendar = import_holiday_table(FIXTURES / "holidays-2027-TEST.toml")
    deadline = p.deadline(p.rectification, received, calendar=calendar)
    # 12-22 23 24 25 28 29 30 31 | test rest 01-01…01-03 | 01-04 05 06 07 08 11 12
    assert deadline.last_day == date(2027, 1, 12)


def test_deadline_state_refuses_naive_now() -> None:
    p = load_profile("ningbo")
    deadline = p.deadline(p.callback, date(2025, 3, 3), calendar=CAL)
    with pytest.raises(ValueError):
        deadline.state(datetime(2025, 3, 4, 9, 0))
    assert deadline.state(datetime.combine(date(2025, 3, 3), time(9), CHINA_TZ)) is (
        DeadlineState.PENDING
    )


def test_the_warning_never_starts_before_the_event(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "t.toml").write_text(
        'schema = 1\nname = "t"\nversion = "1"\nextends = "ningbo"\n'
        'title = { zh = "测试", en = "Test" }\nsources = ["test"]\n'
        "[day_count]\n# test\ncount_event_day = true\n"
        "[deadlines.callback]\n# test\nwithin = '2 working days'\nwarn_before = '1 working day'\n",
        encoding="utf-8",
    )
    p = PolicyLoader(profile_dirs=[PROFILES_DIR, folder]).profile("t")
    received = cst(2025, 3, 3, 10, 30)  # Monday: day 1 is Monday itself
    deadline = p.deadline(p.callback, received, calendar=CAL)
    assert deadline.last_day == date(2025, 3, 4)
    assert deadline.warn_from == received  # not Monday 00:00
    assert deadline.state(received) is DeadlineState.UPCOMING
