"""What ingest builds from each rating, checked against the contract directly: the stored row,
the per-item validation (same models and errors as pydantic's own model_validate), and the
case rating marks (hub.ingest.service), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from hub.db.schema import cases, ratings
from hub.errors import ItemError
from hub.ingest import validation
from hub.ingest.models import RatingItem
from hub.ingest.service import ALL_SOURCES, _rating_row, ingest_ratings, rating_key
from tests.hub.conftest import HubDb, make_hall
from tests.hub.helpers import DEPT, HALL, rating

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_rating_row_is_the_ratings_columns_with_stored_values() -> None:
    item = validation.validate(
        RatingItem,
        "rating",
        rating(7, reasons=[502, 501], flags=["repeat", "offline"], text="慢", level=4),
    )
    row = _rating_row(item, rating_key(item), NOW, "tok-1")
    assert set(row) == {c.name for c in ratings.columns} - {"id"}
    assert row == {
        "rating_key": "device:ev-0001:7",
        "source": "device_press",
        "hall_id": HALL,
        "window_id": "w1",
        "staff_id": "s1",
        "device_id": "ev-0001",
        "seq": 7,
        "origin_id": None,
        "case_no": "NB-2026-000007",
        "item_code": "330203-000-XK-001",
        "item_name": "个体工商户设立登记",
        "dept_code": DEPT,
        "level": 4,
        "reasons": "502,501",
        "text": "慢",
        "channel": "hall_terminal",
        "pf": 5,
        "flags": 0x21,
        "rated_at": datetime(2026, 3, 2, 1, 15, 4, 120000, tzinfo=UTC),
        "invited_at": datetime(2026, 3, 2, 1, 14, 58, tzinfo=UTC),
        "assess_number": 1,
        "rater_name_masked": "张*明",
        "rater_phone_masked": "138****5678",
        "rater_real_name": True,
        "rater_user_type": "person",
        "received_at": NOW,
        "token_id": "tok-1",
    }
    # Plain text for the stored enums (the drivers get str, not the enum classes).
    assert type(row["source"]) is str and type(row["channel"]) is str
    assert type(row["rater_user_type"]) is str


def test_rating_row_without_a_rater() -> None:
    item = validation.validate(RatingItem, "rating", rating(8, rater=None, reasons=[]))
    row = _rating_row(item, rating_key(item), NOW, None)
    assert set(row) == {c.name for c in ratings.columns} - {"id"}
    assert all(
        row[f"rater_{n}"] is None for n in ("name_masked", "phone_masked", "real_name", "user_type")
    )
    assert row["reasons"] == "" and row["flags"] == 0 and row["token_id"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"rater": None, "flags": ["unsolicited"], "window_id": None},
        {"level": 0},
        {"level": "3"},
        {"rated_at": 1767225600},
        {"rated_at": "2026-03-02T09:15:04"},
        {"dept_code": "11330200002950478X"},
        {"rater": {"name_masked": "张三"}},
        {"rater": {"phone_masked": "13800005678"}},
        {"case_number": "x"},
        {"reasons": [1] * 17},
        {"hall_id": "bad id"},
    ],
)
def test_validate_matches_model_validate(fields: dict[str, Any]) -> None:
    """validation.validate calls the model's core validator directly: same model, same
    first error, so the same rejection code and message."""
    raw = rating(3, **fields)
    try:
        expected: RatingItem | ItemError = RatingItem.model_validate(raw)
    except ValidationError as e:
        expected = validation.item_error("rating", e)
    try:
        got: RatingItem | ItemError = validation.validate(RatingItem, "rating", raw)
    except ItemError as e:
        got = e
    if isinstance(expected, ItemError):
        assert isinstance(got, ItemError)
        assert got.body() == expected.body()
    else:
        assert got == expected


def test_case_marks_keep_the_earliest_case_rating(db: HubDb) -> None:
    """Per case, the earliest case rating and the earliest not by the default rule, whatever
    the order within a batch and across batches; follow-ups, repeat and unsolicited presses
    are not case ratings; a rating before the case's events creates the case row."""
    make_hall(db.engine)

    def at(minute: int) -> str:
        return f"2026-03-02T09:{minute:02d}:00+08:00"

    def utc(minute: int) -> datetime:
        return datetime(2026, 3, 2, 1, minute, tzinfo=UTC)

    first = [
        rating(1, case_no="A", rated_at=at(30)),
        rating(2, case_no="A", rated_at=at(10)),  # earlier, later in the batch
        rating(3, case_no="A", rated_at=at(5), assess_number=2),  # a follow-up
        rating(4, case_no="B", rated_at=at(20), flags=["repeat"]),
        rating(5, case_no="B", rated_at=at(25)),
        rating(6, case_no="C", rated_at=at(1), flags=["unsolicited"]),
        {
            **rating(0, case_no="D", rated_at=at(40)),
            "source": "default_rule",
            "origin_id": "default:D",
            "device_id": None,
            "seq": None,
        },
    ]
    second = [
        rating(7, case_no="B", rated_at=at(22)),  # earlier than the stored mark
        rating(8, case_no="A", rated_at=at(50)),  # later: no change
        rating(9, case_no="D", rated_at=at(45)),  # the first active rating of D
    ]
    for batch in (first, second):
        with db.engine.begin() as c:
            result = ingest_ratings(
                connection=c,
                hall_id=HALL,
                items_in=batch,
                now=NOW,
                actor="t",
                sources=ALL_SOURCES,
            )
            assert result.counts["accepted"] == len(batch), result.as_json()
    with db.engine.connect() as c:
        marks = {
            row.case_no: (row.first_event_at, row.first_rated_at, row.first_active_rated_at)
            for row in c.execute(select(cases))
        }
    assert marks == {
        "A": (utc(10), utc(10), utc(10)),
        "B": (utc(25), utc(22), utc(22)),
        "D": (utc(40), utc(40), utc(45)),
    }
