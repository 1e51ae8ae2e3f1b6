"""Storing device presses, binding them to cases, and the fraud signals they add up to.

Strategy: ``commit_ratings`` takes the RATINGs one link delivered since its last commit (in
stream order) and stores them in **one** transaction: each press is deduplicated on
``(device_id, seq)``, judged by edge_agent.binding, written with its verdict and flags,
queued for the hub, and, if it is the counted press of an invite, moves its case to rated.
It returns the highest seq that is now durably stored; the link acknowledges exactly that,
after COMMIT returned (DESIGN.md: acknowledge only after commit). A press is never dropped
or altered because of its level, flags or timing: only its verdict differs.

If the outbox is full under the ``block`` policy the batch stops before the first press
that cannot be queued: that press and the rest are not stored and not acknowledged, so the
device keeps them and retransmits (counter ``outbox_blocked``).

Signals (DOMAIN.md, fraud patterns) are plain queries over what is stored: presses with no
open case, presses sooner than ``fast_press_ms`` after the invite, and per window how many
cases were invited and rated. They are data for the hall's reports; the thresholds that mark
a window (``RARELY_INVITED_*``) are hints, not verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edge_agent import outbox
from edge_agent.binding import Binding, CaseState, InviteView, Press, Verdict, judge, next_state
from edge_agent.cases import Hall, close_rated_invite
from edge_agent.hubitems import rating_item
from edge_agent.store import Store

# A window is marked "rarely invited" when at least this many cases were opened in the
# period and fewer than this share of them had an invite a device acknowledged. 20 cases is
# about one counter's morning; 50 % is far below the Anda target of ≥ 90 % active ratings.
RARELY_INVITED_MIN_CASES = 20
RARELY_INVITED_SHARE = 0.5
UNSOLICITED = (
    Binding.UNSOLICITED.value,
    Binding.UNKNOWN_INVITE.value,
    Binding.WRONG_WINDOW.value,
)


@dataclass(frozen=True)
class Incoming:
    """One RATING as delivered by a link, with its press time on the agent's clock."""

    seq: int
    invite_id: int | None
    level: int
    reasons: list[int]
    flags: int
    ticks: int
    boot: int
    device_time: int | None
    press_ms: int
    time_source: str  # ticks (corrected from the HELLO), device_clock, arrival


@dataclass
class CommitResult:
    ack: int | None = None  # highest seq durably stored (new or already present)
    stored: int = 0
    duplicates: int = 0
    blocked: int = 0
    verdicts: list[tuple[int, Verdict]] = field(default_factory=list)
    rated_invites: list[int] = field(default_factory=list)


def _invite(store: Store, invite_id: int) -> InviteView | None:
    row = store.one(
        "SELECT i.*, c.state AS case_state FROM invites i JOIN cases c ON c.case_no = i.case_no"
        " WHERE i.invite_id = ?",
        invite_id,
    )
    if row is None:
        return None
    return InviteView(
        invite_id=row["invite_id"],
        case_no=row["case_no"],
        window_id=row["window_id"],
        staff_id=row["staff_id"],
        opened_ms=row["opened_ms"],
        deadline_ms=row["deadline_ms"],
        closed_ms=row["closed_ms"],
        close_reason=row["close_reason"],
        counted=row["counted_seq"] is not None,
        case_state=CaseState(row["case_state"]),
    )


def commit_ratings(
    store: Store, hall: Hall, *, device_id: str, ratings: list[Incoming], now_ms: int
) -> CommitResult:
    result = CommitResult()
    with store.tx() as c:
        dev = store.one("SELECT window_id FROM devices WHERE device_id = ?", device_id)
        window_id = dev["window_id"] if dev is not None else None
        win = (
            store.one("SELECT staff_id FROM windows WHERE window_id = ?", window_id)
            if window_id
            else None
        )
        for r in ratings:
            if store.one("SELECT 1 FROM ratings WHERE device_id = ? AND seq = ?", device_id, r.seq):
                result.duplicates += 1
                result.ack = r.seq
                continue
            if not outbox.has_room(store, hall.outbox):
                result.blocked = len(ratings) - ratings.index(r)
                store.bump("outbox_blocked", result.blocked)
                break
            invite = _invite(store, r.invite_id) if r.invite_id is not None else None
            press = Press(r.invite_id, r.flags, r.press_ms, window_id)
            verdict = judge(press, invite, fast_press_ms=hall.policy.fast_press_ms)
            case: dict[str, Any] | None = None
            staff_id = win["staff_id"] if win is not None else None
            if verdict.bound and invite is not None:
                row = store.one("SELECT * FROM cases WHERE case_no = ?", invite.case_no)
                case = dict(row) if row is not None else None
                staff_id = invite.staff_id
            c.execute(
                "INSERT INTO ratings (device_id, seq, level, reasons, flags, binding, too_fast,"
                " invite_id, case_no, window_id, staff_id, press_ms, time_source, received_ms,"
                " boot, ticks, device_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    device_id,
                    r.seq,
                    r.level,
                    json.dumps(r.reasons),
                    r.flags,
                    verdict.binding.value,
                    int(verdict.too_fast),
                    r.invite_id,
                    case["case_no"] if case else None,
                    window_id,
                    staff_id,
                    r.press_ms,
                    r.time_source,
                    now_ms,
                    r.boot,
                    r.ticks,
                    r.device_time,
                ),
            )
            if verdict.case_event is not None and invite is not None and case is not None:
                state = next_state(invite.case_no, CaseState(case["state"]), verdict.case_event)
                c.execute(
                    "UPDATE cases SET state = ?, closed_ms = ? WHERE case_no = ?",
                    (state.value, now_ms, invite.case_no),
                )
                c.execute(
                    "UPDATE invites SET counted_device = ?, counted_seq = ? WHERE invite_id = ?",
                    (device_id, r.seq, invite.invite_id),
                )
                if invite.closed_ms is None:
                    close_rated_invite(store, hall, invite_id=invite.invite_id, now_ms=now_ms)
                result.rated_invites.append(invite.invite_id)
            outbox.enqueue(
                store,
                kind="rating",
                key=f"device:{device_id}:{r.seq}",
                body=rating_item(
                    hall_id=hall.hall_id,
                    device_id=device_id,
                    seq=r.seq,
                    level=r.level,
                    reasons=r.reasons,
                    flags=r.flags,
                    binding=verdict.binding,
                    press_ms=r.press_ms,
                    offset_min=hall.offset_min,
                    window_id=window_id,
                    staff_id=staff_id,
                    case=case,
                    invited_ms=invite.opened_ms if invite else None,
                ),
                now_ms=now_ms,
                limits=hall.outbox,
            )
            store.bump(f"ratings.{verdict.binding.value}")
            result.stored += 1
            result.ack = r.seq
            result.verdicts.append((r.seq, verdict))
        if result.ack is not None:
            c.execute(
                "UPDATE devices SET committed_seq = max(committed_seq, ?) WHERE device_id = ?",
                (result.ack, device_id),
            )
        if result.duplicates:
            store.bump("ratings_duplicate", result.duplicates)
    return result


