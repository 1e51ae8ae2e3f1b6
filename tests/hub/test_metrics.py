"""Metrics against a small fixture whose figures were computed by hand (on both databases).

The fixture (hall-001, 2026 Q1 unless said; A = DEPT, B = DEPT_2):
  r1  A  level 1  case C1  real-name
  r2  A  level 2  case C2
  r3  A  level 3  case C3
  r4  A  level 4  case C4  real-name          差评
  r5  A  level 5  case C5  anonymous          差评
  r6  A  level 1  case C1  repeat press       (recorded, not counted)
  r7  A  level 5  no case  unsolicited press  (recorded, not counted)
  r8  A  level 4  case C4  follow-up (追评), unhappy
  r9  A  level 3  case C6  default rule (system_default, pf 7)
  r10 A  level 5  case C7  excluded as 恶意 by verification
  r11 B  level 2  case D1  at 2026-03-31 23:59:59 China time (last second of Q1)
  r12 B  level 4  case D2  real-name          差评
  r13 B  level 2  case D2  follow-up, happy
  r14 A  level 1  case C8  at 2025-12-31 23:30 China time (2025 Q4: outside)
  r15 B  level 5  case D3  at 2026-04-01 00:00 China time (2026 Q2: outside)
Cases finished in Q1 (not cancelled): A: C1–C7, C9 (unrated); B: D1–D4 (D4 unrated; D3 at
2026-03-31 23:00, rated in Q2). C8 finished in 2025; C10 finished and then cancelled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.db.schema import rating_exclusions, ratings
from hub.ingest.service import ALL_SOURCES, ingest_case_events, ingest_ratings
from hub.metrics import MetricsError, excluded_ratings, parse_period, report
from tests.hub.conftest import HubDb, make_hall
from tests.hub.helpers import DEPT, DEPT_2, HALL, event, rating

NOW = datetime(2026, 4, 2, 1, 0, tzinfo=UTC)
ANON = {"rater": None}
MARCH = "2026-03-10T10:00:00+08:00"


def _press(n: int, dept: str, level: int, case: str | None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "dept_code": dept,
        "level": level,
        "case_no": case,
        "rated_at": MARCH,
        "invited_at": None,
        "reasons": [501] if level >= 4 else [],
    }
    fields.update(extra)
    return rating(n, **fields)


def _case(case: str, dept: str, finished: str, *, cancelled: str | None = None) -> list[Any]:
    out = [
        event(f"o-{case}", "case_opened", case_no=case, dept_code=dept, occurred_at=finished),
        event(f"f-{case}", "case_finished", case_no=case, occurred_at=finished),
    ]
    if cancelled:
        out.append(event(f"x-{case}", "case_cancelled", case_no=case, occurred_at=cancelled))
    return out


def load_fixture(db: HubDb) -> None:
    make_hall(db.engine)
    items = [
        _press(1, DEPT, 1, "C1"),
        _press(2, DEPT, 2, "C2"),
        _press(3, DEPT, 3, "C3"),
        _press(4, DEPT, 4, "C4"),
        _press(5, DEPT, 5, "C5", **ANON),
        _press(6, DEPT, 1, "C1", flags=["repeat"]),
        _press(7, DEPT, 5, None, flags=["unsolicited"]),
        _press(8, DEPT, 4, "C4", assess_number=2),
        {
            "source": "default_rule",
            "origin_id": "default:C6",
            "hall_id": HALL,
            "case_no": "C6",
            "dept_code": DEPT,
            "level": 3,
            "channel": "system_default",
            "pf": 7,
            "rated_at": MARCH,
        },
        _press(10, DEPT, 5, "C7"),
        _press(11, DEPT_2, 2, "D1", rated_at="2026-03-31T23:59:59+08:00"),
        _press(12, DEPT_2, 4, "D2"),
        _press(13, DEPT_2, 2, "D2", assess_number=2),
        _press(14, DEPT, 1, "C8", rated_at="2025-12-31T23:30:00+08:00"),
        _press(15, DEPT_2, 5, "D3", rated_at="2026-04-01T00:00:00+08:00"),
    ]
    events: list[Any] = []
    for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C9"):
        events += _case(c, DEPT, "2026-03-10T09:00:00+08:00")
    events += _case("C8", DEPT, "2025-12-31T09:00:00+08:00")
    events += _case("C10", DEPT, "2026-03-10T09:00:00+08:00", cancelled="2026-03-10T09:30+08:00")
    events += _case("D1", DEPT_2, "2026-03-10T09:00:00+08:00")
    events += _case("D2", DEPT_2, "2026-03-10T09:00:00+08:00")
    events += _case("D3", DEPT_2, "2026-03-31T23:00:00+08:00")
    events += _case("D4", DEPT_2, "2026-03-10T09:00:00+08:00")
    with db.engine.begin() as connection:
        result = ingest_ratings(
            connection=connection,
            hall_id=HALL,
            items_in=items,
            now=NOW,
            actor="test",
            sources=ALL_SOURCES,
        )
        assert result.counts["accepted"] == len(items), result.as_json()
        result = ingest_case_events(
            connection=connection, hall_id=HALL, items_in=events, now=NOW, actor="test"
        )
        assert result.counts["accepted"] == len(events), result.as_json()
        # r10 excluded as the 差评 workflow records it (hub.workflow writes this table).
        r10 = connection.execute(
            ratings.select().where(ratings.c.rating_key == "device:ev-0001:10")
        ).one()
        connection.execute(
            rating_exclusions.insert().values(
                rating_id=r10.id,
                outcome="malicious",
                reason="同一号码连续恶意差评",
                evidence=json.dumps(["callback-recording-17"]),
                decided_by="verifier-1",
                approved_by="admin-1",
                decided_at=NOW,
            )
        )


@pytest.fixture
def fixture_db(db: HubDb) -> HubDb:
    load_fixture(db)
    return db


def _q1(db: HubDb, dimension: str) -> dict[str, Any]:
    with db.engine.connect() as connection:
        return report(
            connection=connection, period=parse_period("quarter", "2026-Q1"), dimension=dimension
        ).as_json()


def test_quarter_per_department_hand_computed(fixture_db: HubDb) -> None:
    body = _q1(fixture_db, "department")
    assert [row["group"] for row in body["rows"]] == [{"dept_code": DEPT}, {"dept_code": DEPT_2}]
    a, b = body["rows"]
    # Department A. Records in Q1: r1–r10 = 10; r10 is excluded → uploaded 9, excluded 1.
    # Case ratings: r1–r5 active (r6 repeat, r7 unsolicited, r8 follow-up are not), r9
    # default → active 5, default 1, case ratings 6.
    expected_a = {
        "uploaded": 9,
        "excluded": 1,
        "case_ratings": 6,
        "active": 5,
        "default_ratings": 1,
        "levels": {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1},  # r1..r5
        "good": 3,  # levels 1–3
        "bad": 2,  # r4, r5
        "bad_real_name": 1,  # r4
        "bad_anonymous": 1,  # r5
        "good_rate": 0.6,  # 3 / 5 active
        "bad_rate": 0.4,  # 2 / 5
        "default_share": 0.1667,  # 1 / 6 = 0.16666…
        "follow_ups": 1,  # r8
        "follow_ups_unhappy": 1,  # r8 is level 4
        "follow_up_satisfaction_rate": 0.0,  # 0 / 1
        "repeats": 1,  # r6
        "unsolicited": 1,  # r7
        # C1–C7 and C9 finished (C8 in 2025, C10 cancelled) = 8; rated by a counted,
        # not excluded rating: C1–C5 (active), C6 (default) = 6; C7 only has the excluded r10.
        "cases_finished": 8,
        "cases_rated": 6,
        "cases_rated_active": 5,
        "coverage": 0.75,  # 6 / 8
        "active_rate": 0.625,  # 5 / 8
    }
    assert {k: a[k] for k in expected_a} == expected_a
    # Department B. Q1 records: r11 (last second of Q1), r12, r13 = 3 (r15 is in Q2).
    expected_b = {
        "uploaded": 3,
        "excluded": 0,
        "case_ratings": 2,  # r11, r12 (r13 is a follow-up)
        "active": 2,
        "default_ratings": 0,
        "levels": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0},
        "good": 1,
        "bad": 1,
        "bad_real_name": 1,
        "bad_anonymous": 0,
        "good_rate": 0.5,  # 1 / 2
        "bad_rate": 0.5,
        "default_share": 0.0,  # 0 / 2
        "follow_ups": 1,
        "follow_ups_unhappy": 0,
        "follow_up_satisfaction_rate": 1.0,  # 1 / 1
        "repeats": 0,
        "unsolicited": 0,
        # D1–D4 finished in Q1 = 4; rated: D1 (r11), D2 (r12), D3 (r15, rated in Q2 but a
        # rating of this case) = 3, all active.
        "cases_finished": 4,
        "cases_rated": 3,
        "cases_rated_active": 3,
        "coverage": 0.75,  # 3 / 4
        "active_rate": 0.75,
    }
    assert {k: b[k] for k in expected_b} == expected_b
    total = body["total"]
    # Sums of A and B: active 5 + 2 = 7; good 3 + 1 = 4; bad 2 + 1 = 3; cases 8 + 4 = 12.
    assert total["active"] == 7
    assert total["good_rate"] == 0.5714  # 4 / 7 = 0.571428…
    assert total["bad_rate"] == 0.4286  # 3 / 7 = 0.428571…
    assert total["cases_finished"] == 12
    assert total["coverage"] == 0.75  # 9 / 12
    assert total["active_rate"] == 0.6667  # 8 / 12 = 0.6666…
    assert total["excluded"] == 1


def test_other_dimensions_and_periods(fixture_db: HubDb) -> None:
    by_channel = _q1(fixture_db, "channel")
    rows = {row["group"]["channel"]: row for row in by_channel["rows"]}
    # hall_terminal: every Q1 press (r1–r8, r10–r13 = 12) minus excluded r10 = 11 records.
    assert rows["hall_terminal"]["uploaded"] == 11
    assert rows["hall_terminal"]["active"] == 7
    # system_default: r9 only, a default rating, not active; channels have no case figures.
    assert rows["system_default"]["default_ratings"] == 1
    assert rows["system_default"]["active"] == 0
    assert rows["system_default"]["coverage"] is None
    # Windows: helpers.rating puts seq n at window w(n % 3). Active Q1 case ratings: r1 w1,
    # r2 w2, r3 w0, r4 w1, r5 w2, r11 w2, r12 w0 → w0: 2, w1: 2, w2: 3.
    by_window = _q1(fixture_db, "window")
    active = {row["group"]["window_id"]: row["active"] for row in by_window["rows"]}
    assert active == {"w0": 2, "w1": 2, "w2": 3, None: 0}
    # The None window group holds the default rating r9 and the cases (case events name no
    # window): 12 finished cases, 9 rated.
    none_row = next(row for row in by_window["rows"] if row["group"]["window_id"] is None)
    assert none_row["default_ratings"] == 1
    assert none_row["cases_finished"] == 12
    # 2026 Q2: r15 only (B, level 5, its first second).
    with fixture_db.engine.connect() as connection:
        q2 = report(
            connection=connection, period=parse_period("quarter", "2026-Q2"), dimension="all"
        ).as_json()
        assert q2["total"]["levels"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
        day = report(
            connection=connection, period=parse_period("day", "2026-03-31"), dimension="all"
        ).as_json()
        assert day["total"]["uploaded"] == 1  # r11 at 23:59:59 China time
        year = report(
            connection=connection, period=parse_period("year", "2025"), dimension="hall"
        ).as_json()
        assert year["rows"][0]["levels"]["1"] == 1  # r14
        assert year["rows"][0]["cases_finished"] == 1  # C8


def test_auditor_view_shows_the_excluded_rating(fixture_db: HubDb) -> None:
    with fixture_db.engine.connect() as connection:
        rows = excluded_ratings(connection=connection, period=parse_period("quarter", "2026-Q1"))
    assert len(rows) == 1
    assert rows[0]["rating_key"] == "device:ev-0001:10"
    assert rows[0]["outcome"] == "malicious"
    assert rows[0]["approved_by"] == "admin-1"
    assert rows[0]["level"] == 5


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("quarter", "2026-Q5"),
        ("month", "2026-13"),
        ("day", "2026-02-30"),
        ("week", "2026-01"),
        ("year", "26"),
        ("quarter", "2026-q1"),
    ],
)
def test_bad_periods_are_clear_errors(kind: str, label: str) -> None:
    with pytest.raises(MetricsError) as e:
        parse_period(kind, label)
    assert e.value.code.startswith("metrics.period")
    assert label in e.value.message.zh or kind in e.value.message.zh


def test_period_bounds_are_china_time() -> None:
    q = parse_period("quarter", "2026-Q4")
    assert q.start == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert q.end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    m = parse_period("month", "2026-12")
    assert m.end == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_migration_0002_backfills_the_case_marks(tmp_path: Any) -> None:
    """Ratings stored before revision 0002 get their marks on cases when it is applied:
    C1 rated by a press (active), C2 only by a default rating, C3 by a repeat press only (not
    a case rating), and R1 rated with no case row yet (the row is created)."""
    from sqlalchemy import select

    from hub.db import migrate
    from hub.db.engine import make_engine
    from hub.db.schema import cases, halls

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate.upgrade(engine, "0001")
    at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            halls.insert().values(hall_id=HALL, name="h", area_code="330203001", created_at=at)
        )
        for case_no in ("C1", "C2", "C3"):
            connection.execute(
                cases.insert().values(
                    hall_id=HALL, case_no=case_no, finished_at=at, first_event_at=at
                )
            )
        for n, (case_no, source, flags) in enumerate(
            [("C1", "device_press", 0), ("C2", "default_rule", 0), ("C3", "device_press", 1),
             ("R1", "device_press", 0)]
        ):  # fmt: skip
            connection.execute(
                ratings.insert().values(
                    rating_key=f"k{n}", source=source, hall_id=HALL, case_no=case_no, level=1,
                    reasons="", channel="hall_terminal", flags=flags, rated_at=at,
                    assess_number=1, received_at=at,
                )
            )  # fmt: skip
    migrate.upgrade(engine)
    with engine.connect() as connection:
        marks = {
            row.case_no: (row.first_rated_at, row.first_active_rated_at)
            for row in connection.execute(select(cases))
        }
    engine.dispose()
    assert marks == {"C1": (at, at), "C2": (at, None), "C3": (None, None), "R1": (at, at)}
