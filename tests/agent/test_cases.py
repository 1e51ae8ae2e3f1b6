"""Case events, invites and presses against a real SQLite store (no HTTP, no links).

The binding rules end to end: first press counts and rates the case, repeats stay repeats,
unsolicited presses never count, paused presses are kept as such, an expired invite and a
cancelled case count nothing; the hub outbox gets each fact once; the outbox's limits act
with counters; fraud signals come out as data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge_agent import cases, outbox, ratings, registry
from edge_agent.binding import FLAG_PAUSED, FLAG_REPEAT, FLAG_UNSOLICITED
from edge_agent.cases import Hall
from edge_agent.config import OutboxLimits, Policy
from edge_agent.errors import ApiError
from edge_agent.ratings import Incoming
from edge_agent.store import Store

T0 = 1_790_000_000_000
HALL = Hall(hall_id="H1", policy=Policy(invite_s=60), outbox=OutboxLimits(), offset_min=480)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "a.sqlite3")
    for w in ("W01", "W02"):
        registry.add_window(s, window_id=w, label=w, now_ms=T0)
    registry.add_device(s, device_id="EV1", key=bytes(16), kind=1, window_id="W01", now_ms=T0)
    registry.add_device(s, device_id="QR1", key=bytes(16), kind=2, window_id="W01", now_ms=T0)
    registry.add_device(s, device_id="EV2", key=bytes(16), kind=1, window_id="W02", now_ms=T0)
    yield s
    s.close()


def sign_in(s: Store, window: str = "W01", staff: str = "S001", hall: Hall = HALL) -> Any:
    return cases.sign_in(
        s,
        hall,
        window_id=window,
        staff_id=staff,
        name="王小明",
        number="A1",
        title=None,
        event_id=None,
        now_ms=T0,
    )


def open_case(s: Store, case_no: str, window: str = "W01", at: int = T0, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "staff_id": None,
        "item_code": "11330200MB0000000X",
        "item_name": "居民身份证换领",
        "dept_code": None,
        "applicant_type": "person",
        "applicant_name": "张三丰",
        "applicant_phone": "13812345678",
        "event_id": None,
    }
    args.update(kw)
    return cases.open_case(s, HALL, case_no=case_no, window_id=window, now_ms=at, **args)


def finish(s: Store, case_no: str, at: int = T0 + 1000, hall: Hall = HALL) -> dict[str, Any]:
    result, _ = cases.finish_case(s, hall, case_no=case_no, event_id=None, now_ms=at)
    return result


def press(
    s: Store,
    seq: int,
    *,
    invite: int | None,
    at: int,
    flags: int = 0,
    level: int = 1,
    device: str = "EV1",
    hall: Hall = HALL,
) -> ratings.CommitResult:
    r = Incoming(seq, invite, level, [], flags, 0, 1, None, at, "ticks")
    return ratings.commit_ratings(s, hall, device_id=device, ratings=[r], now_ms=at + 50)


def rating(s: Store, seq: int, device: str = "EV1") -> dict[str, Any]:
    row = s.one("SELECT * FROM ratings WHERE device_id = ? AND seq = ?", device, seq)
    assert row is not None
    return dict(row)


def state(s: Store, case_no: str) -> str:
    return str(s.scalar("SELECT state FROM cases WHERE case_no = ?", case_no))


def snapshot(s: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = [r[0] for r in s.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [tuple(r) for r in s.all(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}


# ---------------------------------------------------------------- staff and windows


def test_one_account_one_window(store: Store) -> None:
    sign_in(store, "W01", "S001")
    before = snapshot(store)
    for window, staff, code in [
        ("W01", "S001", "staff.already_signed_in"),
        ("W01", "S002", "window.occupied"),
        ("W02", "S001", "staff.signed_in_elsewhere"),
        ("W99", "S003", "window.unknown"),
    ]:
        with pytest.raises(ApiError) as info:
            sign_in(store, window, staff)
        assert info.value.code == code
        assert snapshot(store) == before, f"{code} changed the store"
    cases.sign_out(store, HALL, window_id="W01", staff_id="S001", event_id=None, now_ms=T0)
    sign_in(store, "W02", "S001")


def test_event_ids_are_deduplicated(store: Store) -> None:
    cases.set_paused(
        store, HALL, window_id="W01", paused=True, reason="午休", event_id="q-1", now_ms=T0
    )
    before = snapshot(store)
    with pytest.raises(ApiError) as info:
        cases.set_paused(
            store, HALL, window_id="W01", paused=False, reason=None, event_id="q-1", now_ms=T0
        )
    assert info.value.code == "event.duplicate" and info.value.status == 409
    assert snapshot(store) == before


def test_personal_data_is_masked_before_it_is_stored(store: Store) -> None:
    open_case(store, "C-1")
    row = store.one("SELECT name_masked, phone_masked FROM cases")
    assert tuple(row) == ("张*丰", "138****5678")  # type: ignore[arg-type]
    everything = json.dumps(snapshot(store), ensure_ascii=False, default=repr)
    assert "张三丰" not in everything and "13812345678" not in everything


# ---------------------------------------------------------------- the binding rules


def test_first_press_counts_repeats_stay_repeats(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    inv = finish(store, "C-1")["invite_id"]
    assert press(store, 1, invite=inv, at=T0 + 5000).ack == 1
    press(store, 2, invite=inv, at=T0 + 6000, flags=FLAG_REPEAT)
    press(store, 1, invite=inv, at=T0 + 7000, device="QR1")  # the other device at the window
    assert rating(store, 1)["binding"] == "counted" and rating(store, 1)["case_no"] == "C-1"
    assert rating(store, 1)["staff_id"] == "S001"
    assert rating(store, 2)["binding"] == "repeat" and rating(store, 2)["case_no"] == "C-1"
    assert rating(store, 1, "QR1")["binding"] == "repeat"
    assert state(store, "C-1") == "rated"
    inv_row = store.one("SELECT close_reason, counted_seq FROM invites")
    assert tuple(inv_row) == ("rated", 1)  # type: ignore[arg-type]
    items = {i["key"]: i["body"] for i in outbox.items(store)}
    counted = items["device:EV1:1"]
    assert counted["case_no"] == "C-1" and counted["flags"] == []
    assert counted["rater"] == {
        "name_masked": "张*丰",
        "phone_masked": "138****5678",
        "real_name": True,
        "user_type": "person",
    }
    assert counted["rated_at"].endswith("+08:00")
    assert items["device:EV1:2"]["flags"] == ["repeat"]
    assert items["device:QR1:1"]["flags"] == ["repeat"]  # the agent knew what the device didn't
    finished = [b for b in items.values() if b.get("kind") == "case_finished"]
    assert len(finished) == 1 and finished[0]["invited"] is False  # no device acked the INVITE


def test_unsolicited_presses_never_count(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    finish(store, "C-1")
    press(store, 1, invite=None, at=T0 + 2000, flags=FLAG_UNSOLICITED)
    press(store, 2, invite=None, at=T0 + 2500)  # no invite named, no flag: still unsolicited
    press(store, 3, invite=424242, at=T0 + 3000)  # an invite this agent never opened
    assert [rating(store, s)["binding"] for s in (1, 2, 3)] == [
        "unsolicited",
        "unsolicited",
        "unknown_invite",
    ]
    assert all(rating(store, s)["case_no"] is None for s in (1, 2, 3))
    assert rating(store, 1)["staff_id"] == "S001"  # the staff at the window: the signal's target
    assert state(store, "C-1") == "finished"
    body = {i["key"]: i["body"] for i in outbox.items(store)}["device:EV1:2"]
    assert body["case_no"] is None and body["flags"] == ["unsolicited"]


def test_presses_at_another_windows_invite(store: Store) -> None:
    sign_in(store, "W02", "S002")
    open_case(store, "C-2", window="W02")
    inv = finish(store, "C-2")["invite_id"]
    press(store, 1, invite=inv, at=T0 + 3000)  # EV1 is at W01
    assert rating(store, 1)["binding"] == "wrong_window"
    assert state(store, "C-2") == "finished"


def test_paused_presses_are_kept_as_such(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    inv = finish(store, "C-1")["invite_id"]
    cases.set_paused(
        store, HALL, window_id="W01", paused=True, reason=None, event_id=None, now_ms=T0
    )
    press(store, 1, invite=inv, at=T0 + 3000, flags=FLAG_PAUSED, level=5)
    r = rating(store, 1)
    assert r["binding"] == "paused" and r["level"] == 5 and r["flags"] == FLAG_PAUSED
    assert state(store, "C-1") == "finished"
    with pytest.raises(ApiError) as info:
        open_case(store, "C-2")
        finish(store, "C-2")
    assert info.value.code == "window.paused"


def test_expired_invite_counts_nothing(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    inv = finish(store, "C-1", at=T0)["invite_id"]
    grace = HALL.policy.expire_grace_s * 1000
    assert cases.expire_invites(store, HALL, now_ms=T0 + 60_000 + grace - 1) == []
    assert cases.expire_invites(store, HALL, now_ms=T0 + 60_000 + grace + 1) == [inv]
    assert state(store, "C-1") == "expired"
    press(store, 1, invite=inv, at=T0 + 61_000)
    assert rating(store, 1)["binding"] == "expired" and state(store, "C-1") == "expired"
    # A press made in time that arrives late still counts (store-and-forward).
    press(store, 2, invite=inv, at=T0 + 59_000)
    assert rating(store, 2)["binding"] == "counted" and state(store, "C-1") == "rated"


def test_cancelled_case_counts_nothing(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    inv = finish(store, "C-1")["invite_id"]
    result, effects = cases.cancel_case(store, HALL, case_no="C-1", event_id=None, now_ms=T0 + 2000)
    assert result["state"] == "cancelled"
    assert [(e.kind, e.invite_id) for e in effects] == [("cancel", inv)]
    press(store, 1, invite=inv, at=T0 + 3000)
    assert rating(store, 1)["binding"] == "cancelled" and state(store, "C-1") == "cancelled"
    with pytest.raises(ApiError) as info:
        cases.cancel_case(store, HALL, case_no="C-1", event_id=None, now_ms=T0 + 4000)
    assert info.value.code == "case.illegal_transition"


def test_next_case_supersedes_the_open_invite(store: Store) -> None:
    sign_in(store)
    open_case(store, "C-1")
    open_case(store, "C-2")
    first = finish(store, "C-1", at=T0 + 1000)["invite_id"]
    result, effects = cases.finish_case(store, HALL, case_no="C-2", event_id=None, now_ms=T0 + 9000)
    assert [(e.kind, e.invite_id) for e in effects] == [
        ("cancel", first),
        ("invite", result["invite_id"]),
    ]
    assert state(store, "C-1") == "expired"
    press(store, 1, invite=first, at=T0 + 9500)
    assert rating(store, 1)["binding"] == "superseded"
    press(store, 2, invite=result["invite_id"], at=T0 + 9700)
    assert rating(store, 2)["binding"] == "counted" and rating(store, 2)["too_fast"] == 1


def test_out_of_order_case_events_change_nothing(store: Store) -> None:
    sign_in(store)
    before = snapshot(store)
    with pytest.raises(ApiError) as info:
        finish(store, "C-404")
    assert info.value.code == "case.unknown" and info.value.status == 404
    open_case(store, "C-1")
    after_open = snapshot(store)
    for fn, code in [
        (lambda: open_case(store, "C-1"), "case.illegal_transition"),
        (lambda: open_case(store, "C-3", window="W77"), "window.unknown"),
        (lambda: open_case(store, "C-4", staff_id="S999"), "staff.not_signed_in"),
    ]:
        with pytest.raises(ApiError) as info:
            fn()
        assert info.value.code == code
        assert snapshot(store) == after_open
    assert before != after_open


def test_duplicate_ratings_are_acknowledged_not_stored(store: Store) -> None:
    r = press(store, 1, invite=None, at=T0)
    again = press(store, 1, invite=None, at=T0 + 999)
    assert (r.ack, r.stored) == (1, 1) and (again.ack, again.stored, again.duplicates) == (1, 0, 1)
    assert store.scalar("SELECT count(*) FROM ratings") == 1
    assert store.scalar("SELECT count(*) FROM outbox WHERE kind = 'rating'") == 1
    assert store.counters()["ratings_duplicate"] == 1


def test_a_level_never_changes_what_is_stored(store: Store) -> None:
    for level in range(1, 6):
        press(store, level, invite=None, at=T0, level=level)
    levels = [r["level"] for r in store.all("SELECT level FROM ratings ORDER BY seq")]
    bodies = [i["body"]["level"] for i in outbox.items(store)]
    assert levels == bodies == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- outbox limits


def limited(policy: str, rows: int = 100) -> Hall:
    return replace(HALL, outbox=OutboxLimits(max_rows=rows, max_age_s=86400, overflow=policy))  # type: ignore[arg-type]


def fill(s: Store, hall: Hall, n: int, start: int = 1) -> list[ratings.CommitResult]:
    return [press(s, seq, invite=None, at=T0, hall=hall) for seq in range(start, start + n)]


def test_outbox_block_refuses_and_does_not_acknowledge(store: Store) -> None:
    hall = limited("block")
    results = fill(store, hall, 102)
    assert [r.ack for r in results[-3:]] == [100, None, None]
    assert store.scalar("SELECT max(seq) FROM ratings") == 100  # 101 and 102 stay on the device
    assert outbox.depth(store) == 100
    assert store.counters()["outbox_blocked"] == 2
    with pytest.raises(ApiError) as info:
        sign_in(store, hall=hall)
    assert info.value.code == "outbox.full" and info.value.status == 503


def test_outbox_drop_oldest_and_drop_newest_count(store: Store) -> None:
    hall = limited("drop_oldest")
    fill(store, hall, 105)
    assert outbox.depth(store) == 100 == store.scalar("SELECT count(*) FROM outbox")
    assert store.counters()["outbox_dropped_oldest"] == 5
    assert outbox.items(store, 1)[0]["key"] == "device:EV1:6"
    assert store.scalar("SELECT count(*) FROM ratings") == 105  # every press kept locally
    hall = limited("drop_newest")
    fill(store, hall, 3, start=106)
    assert store.counters()["outbox_dropped_newest"] == 3
    assert store.scalar("SELECT count(*) FROM ratings") == 108


def test_outbox_age_limit(store: Store) -> None:
    fill(store, HALL, 3)
    day = 86400 * 1000
    hall = replace(HALL, outbox=OutboxLimits(max_age_s=86400))
    assert outbox.expire(store, now_ms=T0 + day - 1, limits=hall.outbox) == 0
    assert outbox.expire(store, now_ms=T0 + 50 + day + 1, limits=hall.outbox) == 3
    assert store.counters()["outbox_expired"] == 3 and outbox.depth(store) == 0


# ---------------------------------------------------------------- fraud signals


def test_signals_show_unsolicited_fast_and_rarely_invited(store: Store) -> None:
    sign_in(store, "W01", "S001")
    sign_in(store, "W02", "S002")
    for i in range(ratings.RARELY_INVITED_MIN_CASES):
        open_case(store, f"A-{i}", window="W01")
        inv = finish(store, f"A-{i}", at=T0 + i * 100_000)["invite_id"]
        cases.mark_delivered(store, invite_id=inv, now_ms=T0 + i * 100_000 + 10)
        press(store, i + 1, invite=inv, at=T0 + i * 100_000 + 300)  # always within 300 ms
        open_case(store, f"B-{i}", window="W02")  # W02 never finishes its cases
    for i in range(5):
        press(store, 100 + i, invite=None, at=T0 + i, device="EV2")
    sig = ratings.signals(store, fast_press_ms=1000)
    by = {w["window_id"]: w for w in sig["windows"]}
    assert by["W01"]["too_fast"] == 20 and by["W01"]["invite_rate"] == 1.0
    assert by["W01"]["rarely_invited"] is False and by["W01"]["active_rating_rate"] == 1.0
    assert by["W02"]["unsolicited"] == 5 and by["W02"]["invited"] == 0
    assert by["W02"]["rarely_invited"] is True
    assert sig["unsolicited_by_staff"][0] == {
        "staff_id": "S002",
        "window_id": "W02",
        "unsolicited": 5,
    }
