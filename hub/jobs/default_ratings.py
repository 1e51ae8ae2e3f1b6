"""The default-rating job: a finished case with no rating after the policy period gets the
policy's default rating, once (issue 5, "Default ratings"; DOMAIN.md, "Time limits").

Strategy:
- Runs under the lease ``default_ratings`` (hub.jobs.leases): one hub process at a time.
- Candidates: cases finished (not cancelled) within LOOKBACK_DAYS, with no stored *case
  rating* (assess_number 1, not a repeat or unsolicited press; hub.metrics' rule). An
  excluded rating still blocks the default: the case was rated, and excluding that rating is
  a separate, audited decision, not a reason to invent a rating.
- When: the default is due at the end of the profile's period after the service (case
  completion) day (``DefaultRating.applies_from``, working or natural days as the profile
  says). If the profile also has a supplementary (late) rating window, the job waits until
  that window has closed too: a real rating that arrives inside the window therefore always
  wins, because no default exists yet while it may still come.
- How: the default is an ordinary rating item stored through ``hub.ingest.service`` (the same
  validation, reference rows, idempotent insert and audit as any rating) with source
  ``default_rule``, channel ``system_default`` (provincial ``pf`` code from the profile, 7),
  identity ``default_rule:<hall>:default:<case_no>``, and ``rated_at`` = the instant it
  became due, so two runs build the same item and the second is a duplicate.
- Never overriding: it only inserts, and only for cases without a case rating; ratings are
  immutable, so nothing it does can replace one. Each hall is its own transaction: one
  failing hall is logged and the job carries on (STYLE.md, scheduled jobs).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from hub.db.schema import cases
from hub.ingest.models import Source
from hub.ingest.service import ingest_ratings
from hub.jobs import leases
from hub.policy import Channel, Profile
from hub.workdays import CalendarError, WorkCalendar

log = logging.getLogger("hcp.hub.jobs.default_ratings")

LEASE = "default_ratings"
LEASE_TTL = timedelta(minutes=5)  # a run renews it per hall; a dead holder frees it in 5 min
# Cases finished longer ago than this are not looked at again: far beyond any default period
# (hub.policy MAX_LIMIT_DAYS) plus a supplementary window, and a hub that was down for weeks
# still catches up.
LOOKBACK_DAYS = 120
BATCH = 1000  # hub.ingest.models.MAX_ITEMS: one ingest call per hall and batch
ACTOR = "job:default_ratings"
DEFAULT_INTERVAL_S = 600  # hcp hub serve runs it every 10 minutes


@dataclass
class RunResult:
    held: bool  # False: another process holds the lease; nothing was done
    candidates: int = 0
    due: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed_halls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "candidates": self.candidates,
            "due": self.due,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "failed_halls": self.failed_halls,
            "errors": self.errors,
        }


def due_at(finished_at: datetime, *, profile: Profile, calendar: WorkCalendar) -> datetime | None:
    """When the default may be given for a case finished at ``finished_at`` (None: never)."""
    rule = profile.rating.default
    if rule is None:
        return None
    due = rule.applies_from(finished_at, calendar=calendar, rule=profile.day_count)
    window_end = profile.rating.supplementary_until(
        finished_at, calendar=calendar, rule=profile.day_count
    )
    return due if window_end is None else max(due, window_end)


def _unrated_cases(engine: Engine, now: datetime, lookback_days: int = LOOKBACK_DAYS) -> list[Any]:
    c = cases.c
    query = (
        select(
            c.hall_id,
            c.case_no,
            c.finished_at,
            c.item_code,
            c.item_name,
            c.dept_code,
            c.window_id,
            c.staff_id,
        )
        .where(
            c.finished_at.is_not(None),
            c.finished_at >= now - timedelta(days=lookback_days),
            c.finished_at < now,
            c.cancelled_at.is_(None),
            # no case rating, excluded ones included (ingest keeps this mark; hub.metrics)
            c.first_rated_at.is_(None),
        )
        .order_by(c.hall_id, c.case_no)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


_ORIGIN_SAFE = re.compile(r"^[A-Za-z0-9_.:-]{1,56}$")  # hub.ingest.models.OriginId, with "default:"


def origin_id(case_no: str) -> str:
    """The default rating's origin id: the case number when it fits the origin-id pattern,
    else a digest of it (case numbers may hold any character; origin ids may not)."""
    if _ORIGIN_SAFE.match(case_no):
        return f"default:{case_no}"
    return "default:sha256:" + hashlib.sha256(case_no.encode()).hexdigest()[:40]


def _item(case: Any, due: datetime, *, level: int, pf: int | None) -> dict[str, Any]:
    return {
        "source": Source.DEFAULT_RULE.value,
        "origin_id": origin_id(case.case_no),
        "hall_id": case.hall_id,
        "window_id": case.window_id,
        "staff_id": case.staff_id,
        "case_no": case.case_no,
        "item_code": case.item_code,
        "item_name": case.item_name,
        "dept_code": case.dept_code,
        "level": level,
        "channel": Channel.SYSTEM_DEFAULT.value,
        "pf": pf,
        "rated_at": due.astimezone(UTC).isoformat(),
    }


def _pf_code(profile: Profile) -> int | None:
    try:
        code = profile.channel_code("pf", Channel.SYSTEM_DEFAULT)
    except Exception:  # a profile without a pf map, or no code for system default
        return None
    return code if isinstance(code, int) else None


def run_once(
    *,
    engine: Engine,
    profile: Profile,
    calendar: WorkCalendar,
    now: datetime,
    holder: str | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> RunResult:
    """One pass: take the lease, give every due default, release the lease. Cases finished
    more than ``lookback_days`` before ``now`` are not looked at."""
    holder = holder or leases.new_holder()
    with engine.begin() as connection:
        if not leases.take(connection, name=LEASE, holder=holder, now=now, ttl=LEASE_TTL):
            return RunResult(held=False)
    result = RunResult(held=True)
    try:
        rule = profile.rating.default
        if rule is None:
            return result
        pf = _pf_code(profile)
        per_hall: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for case in _unrated_cases(engine, now, lookback_days):
            result.candidates += 1
            try:
                due = due_at(case.finished_at, profile=profile, calendar=calendar)
            except CalendarError as e:  # a year the calendar does not know: say so, skip
                result.errors.append(f"{case.hall_id}/{case.case_no}: {e}")
                log.warning("default rating: case %s/%s: %s", case.hall_id, case.case_no, e)
                continue
            if due is None or due > now:
                continue
            result.due += 1
            per_hall[case.hall_id].append(_item(case, due, level=int(rule.level), pf=pf))
        for hall_id, items in sorted(per_hall.items()):
            try:
                for start in range(0, len(items), BATCH):
                    with engine.begin() as connection:
                        if not leases.take(
                            connection, name=LEASE, holder=holder, now=now, ttl=LEASE_TTL
                        ):
                            result.errors.append("lease lost; stopping")
                            return result
                        batch = ingest_ratings(
                            connection=connection,
                            hall_id=hall_id,
                            items_in=items[start : start + BATCH],
                            now=now,
                            actor=ACTOR,
                            sources=frozenset({Source.DEFAULT_RULE}),
                        )
                    result.accepted += batch.counts.get("accepted", 0)
                    result.duplicate += batch.counts.get("duplicate", 0)
                    result.rejected += batch.counts.get("rejected", 0)
                    for outcome in batch.outcomes:
                        if outcome.error is not None:
                            result.errors.append(f"{outcome.key}: {outcome.error.code}")
            except Exception as e:  # one failing hall must not stop the others
                log.exception("default rating: hall %s failed", hall_id)
                result.failed_halls.append(hall_id)
                result.errors.append(f"{hall_id}: {type(e).__name__}: {e}")
        return result
    finally:
        with engine.begin() as connection:
            leases.release(connection, name=LEASE, holder=holder, now=now)


class Scheduler:
    """Runs the job every ``interval_s`` in a daemon thread (``hcp hub serve``). Every hub
    process may run one: the lease lets one of them work at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        profile: Profile,
        calendar: WorkCalendar,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.profile = profile
        self.calendar = calendar
        self.interval_s = interval_s
        self.clock = clock
        self.holder = leases.new_holder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="default-ratings", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = run_once(
                    engine=self.engine,
                    profile=self.profile,
                    calendar=self.calendar,
                    now=self.clock(),
                    holder=self.holder,
                )
                if result.held and (result.accepted or result.errors):
                    log.info("default ratings: %s", result.as_json())
            except Exception:  # the database may be down; try again next interval
                log.exception("default ratings: run failed")
            self._stop.wait(self.interval_s)


__all__ = [
    "DEFAULT_INTERVAL_S",
    "LEASE",
    "RunResult",
    "Scheduler",
    "due_at",
    "run_once",
]
