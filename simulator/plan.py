"""The hall as a discrete-event simulation: a Scenario and a seed become the day's events.

Strategy: pure and seedable. Each window is a single-server FIFO queue (叫号 at one counter)
with Poisson arrivals during its shifts; the model runs on simulated seconds, never reads a
clock and draws from one ``random.Random`` per window seeded from ``(seed, window id)``, so
the same seed gives the same event log byte for byte, and adding a window does not change
the others. The result is a list of PlanEvents ordered by time: what the queue system tells
the agent (sign-in/out, pause/resume, cases opened and finished) and what people do at the
counter (presses, phone QR ratings, walking away). simulator.engine executes them against a
running agent; this module knows nothing about HTTP or devices.

Where an event is placed so its outcome is certain:
- a citizen's presses come after the finish that invites them and before the next case is
  opened (the citizen leaves the counter after rating), so they are the case's rating;
- a forgotten invite (DOMAIN.md: staff not inviting) finishes the case only after the
  citizen has left, before the next case is opened or the window paused; nobody presses;
- a self-rating (工作人员自我评价) is moved to the next moment the window's evaluator has
  no open invite (the last invite was rated, no break), so the device never counts it for
  a case; if no such moment comes before the shift ends, it is dropped. The device sends it
  unsolicited, or as a repeat of the last rated invite while that invite's deadline runs
  (simulator.engine waits a little for it).
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.scenario import BAD_LEVELS, Distribution, Scenario, Shift, Window

SELF_MARGIN_S = 2.0  # a self-press keeps this far from the next invite (ordering on the wire)
THANKS_GUARD_S = 4.0  # after a citizen's last press, before a self-press (its thanks screen)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


@dataclass(frozen=True)
class PlanEvent:
    t: float  # simulated seconds after opening (millisecond resolution)
    window_id: str
    kind: str  # sign_in sign_out pause resume open_case finish_case press phone_qr walk_away left
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"t": self.t, "window": self.window_id, "kind": self.kind, **self.data},
            ensure_ascii=False,
            sort_keys=True,
        )


def service_time(rng: random.Random, d: Distribution) -> float:
    """One service time in seconds from the scenario's distribution, clipped to [min, max]."""
    if d.kind == "exponential":
        v = rng.expovariate(1.0 / d.mean_s)
    elif d.kind == "lognormal":
        sigma2 = math.log(1.0 + (d.sd_s / d.mean_s) ** 2)
        v = rng.lognormvariate(math.log(d.mean_s) - sigma2 / 2.0, math.sqrt(sigma2))
    elif d.kind == "uniform":
        half = d.sd_s * math.sqrt(3.0)
        v = rng.uniform(d.mean_s - half, d.mean_s + half)
    else:
        v = d.mean_s
    return min(max(v, d.min_s), d.max_s)


def poisson_times(
    rng: random.Random, rate_per_hour: float, start: float, end: float
) -> list[float]:
    """Arrival times of a Poisson process on [start, end)."""
    out: list[float] = []
    if rate_per_hour <= 0:
        return out
    t = start
    while True:
        t += rng.expovariate(rate_per_hour / 3600.0)
        if t >= end:
            return out
        out.append(t)


