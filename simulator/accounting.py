"""End-to-end accounting: the agent's store against the simulator's ground truth.

Strategy: read the agent's SQLite store read-only (the agent keeps running; WAL readers do
not block it) and check, for one run's ground truth (simulator.engine.GroundTruth):

- every rating a device thanked a citizen for is in the store exactly once (its identity
  ``(device_id, seq)`` is the primary key), with the binding the device's view implies and,
  when bound, the right case, window and staff account;
- staff self-presses are recorded ``unsolicited`` and bound to no case;
- a case the staff forgot to invite, or whose citizen walked away or rated by phone, has no
  counted device rating;
- the store holds no rating from the run's devices that nobody pressed.

The result is counts plus a list of problems, each naming the press or case; ``ok`` is true
when there are none. The hub-side accounting (issue 7, under faults) extends this.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.engine import GroundTruth

SEQ_FLOOR_NONE = 0


@dataclass
class Accounting:
    thanked: int = 0
    found: int = 0
    bindings: Counter[str] = field(default_factory=Counter)
    cases_rated: int = 0
    cases_without_invite: int = 0
    extra_ratings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "thanked": self.thanked,
            "found": self.found,
            "bindings": dict(self.bindings),
            "cases_rated": self.cases_rated,
            "cases_without_invite": self.cases_without_invite,
            "extra_ratings": self.extra_ratings,
            "problems": self.problems,
            "ok": self.ok,
        }


def account(
    truth: GroundTruth, store_path: str | Path, *, since_seq: dict[str, int] | None = None
) -> Accounting:
    """Check the store at `store_path` against `truth`. `since_seq` gives, per device, the
    last seq before the run (ratings up to it are not the run's)."""
    db = sqlite3.connect(f"file:{Path(store_path)}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return _account(truth, db, since_seq or {})
    finally:
        db.close()


def _account(truth: GroundTruth, db: sqlite3.Connection, since: dict[str, int]) -> Accounting:
    acc = Accounting()
    pressed: set[tuple[str, int]] = set()
    for p in truth.presses:
        if not p.thanked or p.device_id is None or p.seq is None:
            continue
        acc.thanked += 1
        pressed.add((p.device_id, p.seq))
        who = f"{p.device_id}#{p.seq} ({p.who}/{p.role} at {p.window_id}, t={p.t:.1f})"
        row = db.execute(
            "SELECT binding, case_no, window_id, staff_id FROM ratings"
            " WHERE device_id = ? AND seq = ?",
            (p.device_id, p.seq),
        ).fetchone()
        if row is None:
            acc.problems.append(f"{who}: thanked but not in the agent's store")
            continue
        acc.found += 1
        acc.bindings[row["binding"]] += 1
        if row["binding"] != p.expect:
            acc.problems.append(f"{who}: recorded {row['binding']}, expected {p.expect}")
        if p.expect == "unsolicited":
            if row["case_no"] is not None:
                acc.problems.append(f"{who}: unsolicited but bound to case {row['case_no']}")
            continue
        if row["case_no"] != p.expect_case:
            acc.problems.append(f"{who}: bound to case {row['case_no']}, expected {p.expect_case}")
        if row["window_id"] != p.window_id:
            acc.problems.append(f"{who}: window {row['window_id']}, expected {p.window_id}")
        if row["staff_id"] != p.expect_staff:
            acc.problems.append(f"{who}: staff {row['staff_id']}, expected {p.expect_staff}")

    for case in truth.cases.values():
        counted = db.execute(
            "SELECT count(*) FROM ratings WHERE case_no = ? AND binding = 'counted'",
            (case.case_no,),
        ).fetchone()[0]
        if counted > 1:
            acc.problems.append(f"case {case.case_no}: {counted} counted ratings (one per case)")
        if counted:
            acc.cases_rated += 1
        if case.outcome == "not_invited":
            acc.cases_without_invite += 1
        if case.outcome in ("not_invited", "no_rating", "phone_qr") and counted:
            acc.problems.append(f"case {case.case_no}: {case.outcome}, yet a device rating counted")

    devices = {p.device_id for p in truth.presses if p.device_id is not None}
    for device_id in sorted(devices):
        rows = db.execute(
            "SELECT seq FROM ratings WHERE device_id = ? AND seq > ?",
            (device_id, since.get(device_id, SEQ_FLOOR_NONE)),
        ).fetchall()
        extra = [r["seq"] for r in rows if (device_id, r["seq"]) not in pressed]
        acc.extra_ratings += len(extra)
        if extra:
            acc.problems.append(f"{device_id}: ratings nobody pressed in this run: seq {extra[:5]}")
    return acc