def record_gap(store: Store, *, device_id: str, first: int, last: int, now_ms: int) -> None:
    """Ratings first..last will never arrive (the device's outbox dropped them): say so."""
    with store.tx() as c:
        c.execute(
            "INSERT OR IGNORE INTO gaps (device_id, first, last, at_ms) VALUES (?, ?, ?, ?)",
            (device_id, first, last, now_ms),
        )
        c.execute(
            "UPDATE devices SET committed_seq = max(committed_seq, ?) WHERE device_id = ?",
            (last, device_id),
        )
        store.bump("ratings_lost_in_gaps", last - first + 1)


def count(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM ratings") or 0)


def signals(store: Store, *, since_ms: int = 0, fast_press_ms: int | None = None) -> dict[str, Any]:
    """Fraud and coverage signals per window (DOMAIN.md), since since_ms."""
    windows: dict[str, dict[str, Any]] = {}

    def w(window_id: str | None) -> dict[str, Any]:
        key = window_id or "-"
        if key not in windows:
            windows[key] = {
                "window_id": window_id,
                "cases": 0,
                "finished": 0,
                "invited": 0,
                "rated": 0,
                "cancelled": 0,
                "presses": 0,
                "unsolicited": 0,
                "too_fast": 0,
                "repeat": 0,
                "paused": 0,
                "late": 0,
            }
        return windows[key]

    for r in store.all(
        "SELECT c.window_id, count(*) AS cases, count(c.finished_ms) AS finished,"
        " sum(c.state = 'rated') AS rated, sum(c.state = 'cancelled') AS cancelled,"
        " sum(EXISTS (SELECT 1 FROM invites i WHERE i.case_no = c.case_no"
        "             AND i.delivered_ms IS NOT NULL)) AS invited"
        " FROM cases c WHERE c.opened_ms >= ? GROUP BY c.window_id",
        since_ms,
    ):
        d = w(r["window_id"])
        for k in ("cases", "finished", "rated", "cancelled", "invited"):
            d[k] = int(r[k] or 0)
    for r in store.all(
        "SELECT window_id, binding, count(*) AS n, sum(too_fast) AS fast FROM ratings"
        " WHERE press_ms >= ? GROUP BY window_id, binding",
        since_ms,
    ):
        d = w(r["window_id"])
        n = int(r["n"])
        d["presses"] += n
        d["too_fast"] += int(r["fast"] or 0)
        if r["binding"] in UNSOLICITED:
            d["unsolicited"] += n
        elif r["binding"] in ("repeat", "paused"):
            d[r["binding"]] += n
        elif r["binding"] in ("expired", "cancelled", "superseded"):
            d["late"] += n
    for d in windows.values():
        cases = d["cases"]
        d["invite_rate"] = round(d["invited"] / cases, 4) if cases else None
        d["active_rating_rate"] = round(d["rated"] / cases, 4) if cases else None
        d["rarely_invited"] = bool(
            cases >= RARELY_INVITED_MIN_CASES and d["invited"] < RARELY_INVITED_SHARE * cases
        )
    staff = [
        dict(r)
        for r in store.all(
            "SELECT staff_id, window_id, count(*) AS unsolicited FROM ratings"
            " WHERE press_ms >= ? AND binding IN (?, ?, ?) GROUP BY staff_id, window_id"
            " ORDER BY unsolicited DESC",
            since_ms,
            *UNSOLICITED,
        )
    ]
    return {
        "since_ms": since_ms,
        "windows": sorted(windows.values(), key=lambda d: d["window_id"] or ""),
        "unsolicited_by_staff": staff,
        "thresholds": {
            "fast_press_ms": fast_press_ms,
            "rarely_invited_min_cases": RARELY_INVITED_MIN_CASES,
            "rarely_invited_share": RARELY_INVITED_SHARE,
        },
    }
