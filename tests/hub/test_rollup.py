"""The per-day totals (hub.metrics.rollup) answer exactly what one scan of the ratings
answers, over random data with exclusions, on SQLite and PostgreSQL; migration 0004's
backfill builds the same totals ingest keeps."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text

from hub.db.migrations.versions.v0004_rollup import backfill_sql
from hub.db.schema import rating_exclusions, rating_rollup, ratings
from hub.ingest.service import ALL_SOURCES, ingest_ratings
from hub.metrics import Dimension, parse_period, report
from tests.hub.conftest import HubDb, make_hall
from tests.hub.helpers import DEPT, DEPT_2, HALL, rating

NOW = datetime(2026, 7, 2, 1, 0, tzinfo=UTC)
SEQ = itertools.count(1)
PROPS = settings(
    max_examples=max(10, settings().max_examples // 10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
# Instants around the edges the periods and days are cut at (China time).
INSTANTS = [
    "2026-03-31T23:59:59+08:00",
    "2026-04-01T00:00:00+08:00",
    "2026-03-31T16:00:00Z",  # = 2026-04-01 00:00 China time, written in UTC
    "2026-03-31T15:59:59.999999Z",
    "2026-01-01T00:00:00+08:00",
    "2026-05-10T07:59:00Z",
    "2026-05-10T08:00:00Z",
]
PERIODS = [("quarter", "2026-Q1"), ("quarter", "2026-Q2"), ("day", "2026-04-01"), ("year", "2026")]


@st.composite
def rating_items(draw: st.DrawFn) -> dict[str, Any]:
    n = next(SEQ)
    flags = draw(st.sampled_from([[], ["repeat"], ["unsolicited"]]))
    fields: dict[str, Any] = {
        "dept_code": draw(st.sampled_from([DEPT, DEPT_2])),
        "level": draw(st.integers(1, 5)),
        "rated_at": draw(st.sampled_from(INSTANTS)),
        "window_id": draw(st.sampled_from(["w1", "w2"])),
        "staff_id": draw(st.sampled_from(["s1", "s2", None])),
        "item_code": draw(st.sampled_from(["330203-000-XK-001", None])),
        "assess_number": draw(st.sampled_from([1, 1, 2])),
        "flags": flags,
        "invited_at": None,
    }
    fields["reasons"] = [501] if fields["level"] >= 4 else []
    fields["rater"] = draw(
        st.sampled_from(
            [
                None,
                {"name_masked": "张*明", "real_name": True},
                {"name_masked": "张*", "real_name": False},
            ]
        )
    )
    if "unsolicited" in flags:
        fields["case_no"] = None
    if draw(st.booleans()) and not flags and fields["assess_number"] == 1:
        return {
            "source": "default_rule",
            "origin_id": f"default:P{n}",
            "hall_id": HALL,
            "case_no": f"P{n}",
            "dept_code": fields["dept_code"],
            "level": 3,
            "channel": "system_default",
            "pf": 7,
            "rated_at": fields["rated_at"],
        }
    return rating(n, **fields)


def _figures(db: HubDb, kind: str, label: str, dim: Dimension, **kw: Any) -> tuple[Any, Any]:
    with db.engine.connect() as c:
        period = parse_period(kind, label)
        fast = report(connection=c, period=period, dimension=dim, **kw).as_json()
        slow = report(connection=c, period=period, dimension=dim, direct=True, **kw).as_json()
    return fast, slow


@PROPS
@given(
    items=st.lists(rating_items(), min_size=1, max_size=25),
    picks=st.lists(st.integers(0, 1000), max_size=4),
    period=st.sampled_from(PERIODS),
)
def test_rollup_equals_direct_scan(
    db: HubDb, items: list[dict[str, Any]], picks: list[int], period: tuple[str, str]
) -> None:
    if not db.count(ratings):
        make_hall(db.engine)
    with db.engine.begin() as c:
        half = len(items) // 2
        for batch in (items[:half], items[half:]):  # two batches: the upsert adds up
            result = ingest_ratings(
                connection=c, hall_id=HALL, items_in=batch, now=NOW, actor="t", sources=ALL_SOURCES
            )
            assert result.counts["accepted"] == len(batch), result.as_json()
        ids = [
            r.id
            for r in c.execute(
                select(ratings.c.id)
                .outerjoin(rating_exclusions, rating_exclusions.c.rating_id == ratings.c.id)
                .where(rating_exclusions.c.rating_id.is_(None))
            )
        ]
        for rid in sorted({ids[i % len(ids)] for i in picks}):
            c.execute(
                rating_exclusions.insert().values(
                    rating_id=rid,
                    outcome="mistaken",
                    reason="误评",
                    evidence=json.dumps([]),
                    decided_by="v",
                    approved_by="a",
                    decided_at=NOW,
                )
            )
    kind, label = period
    for dim in Dimension:
        fast, slow = _figures(db, kind, label, dim)
        assert fast == slow, (dim, kind, label)
    fast, slow = _figures(db, kind, label, Dimension.ITEM, scope={"dept_code": DEPT_2})
    assert fast == slow
    fast, slow = _figures(db, kind, label, Dimension.WINDOW, scope={"hall_id": HALL})
    assert fast == slow


def test_backfill_builds_what_ingest_keeps(db: HubDb) -> None:
    make_hall(db.engine)
    items = [rating(n, rated_at=INSTANTS[n % len(INSTANTS)], level=n % 5 + 1) for n in range(40)]
    items[3]["flags"] = ["repeat"]
    items[4]["assess_number"] = 2
    items[5].update(rater=None)
    with db.engine.begin() as c:
        ingest_ratings(connection=c, hall_id=HALL, items_in=items, now=NOW, actor="t")
    query = select(rating_rollup).order_by(*rating_rollup.primary_key.columns)
    with db.engine.begin() as c:
        kept = c.execute(query).all()
        assert sum(r.n for r in kept) == 6 * len(items)  # one row per stored dimension
        c.execute(delete(rating_rollup))
        for statement in backfill_sql(db.engine.dialect.name):
            c.execute(text(statement))
        assert c.execute(query).all() == kept