class _WindowModel:
    """One window's day: its queue, its staff's shifts, what happens at its counter."""

    def __init__(self, sc: Scenario, window: Window, seed: int) -> None:
        self.sc = sc
        self.w = window
        self.rng = random.Random(f"{seed}/{window.window_id}")
        self.events: list[tuple[float, int, str, dict[str, Any]]] = []
        self.n_case = 0
        # Intervals in which the window's evaluator may show an open invite or is paused.
        self.busy: list[tuple[float, float]] = []
        self.invite_since: float | None = None  # an invite nobody closed, since then
        self.t_free = 0.0  # when the counter can call the next number
        self.signed_out = 0.0  # the last sign-out: the next shift signs in after it

    def emit(self, t: float, kind: str, **data: Any) -> None:
        self.events.append((round(t, 3), len(self.events), kind, data))

    def finish(self, t: float, case_no: str, *, late: bool) -> None:
        if self.invite_since is not None:  # the next invite supersedes the open one
            self.busy.append((self.invite_since, t))
        self.emit(t, "finish_case", case_no=case_no, late=late)
        self.invite_since = t

    def run(self) -> list[PlanEvent]:
        for shift in self.w.shifts:
            self.shift(shift)
        if self.invite_since is not None:
            self.busy.append((self.invite_since, math.inf))
        self.place_self_ratings()
        self.events.sort(key=lambda e: (e[0], e[1]))
        return [PlanEvent(t, self.w.window_id, kind, data) for t, _, kind, data in self.events]

    def shift(self, s: Shift) -> None:
        sc, rng = self.sc, self.rng
        rate = self.w.rate_per_hour if self.w.rate_per_hour is not None else sc.rate_per_hour
        arrivals = poisson_times(rng, rate, s.start_s, s.end_s)
        forget = s.forget_invite if s.forget_invite is not None else sc.staff.forget_invite
        # A shift that ran over (the last case took longer) delays the handover.
        t = max(s.start_s, self.signed_out)
        self.emit(t, "sign_in", staff_id=s.staff_id, name=s.name, number=s.number)
        breaks = list(s.breaks)
        late: tuple[float, str] | None = None  # a forgotten case, finished later
        qi = 0
        while True:
            nxt = max(t, arrivals[qi]) if qi < len(arrivals) else None
            if breaks and (nxt is None or breaks[0].start_s <= nxt):
                b = breaks.pop(0)
                p = max(t, b.start_s)
                if p >= s.end_s:
                    continue
                if late is not None:  # the batch of forgotten cases is finished before the break
                    self.finish(min(late[0], p), late[1], late=True)
                    late = None
                resume = min(p + b.minutes * 60.0, s.end_s)
                self.emit(p, "pause", reason="休息")
                self.emit(resume, "resume")
                self.busy.append((p, resume))
                t = resume
                continue
            if nxt is None or nxt >= s.end_s:
                break
            if late is not None:
                self.finish(min(late[0], nxt), late[1], late=True)
                late = None
            late = self.serve(s, nxt, arrivals[qi], forget)
            qi += 1
            t = self.t_free
        end = max(t, s.end_s)
        if late is not None:
            self.finish(min(late[0], end), late[1], late=True)
        if qi < len(arrivals):
            self.emit(end, "left", waiting=len(arrivals) - qi)
        self.emit(end, "sign_out", staff_id=s.staff_id)
        self.signed_out = end

    def serve(
        self, s: Shift, t_open: float, arrived: float, forget: float
    ) -> tuple[float, str] | None:
        sc, rng = self.sc, self.rng
        self.n_case += 1
        case_no = f"{sc.case_prefix}-{self.w.window_id}-{self.n_case:05d}"
        item = rng.choices(sc.items, weights=[i.weight for i in sc.items])[0]
        legal = rng.random() < sc.applicant_legal_entity
        applicant = rng.choice(_SURNAMES) + "".join(
            rng.choice(_GIVEN) for _ in range(rng.randint(1, 2))
        )
        phone = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        self.emit(
            t_open,
            "open_case",
            case_no=case_no,
            staff_id=s.staff_id,
            item_code=item.code,
            item_name=item.name,
            dept_code=item.dept_code,
            applicant_type="legal_entity" if legal else "person",
            applicant_name=applicant,
            applicant_phone=phone,
            waited_s=round(t_open - arrived, 3),
        )
        t_end = t_open + service_time(rng, sc.service)
        self.t_free = t_end + sc.call_gap_s
        r = sc.rating
        if rng.random() < forget:
            self.emit(t_end, "walk_away", case_no=case_no, reason="not_invited")
            return (t_end + rng.uniform(*sc.staff.late_finish_s), case_no)
        self.finish(t_end, case_no, late=False)
        u = rng.random()
        delay = rng.uniform(*r.press_delay_s)
        if u < r.no_rating:
            self.emit(t_end + delay, "walk_away", case_no=case_no, reason="no_rating")
            return None
        level = rng.choices(list(r.levels), weights=list(r.levels.values()))[0]
        reasons = self.reasons(level)
        if u < r.no_rating + r.phone_qr:
            self.emit(t_end + delay, "phone_qr", case_no=case_no, level=level, reasons=reasons)
            return None
        t_press = t_end + delay
        self.emit(
            t_press,
            "press",
            who="citizen",
            role="first",
            case_no=case_no,
            level=level,
            reasons=reasons,
        )
        last = t_press
        if rng.random() < r.repeat_press:
            for _ in range(rng.randint(1, 2)):
                last = last + rng.uniform(*r.repeat_delay_s)
                again = rng.choices(list(r.levels), weights=list(r.levels.values()))[0]
                self.emit(
                    last,
                    "press",
                    who="citizen",
                    role="repeat",
                    case_no=case_no,
                    level=again,
                    reasons=self.reasons(again),
                )
        # The device closed the invite at the first press; the window is quiet after thanks.
        assert self.invite_since is not None
        self.busy.append((self.invite_since, last + THANKS_GUARD_S))
        self.invite_since = None
        self.t_free = max(self.t_free, last + 1.0)
        return None

    def reasons(self, level: int) -> list[int]:
        if level not in BAD_LEVELS:
            return []
        lo, hi = self.sc.rating.reasons_per_bad
        return sorted(self.rng.sample(self.sc.rating.reasons, self.rng.randint(lo, hi)))

    def place_self_ratings(self) -> None:
        """Staff self-presses (fraud pattern), moved to moments without an open invite."""
        busy = sorted(self.busy)
        for s in self.w.shifts:
            rate = s.self_rating_per_hour
            if rate is None:
                rate = self.sc.staff.self_rating_per_hour
            for t in poisson_times(self.rng, rate, s.start_s, s.end_s):
                at = _first_free(busy, t, SELF_MARGIN_S)
                if at + SELF_MARGIN_S < s.end_s:
                    self.emit(
                        at,
                        "press",
                        who="staff",
                        role="self",
                        case_no=None,
                        level=1,
                        reasons=[],
                        staff_id=s.staff_id,
                    )


