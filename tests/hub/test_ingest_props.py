"""Property tests of the ingest API (hypothesis), on SQLite and PostgreSQL.

Whatever a client sends, the hub answers 200 with one result per item or refuses the whole
request with a 4xx; never a 5xx. A refused request stores nothing; a rejected item stores
nothing; every accepted item is stored exactly once.
"""

from __future__ import annotations

import gzip
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.db.schema import audit_log, devices, ratings
from tests.hub.conftest import HubDb
from tests.hub.helpers import RATINGS, SyncClient, rating

SEQ = itertools.count(1_000_000)
# Every example is a real HTTP request into a real database, twice (SQLite, PostgreSQL): a
# quarter of the profile's examples (dev 50, ci 125, long 5000), never fewer than 50.
PROPS = settings(
    max_examples=max(50, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(rating(1))
# Values that are near misses of valid ones, so mutations often pass the type check and
# reach the deeper rules (masking, identity, hall, source).
near_misses = st.sampled_from(
    [
        0, 1, 5, 6, -1, 2**32, True, "", "1", "hall-002", "ev 1", "2026-03-02T09:15:04",
        "2026-03-02T09:15:04+08:00", [], [501], [501, 501], {}, "qr_phone", "import",
        "default_rule", "hall_tablet", {"name_masked": "张三"}, {"phone_masked": "138****5678"},
        "11330200002950478Q", "x" * 600, None,
    ]
)  # fmt: skip


def snapshot(db: HubDb) -> tuple[int, int, int]:
    return db.count(ratings), db.count(audit_log), db.count(devices)


def check_answer(api: SyncClient, db: HubDb, items: list[Any]) -> list[dict[str, Any]]:
    before = snapshot(db)
    response = api.post_items(RATINGS, items)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert snapshot(db) == before, "a refused request changed the database"
        assert response.json()["error"]["code"]
        return []
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    for result in results:
        assert result["status"] in ("accepted", "duplicate", "rejected")
        if result["status"] == "rejected":
            error = result["error"]
            assert error["code"] and error["message"] and error["message_en"]
    assert db.count(ratings) == before[0] + body["accepted"]
    return list(results)


@PROPS
@given(junk=st.lists(json_values, max_size=4))
def test_arbitrary_json_items(api: SyncClient, db: HubDb, junk: list[Any]) -> None:
    good = rating(next(SEQ))
    results = check_answer(api, db, [good, *junk])
    assert results[0]["status"] == "accepted"


@PROPS
@given(
    field=st.sampled_from([*FIELDS, "rater.name_masked", "rater.phone_masked", "extra"]),
    value=near_misses | json_values,
    delete=st.booleans(),
)
def test_mutated_items(api: SyncClient, db: HubDb, field: str, value: Any, delete: bool) -> None:
    item = rating(next(SEQ))
    if field.startswith("rater."):
        item["rater"] = dict(item["rater"])
        target, name = item["rater"], field.split(".")[1]
    else:
        target, name = item, field
    if delete:
        target.pop(name, None)
    else:
        target[name] = value
    good = rating(next(SEQ))
    results = check_answer(api, db, [item, good])
    assert results[1]["status"] == "accepted"
    if results[0]["status"] == "accepted":
        # Only valid content may be stored: read it back and compare the level and seq.
        with db.engine.connect() as connection:
            stored = connection.execute(
                ratings.select().where(ratings.c.rating_key == results[0]["key"])
            ).one()
        assert stored.level == item["level"] and stored.seq == item["seq"]


@PROPS
@given(
    body=st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.lists(json_values, max_size=3).map(lambda v: json.dumps({"items": v}).encode()),
    gzipped=st.booleans(),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain"]
    ),
)
def test_arbitrary_bodies(
    api: SyncClient, db: HubDb, body: bytes, gzipped: bool, content_type: str
) -> None:
    before = snapshot(db)
    headers = {"Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = api.request("POST", RATINGS, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert snapshot(db) == before
        assert set(response.json()) == {"error"}
    else:
        assert db.count(ratings) == before[0] + response.json()["accepted"]
