"""Ingest over HTTP through the real ASGI app, on SQLite and PostgreSQL (docs/hub-api.md)."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from hub.db.schema import audit_log, case_events, cases, device_health, devices, ratings
from tests.hub.conftest import Hall, HubDb, make_hall
from tests.hub.helpers import (
    DEPT,
    EVENTS,
    HALL,
    HEALTH,
    RATINGS,
    SyncClient,
    event,
    health,
    rating,
)


def stored_ratings(db: HubDb) -> list[Any]:
    with db.engine.connect() as connection:
        return list(connection.execute(select(ratings).order_by(ratings.c.rating_key)))


def statuses(response: Any) -> list[str]:
    return [r["status"] for r in response.json()["results"]]


# ---------------------------------------------------------------- accepted, stored as sent


def test_batch_is_stored_and_answered_per_item(api: SyncClient, db: HubDb, hall: Hall) -> None:
    response = api.post_items(RATINGS, [rating(1), rating(2), rating(3)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (3, 0, 0)
    assert [r["key"] for r in body["results"]] == [f"device:ev-0001:{n}" for n in (1, 2, 3)]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    rows = stored_ratings(db)
    assert len(rows) == 3
    row = rows[0]
    assert row.level == 2 and row.source == "device_press" and row.channel == "hall_terminal"
    assert row.rated_at == datetime(2026, 3, 2, 1, 15, 4, 120000, tzinfo=UTC)
    assert row.invited_at == datetime(2026, 3, 2, 1, 14, 58, tzinfo=UTC)
    assert row.rater_name_masked == "张*明" and row.rater_real_name is True
    assert row.token_id == hall.token_id and row.hall_id == HALL
    assert row.dept_code == DEPT and row.pf == 5 and row.assess_number == 1


def test_every_level_and_flag_is_stored_unaltered(api: SyncClient, db: HubDb) -> None:
    """DOMAIN.md: nothing is dropped or altered because of its level or its flags."""
    flags = ["repeat", "unsolicited", "paused", "reason_timeout", "reason_skipped", "offline"]
    items = [rating(level, level=level, reasons=[], text=None) for level in range(1, 6)]
    items.append(rating(6, level=5, flags=flags, case_no=None, reasons=[]))
    items.append(rating(7, level=4, flags=["unsolicited"], case_no=None, staff_id=None))
    response = api.post_items(RATINGS, items)
    assert statuses(response) == ["accepted"] * 7
    rows = {row.seq: row for row in stored_ratings(db)}
    assert [rows[n].level for n in range(1, 6)] == [1, 2, 3, 4, 5]
    assert rows[6].flags == 0x3F and rows[6].case_no is None
    assert rows[7].flags == 0x02 and rows[7].staff_id is None


# ---------------------------------------------------------------- idempotency


def test_same_batch_twice_is_duplicate(api: SyncClient, db: HubDb) -> None:
    batch = [rating(n) for n in range(1, 6)]
    first = api.post_items(RATINGS, batch)
    again = api.post_items(RATINGS, batch)
    assert statuses(first) == ["accepted"] * 5
    assert statuses(again) == ["duplicate"] * 5
    assert again.json()["duplicate"] == 5
    assert len(stored_ratings(db)) == 5


def test_same_identity_within_a_batch(api: SyncClient, db: HubDb) -> None:
    response = api.post_items(RATINGS, [rating(1), rating(1), rating(1, level=5)])
    assert statuses(response) == ["accepted", "duplicate", "rejected"]
    assert response.json()["results"][2]["error"]["code"] == "rating.identity_conflict"
    assert len(stored_ratings(db)) == 1


def test_identity_conflict_keeps_the_stored_rating_and_is_audited(
    api: SyncClient, db: HubDb
) -> None:
    api.post_items(RATINGS, [rating(1, level=1)])
    response = api.post_items(RATINGS, [rating(1, level=5)])
    result = response.json()["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "rating.identity_conflict"
    assert result["error"]["message"].startswith("标识 device:ev-0001:1")
    assert [row.level for row in stored_ratings(db)] == [1]
    with db.engine.connect() as connection:
        audit = connection.execute(
            select(audit_log).where(audit_log.c.action == "rating.identity_conflict")
        ).one()
    assert audit.target == "device:ev-0001:1"
    assert json.loads(audit.detail) == {"fields": ["level"]}


def test_same_instant_in_another_offset_is_a_duplicate(api: SyncClient, db: HubDb) -> None:
    api.post_items(RATINGS, [rating(1, rated_at="2026-03-02T09:15:04.120+08:00")])
    response = api.post_items(RATINGS, [rating(1, rated_at="2026-03-02T01:15:04.120Z")])
    assert statuses(response) == ["duplicate"]


def test_concurrent_identical_batches_store_each_rating_once(
    make_api: Any, db: HubDb, hall: Hall
) -> None:
    """Two clients (each its own app, as two hub processes would be) post the same batches
    at the same moment: every rating is accepted exactly once across both answers."""
    batches = [[rating(n, device=f"ev-{b}") for n in range(200)] for b in range(4)]
    answers: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def worker(slot: int) -> None:
        client = make_api(hall.token)
        barrier.wait()
        for batch in batches:
            response = client.post_items(RATINGS, batch)
            assert response.status_code == 200, response.text
            answers[slot].extend(response.json()["results"])

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers[0]) == len(answers[1]) == 800
    for a, b in zip(answers[0], answers[1], strict=True):
        assert a["key"] == b["key"]
        assert sorted([a["status"], b["status"]]) == ["accepted", "duplicate"]
    assert db.count(ratings) == 800


# ---------------------------------------------------------------- per-item rejections


BAD_ITEMS: list[tuple[Any, str, str | None]] = [
    (5, "item.invalid", None),
    ([1, 2], "item.invalid", None),
    (rating(10, level=6), "rating.level", "level"),
    (rating(10, level="3"), "rating.level", "level"),
    (rating(10, level=True), "rating.level", "level"),
    (rating(10, seq=-1), "rating.seq", "seq"),
    (rating(10, seq=2**32), "rating.seq", "seq"),
    (rating(10, device_id="ev 01"), "rating.device_id", "device_id"),
    (rating(10, channel="fax"), "rating.channel", "channel"),
    (rating(10, flags=["shaken"]), "rating.flags", "flags.0"),
    (rating(10, flags=["repeat", "repeat"]), "rating.flags", "flags"),
    (rating(10, reasons=[501, 501]), "rating.reasons", "reasons"),
    (rating(10, reasons=list(range(17))), "rating.reasons", "reasons"),
    (rating(10, text="长" * 501), "rating.text", "text"),
    (rating(10, rated_at="2026-03-02T09:15:04"), "rating.rated_at", "rated_at"),
    (rating(10, rated_at=1790000000), "rating.rated_at", "rated_at"),
    (rating(10, rated_at="yesterday"), "rating.rated_at", "rated_at"),
    (rating(10, assess_number=3), "rating.assess_number", "assess_number"),
    (rating(10, assess_number=True), "rating.assess_number", "assess_number"),
    (rating(10, dept_code="11330200002950478Q"), "rating.dept_code", "dept_code"),
    (rating(10, dept_code="1133020000295047"), "rating.dept_code", "dept_code"),
    (rating(10, case_number="x"), "rating.unknown_field", "case_number"),
    (rating(10, source="default_rule", origin_id="d1"), "rating.source_not_allowed", "source"),
    (rating(10, source="qr_phone", origin_id="q1"), "rating.source_not_allowed", "source"),
    (rating(10, hall="hall-002"), "rating.hall_mismatch", "hall_id"),
    (rating(10, seq=None), "rating.seq", "seq"),
    (rating(10, window_id=None), "rating.window_id", "window_id"),
    (rating(10, origin_id="o-1"), "rating.origin_id", "origin_id"),
    (
        rating(10, rater={"name_masked": "张三明", "real_name": True}),
        "rating.rater_unmasked",
        "rater.name_masked",
    ),
    (
        rating(10, rater={"phone_masked": "13812345678"}),
        "rating.rater_unmasked",
        "rater.phone_masked",
    ),
]


@pytest.mark.parametrize(("bad", "code", "field"), BAD_ITEMS)
def test_a_bad_item_is_rejected_and_the_good_ones_stored(
    api: SyncClient, db: HubDb, bad: Any, code: str, field: str | None
) -> None:
    response = api.post_items(RATINGS, [rating(1), bad, rating(2)])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    error = results[1]["error"]
    assert error["code"] == code
    assert error.get("field") == field
    assert error["message"] and error["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"]), error["message"]
    assert db.count(ratings) == 2


def test_an_unbound_device_sends_unsolicited_presses_only(api: SyncClient, db: HubDb) -> None:
    loose = {"window_id": None, "staff_id": None, "case_no": None, "invited_at": None}
    response = api.post_items(
        RATINGS, [rating(1, flags=["unsolicited"], **loose), rating(2, **loose)]
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["error"]["code"] == "rating.window_id"
    with db.engine.connect() as connection:
        stored = connection.execute(select(ratings.c.window_id, ratings.c.flags)).all()
    assert [tuple(r) for r in stored] == [(None, 0x02)]


def test_rejection_messages_name_the_rule(api: SyncClient) -> None:
    response = api.post_items(RATINGS, [rating(1, level=9), rating(2, text="x" * 600)])
    first, second = (r["error"] for r in response.json()["results"])
    assert "1=非常满意" in first["message"] and "1 = very satisfied" in first["message_en"]
    assert "上限 500" in second["message"] and second["limit"] == 500


def test_device_of_another_hall_is_rejected(make_api: Any, db: HubDb, hall: Hall) -> None:
    other = make_hall(db.engine, "hall-002", "330203002")
    mine = make_api(hall.token)
    theirs = make_api(other.token)
    assert statuses(mine.post_items(RATINGS, [rating(1)])) == ["accepted"]
    response = theirs.post_items(
        RATINGS, [rating(2, hall="hall-002"), rating(1, hall="hall-002", device="ev-0002")]
    )
    result = response.json()["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "device.other_hall"
    assert response.json()["results"][1]["status"] == "accepted"
    with db.engine.connect() as connection:
        owners = dict(connection.execute(select(devices.c.device_id, devices.c.hall_id)).all())
    assert owners == {"ev-0001": HALL, "ev-0002": "hall-002"}


# ---------------------------------------------------------------- the request as a whole


def test_gzip_body(api: SyncClient, db: HubDb) -> None:
    response = api.post_items(RATINGS, [rating(n) for n in range(50)], gzipped=True)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 50
    assert db.count(ratings) == 50


def test_multi_member_gzip(api: SyncClient, db: HubDb) -> None:
    body = json.dumps({"items": [rating(1)]}).encode()
    half = len(body) // 2
    data = gzip.compress(body[:half]) + gzip.compress(body[half:])
    response = api.request(
        "POST",
        RATINGS,
        content=data,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert db.count(ratings) == 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"}, 400, "request.bad_gzip"),
        (
            # mtime=0: the header's time is part of the test id, which xdist workers that
            # collect in different seconds would otherwise disagree on
            gzip.compress(b'{"items": []}', mtime=0)[:-6],
            {"Content-Encoding": "gzip"},
            400,
            "request.bad_gzip",
        ),
        (b"{not json", {}, 400, "request.bad_json"),
        (b'{"items": [NaN]}', {}, 400, "request.bad_json"),
        (b"\xff\xfe{}", {}, 400, "request.bad_json"),
        (b"[" * 100000 + b"]" * 100000, {}, 400, "request.bad_json"),
        (b"[]", {}, 422, "request.invalid"),
        (b'{"items": {}}', {}, 422, "request.invalid"),
        (b'{"items": [], "hall": 1}', {}, 422, "request.invalid"),
        (b'{"items": []}', {"Content-Type": "text/plain"}, 415, "request.unsupported_media_type"),
        (b'{"items": []}', {"Content-Encoding": "br"}, 415, "request.unsupported_encoding"),
    ],
)
def test_bad_requests_are_refused_whole(
    api: SyncClient,
    db: HubDb,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    all_headers = {"Content-Type": "application/json", **headers}
    response = api.request("POST", RATINGS, content=content, headers=all_headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["message_en"]
    assert db.count(ratings) == 0


def test_limits(make_api: Any, hall: Hall, db: HubDb) -> None:
    api = make_api(hall.token, max_items=5, max_body_bytes=20_000, max_decoded_bytes=30_000)
    too_many = api.post_items(RATINGS, [rating(n) for n in range(6)])
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "request.too_many_items"
    assert too_many.json()["error"]["limit"] == 5
    big = api.post_items(RATINGS, [rating(1, text="x" * 400)] * 5 + ["y" * 20_000])
    assert big.status_code == 413 and big.json()["error"]["code"] == "request.too_large"
    bomb = gzip.compress(json.dumps({"items": [" " * 40_000]}).encode())
    assert len(bomb) < 20_000
    response = api.request(
        "POST",
        RATINGS,
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request.decoded_too_large"
    assert db.count(ratings) == 0


def test_empty_batch(api: SyncClient) -> None:
    response = api.post_items(RATINGS, [])
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicate": 0, "rejected": 0, "results": []}


# ---------------------------------------------------------------- back-pressure


def test_hall_rate_limit_answers_429_with_retry_after(make_api: Any, hall: Hall, db: HubDb) -> None:
    api = make_api(hall.token, hall_rate_per_s=10, hall_burst=20)
    assert api.post_items(RATINGS, [rating(n) for n in range(15)]).status_code == 200
    response = api.post_items(RATINGS, [rating(n) for n in range(15, 30)])
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "ingest.rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert db.count(ratings) == 15  # the refused batch changed nothing


def test_overload_answers_503_with_retry_after(make_api: Any, hall: Hall, db: HubDb) -> None:
    api = make_api(hall.token, retry_after_s=7)
    api.app.state.gate.inflight = api.app.state.gate.limit  # as if all slots were busy
    response = api.post_items(RATINGS, [rating(1)])
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "ingest.overloaded"
    assert db.count(ratings) == 0
    api.app.state.gate.inflight = 0
    assert api.post_items(RATINGS, [rating(1)]).status_code == 200


def test_database_unavailable_answers_503(make_api: Any, hall: Hall, db: HubDb) -> None:
    from hub.db.engine import make_engine

    if db.kind == "sqlite":
        url = "sqlite:////nonexistent-dir-hcp/sub/hub.sqlite3"
    else:
        url = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"
    from hub.app import create_app
    from hub.settings import HubSettings

    broken = make_engine(url) if db.kind == "postgresql" else None
    if broken is None:
        from sqlalchemy import create_engine

        broken = create_engine(url)
    app = create_app(HubSettings(database_url=url), engine=broken)
    client = SyncClient(app, hall.token)
    try:
        response = client.post_items(RATINGS, [rating(1)])
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "db.unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        health_response = client.request("GET", "/api/v1/health")
        assert health_response.status_code == 503
    finally:
        client.close()


# ---------------------------------------------------------------- immutability


def test_no_route_updates_or_deletes(api: SyncClient) -> None:
    for route in api.app.routes:
        methods = getattr(route, "methods", set()) or set()
        assert not methods & {"PUT", "PATCH", "DELETE"}, route
    for method in ("PUT", "PATCH", "DELETE"):
        response = api.request(method, RATINGS, json_body={"items": [rating(1)]})
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "request.method_not_allowed"


@pytest.mark.parametrize("table", ["ratings", "case_events", "device_health", "audit_log"])
def test_database_refuses_update_and_delete(api: SyncClient, db: HubDb, table: str) -> None:
    api.post_items(RATINGS, [rating(1)])
    api.post_items(EVENTS, [event("e1", "case_opened", case_no="C1")])
    api.post_items(HEALTH, [health("ev-0001", "2026-03-02T09:00:00+08:00")])
    statements = [f"UPDATE {table} SET id = id", f"DELETE FROM {table}"]
    if db.kind == "postgresql":
        # CASCADE: other tables reference ratings; the trigger must refuse it all the same.
        statements.append(f"TRUNCATE {table} CASCADE")
    for statement in statements:
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(statement))
    with db.engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() >= 1


def test_service_code_never_updates_or_deletes_ratings() -> None:
    """A static guard to go with the triggers: no hub module builds an UPDATE or DELETE of
    an append-only table."""
    from pathlib import Path

    import hub

    root = Path(hub.__file__).parent
    for path in root.rglob("*.py"):
        source = path.read_text()
        for table in ("ratings", "case_events", "device_health", "audit_log"):
            for verb in ("update", "delete"):
                assert f"{table}.{verb}(" not in source, f"{path}: {table}.{verb}("
                assert f"{verb.upper()} {table}" not in source.replace("FROM ", ""), path


# ---------------------------------------------------------------- case events, health


def test_case_events_build_the_case_summary(api: SyncClient, db: HubDb) -> None:
    applicant = {"name_masked": "李*", "real_name": True, "user_type": "legal_entity"}
    items = [
        event(
            "e2",
            "case_finished",
            case_no="C1",
            invited=True,
            occurred_at="2026-03-02T09:20:00+08:00",
        ),
        event(
            "e1",
            "case_opened",
            case_no="C1",
            window_id="w1",
            staff_id="s1",
            item_code="I-1",
            item_name="事项",
            dept_code=DEPT,
            applicant=applicant,
        ),
        event("e3", "staff_signed_in", window_id="w1", staff_id="s1"),
        event("e4", "window_paused", window_id="w1"),
        event("e5", "case_cancelled"),  # no case_no
        event("e6", "staff_signed_out", window_id="w1"),  # no staff_id
    ]
    response = api.post_items(EVENTS, items)
    assert statuses(response) == ["accepted"] * 4 + ["rejected"] * 2
    assert response.json()["results"][4]["error"]["code"] == "event.case_no"
    assert response.json()["results"][5]["error"]["code"] == "event.staff_id"
    again = api.post_items(EVENTS, items[:4])
    assert statuses(again) == ["duplicate"] * 4
    with db.engine.connect() as connection:
        case = connection.execute(select(cases)).one()
    assert case.case_no == "C1" and case.window_id == "w1" and case.staff_id == "s1"
    assert case.opened_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert case.finished_at == datetime(2026, 3, 2, 1, 20, tzinfo=UTC)
    assert case.first_event_at == case.opened_at
    assert case.invited is True and case.applicant_user_type == "legal_entity"
    assert db.count(case_events) == 4


def test_case_summary_across_batches_keeps_first_values(api: SyncClient, db: HubDb) -> None:
    api.post_items(
        EVENTS,
        [
            event(
                "e2",
                "case_finished",
                case_no="C1",
                invited=False,
                occurred_at="2026-03-02T10:00:00+08:00",
            )
        ],
    )
    api.post_items(EVENTS, [event("e1", "case_opened", case_no="C1", window_id="w2")])
    with db.engine.connect() as connection:
        case = connection.execute(select(cases)).one()
    assert case.window_id == "w2" and case.invited is False
    assert case.first_event_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_device_health(api: SyncClient, db: HubDb) -> None:
    items = [
        health("ev-0001", "2026-03-02T09:00:00+08:00"),
        health("ev-0001", "2026-03-02T01:00:00Z"),  # the same instant: a duplicate
        health("ev-0001", "2026-03-02T09:01:00+08:00", counters={"Bad-Name": 1}),
        health("ev-0001", "2026-03-02T09:02:00+08:00", outbox_depth=-1),
        health("ev-0002", "2026-03-02T09:00:00+08:00", online=False, hall="hall-002"),
    ]
    response = api.post_items(HEALTH, items)
    assert statuses(response) == ["accepted", "duplicate", "rejected", "rejected", "rejected"]
    codes = [r["error"]["code"] for r in response.json()["results"][2:]]
    assert codes == ["health.counters", "health.outbox_depth", "health.hall_mismatch"]
    with db.engine.connect() as connection:
        row = connection.execute(select(device_health)).one()
    assert json.loads(row.counters) == {"frame_errors": 1, "replays": 0}
    assert row.health_key == "health:ev-0001:20260302T010000.000000Z"


def test_audit_log_records_each_batch(api: SyncClient, db: HubDb, hall: Hall) -> None:
    api.post_items(RATINGS, [rating(1), rating(2, level=0)])
    with db.engine.connect() as connection:
        row = connection.execute(
            select(audit_log).where(audit_log.c.action == "ingest.ratings")
        ).one()
    assert row.actor == f"token:{hall.token_id}"
    detail = json.loads(row.detail)
    assert detail["accepted"] == 1 and detail["rejected"] == 1
    assert detail["rejected_codes"] == {"rating.level": 1}


def test_whoami_and_health(api: SyncClient, hall: Hall, db: HubDb) -> None:
    me = api.request("GET", "/api/v1/ingest/whoami")
    assert me.status_code == 200, me.text
    assert me.json()["hall_id"] == HALL and me.json()["token_id"] == hall.token_id
    assert me.json()["sources"] == ["device_press"]
    assert me.json()["limits"]["max_items"] == 1000
    alive = api.request("GET", "/api/v1/health", token="")
    assert alive.status_code == 200 and alive.json() == {"status": "ok", "database": db.kind}


def test_unknown_path_has_the_error_shape(api: SyncClient) -> None:
    response = api.request("GET", "/api/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "request.not_found"