def _first_free(busy: list[tuple[float, float]], t: float, margin: float) -> float:
    """The first time >= t at least `margin` away from every busy interval."""
    moved = True
    while moved:
        moved = False
        for a, b in busy:
            if a - margin < t < b + margin:
                t = b + margin
                moved = True
    return t


def plan(sc: Scenario, seed: int | None = None) -> list[PlanEvent]:
    """The day's events for a scenario, ordered by time; same (scenario, seed) -> same list."""
    s = sc.seed if seed is None else seed
    order = {w.window_id: i for i, w in enumerate(sc.windows)}
    events: list[PlanEvent] = []
    for w in sc.windows:
        events.extend(_WindowModel(sc, w, s).run())
    # stable: within a window the model's own order is kept
    events.sort(key=lambda e: (e.t, order[e.window_id]))
    return events


def summary(events: list[PlanEvent]) -> dict[str, Any]:
    """Counts a person can check a plan against (hcp sim scenario --check)."""
    kinds = Counter(e.kind for e in events)
    presses = [e for e in events if e.kind == "press"]
    roles = Counter(str(e.data["role"]) for e in presses)
    levels = Counter(int(e.data["level"]) for e in presses if e.data["role"] == "first")
    walk = Counter(str(e.data["reason"]) for e in events if e.kind == "walk_away")
    return {
        "events": len(events),
        "cases": kinds["open_case"],
        "finished": kinds["finish_case"],
        "presses_first": roles["first"],
        "presses_repeat": roles["repeat"],
        "presses_self": roles["self"],
        "phone_qr": kinds["phone_qr"],
        "no_rating": walk["no_rating"],
        "not_invited": walk["not_invited"],
        "left_unserved": sum(int(e.data["waiting"]) for e in events if e.kind == "left"),
        "pauses": kinds["pause"],
        "levels": {lv: levels[lv] for lv in sorted(levels)},
        "end_s": max((e.t for e in events), default=0.0),
    }
