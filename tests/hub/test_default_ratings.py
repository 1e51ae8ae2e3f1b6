"""The default-rating job and its lease, on SQLite and a real PostgreSQL.

Dates: 2026-03-02 is a Monday with no holiday near it. A case finished that day at 10:00
China time: Mangshi's 5 working days (the service day does not count) are Mar 3, 4, 5, 6
and 9, so the default is due at the end of Mar 9 = 2026-03-10 00:00 China time; Guangdong's
7 natural days end on Mar 9 too (no roll to a working day), due at the same instant.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.db.engine import make_engine
from hub.db.schema import job_leases, ratings
from hub.ingest.models import Source
from hub.ingest.service import ingest_case_events, ingest_ratings
from hub.jobs import leases
from hub.jobs.default_ratings import LEASE, due_at, origin_id, run_once
from hub.policy import PROFILES_DIR, PolicyLoader, load_profile
from hub.workdays import WorkCalendar
from tests.hub.conftest import HubDb, fresh_database, make_hall
from tests.hub.helpers import DEPT, HALL, event, rating

CST = timezone(timedelta(hours=8))
FINISHED = "2026-03-02T10:00:00+08:00"
DUE = datetime(2026, 3, 10, 0, 0, tzinfo=CST)
CALENDAR = WorkCalendar()
MANGSHI = load_profile("mangshi")


def add_cases(db: HubDb, *case_nos: str, cancelled: tuple[str, ...] = ()) -> None:
    events: list[Any] = []
    for c in case_nos:
        events += [
            event(
                f"o-{c}",
                "case_opened",
                case_no=c,
                dept_code=DEPT,
                window_id="w1",
                staff_id="s1",
                item_code="330203-000-XK-001",
                occurred_at=FINISHED,
            ),
            event(f"f-{c}", "case_finished", case_no=c, occurred_at=FINISHED),
        ]
        if c in cancelled:
            events.append(event(f"x-{c}", "case_cancelled", case_no=c, occurred_at=FINISHED))
    with db.engine.begin() as connection:
        result = ingest_case_events(
            connection=connection, hall_id=HALL, items_in=events, now=DUE, actor="test"
        )
    assert result.counts["accepted"] == len(events)


def press(db: HubDb, n: int, case_no: str, rated_at: str = FINISHED) -> None:
    with db.engine.begin() as connection:
        result = ingest_ratings(
            connection=connection,
            hall_id=HALL,
            items_in=[rating(n, case_no=case_no, rated_at=rated_at, invited_at=None)],
            now=DUE,
            actor="test",
        )
    assert result.counts["accepted"] == 1


def defaults(db: HubDb) -> list[Any]:
    with db.engine.connect() as connection:
        return list(
            connection.execute(
                select(ratings).where(ratings.c.source == "default_rule").order_by(ratings.c.id)
            )
        )


def test_due_instant_per_profile() -> None:
    finished = datetime.fromisoformat(FINISHED)
    assert due_at(finished, profile=MANGSHI, calendar=CALENDAR) == DUE
    assert due_at(finished, profile=load_profile("guangdong-2019"), calendar=CALENDAR) == DUE
    assert due_at(finished, profile=load_profile("ningbo"), calendar=CALENDAR) is None


def test_default_rating_given_once_when_due(db: HubDb) -> None:
    make_hall(db.engine)
    add_cases(db, "C1", "C2", "C3", "C4", cancelled=("C4",))
    press(db, 1, "C2")  # C2 has a real rating
    before = run_once(
        engine=db.engine, profile=MANGSHI, calendar=CALENDAR, now=DUE - timedelta(minutes=1)
    )
    assert before.held and before.due == 0 and defaults(db) == []
    result = run_once(engine=db.engine, profile=MANGSHI, calendar=CALENDAR, now=DUE)
    assert (result.due, result.accepted, result.rejected) == (2, 2, 0), result.as_json()
    stored = defaults(db)
    assert [r.case_no for r in stored] == ["C1", "C3"]  # not C2 (rated), not C4 (cancelled)
    first = stored[0]
    assert first.level == 3  # 基本满意
    assert (first.channel, first.pf, first.assess_number) == ("system_default", 7, 1)
    assert first.rated_at == DUE.astimezone(UTC)
    assert first.rating_key == f"default_rule:{HALL}:default:C1"
    assert (first.dept_code, first.window_id, first.staff_id) == (DEPT, "w1", "s1")
    # Again, later: nothing new (idempotent), and the stored rows are unchanged.
    again = run_once(
        engine=db.engine, profile=MANGSHI, calendar=CALENDAR, now=DUE + timedelta(days=1)
    )
    assert (again.candidates, again.accepted) == (0, 0)
    assert defaults(db) == stored


def test_same_default_built_twice_is_a_duplicate(db: HubDb) -> None:
    # Two runs that both saw C1 unrated (e.g. a run that lost its lease mid-way): the second
    # item is identical, so the unique identity makes it a duplicate, never a second rating.
    make_hall(db.engine)
    add_cases(db, "C1")
    from hub.jobs import default_ratings as job

    (case,) = job._unrated_cases(db.engine, DUE)
    item = job._item(case, DUE, level=3, pf=7)
    statuses = []
    for _ in range(2):
        with db.engine.begin() as connection:
            result = ingest_ratings(
                connection=connection,
                hall_id=HALL,
                items_in=[item],
                now=DUE,
                actor="test",
                sources=frozenset({Source.DEFAULT_RULE}),
            )
        statuses.append(result.outcomes[0].status)
    assert statuses == ["accepted", "duplicate"]
    assert len(defaults(db)) == 1


def test_supplementary_window_real_rating_wins(db: HubDb, tmp_path: Path) -> None:
    # A profile with Mangshi's default (5 working days) and a 7-working-day late-rating
    # window: the default waits for the window (Mar 3–6, 9, 10, 11 → due 2026-03-12 00:00).
    (tmp_path / "test-late.toml").write_text(
        'schema = 1\nname = "test-late"\nversion = "1"\nextends = "mangshi"\n'
        'title = { zh = "测试", en = "test" }\nsources = ["test"]\n'
        '[rating]\nsupplementary_window = "7 working days"\n',
        "utf-8",
    )
    profile = PolicyLoader(profile_dirs=(PROFILES_DIR, tmp_path)).profile("test-late")
    window_end = datetime(2026, 3, 12, 0, 0, tzinfo=CST)
    finished = datetime.fromisoformat(FINISHED)
    assert due_at(finished, profile=profile, calendar=CALENDAR) == window_end
    make_hall(db.engine)
    add_cases(db, "C1", "C2")
    # Mangshi alone would give the default at DUE; this profile does not yet.
    early = run_once(engine=db.engine, profile=profile, calendar=CALENDAR, now=DUE)
    assert early.due == 0
    press(db, 7, "C1", rated_at="2026-03-11T16:00:00+08:00")  # a late rating, inside
    late = run_once(engine=db.engine, profile=profile, calendar=CALENDAR, now=window_end)
    assert [r.case_no for r in defaults(db)] == ["C2"]  # C1's real rating won
    assert late.accepted == 1


def test_lease_take_renew_expire(db: HubDb) -> None:
    now = DUE
    ttl = timedelta(minutes=5)
    with db.engine.begin() as c:
        assert leases.take(c, name=LEASE, holder="a", now=now, ttl=ttl)
    with db.engine.begin() as c:
        assert not leases.take(c, name=LEASE, holder="b", now=now + timedelta(minutes=1), ttl=ttl)
        assert leases.take(c, name=LEASE, holder="a", now=now + timedelta(minutes=4), ttl=ttl)
    with db.engine.begin() as c:  # renewed to 4 + 5 = 9 minutes: still a's at 8
        assert not leases.take(c, name=LEASE, holder="b", now=now + timedelta(minutes=8), ttl=ttl)
        assert leases.take(c, name=LEASE, holder="b", now=now + timedelta(minutes=9), ttl=ttl)
    with db.engine.begin() as c:
        leases.release(c, name=LEASE, holder="a", now=now + timedelta(minutes=10))  # not a's
        assert c.execute(select(job_leases.c.holder)).scalar_one() == "b"
        leases.release(c, name=LEASE, holder="b", now=now + timedelta(minutes=10))
        assert leases.take(c, name=LEASE, holder="a", now=now + timedelta(minutes=10), ttl=ttl)


def test_concurrent_processes_one_lease_one_default_each(db: HubDb) -> None:
    """Four workers, each with its own engine (own connections, as separate hub processes
    have), race for the lease and run the job: each case gets exactly one default."""
    make_hall(db.engine)
    cases = [f"C{i:03d}" for i in range(40)]
    add_cases(db, *cases)
    barrier = threading.Barrier(4)
    takes: list[bool] = []
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        engine = make_engine(db.url)
        try:
            barrier.wait()
            with engine.begin() as c:
                takes.append(
                    leases.take(
                        c, name="race", holder=f"w{slot}", now=DUE, ttl=timedelta(minutes=5)
                    )
                )
            barrier.wait()
            results.append(
                run_once(
                    engine=engine, profile=MANGSHI, calendar=CALENDAR, now=DUE, holder=f"w{slot}"
                )
            )
        except BaseException as e:
            errors.append(e)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(takes) == [False, False, False, True]  # exactly one took the race lease
    assert sum(r.accepted for r in results) == len(cases)
    assert sorted(r.case_no for r in defaults(db)) == cases


def test_origin_id_for_any_case_number() -> None:
    assert origin_id("NB-2026-000001") == "default:NB-2026-000001"
    odd = origin_id("宁波/2026/第1号")
    assert odd.startswith("default:sha256:") and len(odd) <= 64
    assert odd == origin_id("宁波/2026/第1号")  # stable: the identity of the default


def test_two_serve_processes_run_the_job_once_each_case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two real ``hcp hub serve --policy mangshi --default-ratings`` processes over one PostgreSQL
    (the production setting; threads with separate engines cover SQLite above), each running
    the job every 0.3 s: every due case gets exactly one default."""
    from tests.hub.test_cli_hub import HubProcess

    databases = fresh_database(request, "postgresql", tmp_path)
    url = next(databases)
    db = HubDb("postgresql", url, make_engine(url))

    def cleanup() -> None:
        db.engine.dispose()
        next(databases, None)

    request.addfinalizer(cleanup)
    make_hall(db.engine)
    # Finished 20 days ago: Mangshi's 5 working days have passed whatever the holidays.
    finished = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    events: list[Any] = []
    for c in ("S1", "S2", "S3"):
        events += [
            event(f"o-{c}", "case_opened", case_no=c, dept_code=DEPT, occurred_at=finished),
            event(f"f-{c}", "case_finished", case_no=c, occurred_at=finished),
        ]
    with db.engine.begin() as connection:
        ingest_case_events(
            connection=connection, hall_id=HALL, items_in=events, now=DUE, actor="test"
        )
    args = ("--policy", "mangshi", "--default-ratings", "--default-ratings-interval", "0.3")
    hubs = [HubProcess(db.url, *args), HubProcess(db.url, *args)]
    try:
        for hub in hubs:
            hub.wait_ready()
        deadline = time.monotonic() + 60
        while len(defaults(db)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a few more runs of both schedulers: nothing more may appear
    finally:
        for hub in hubs:
            hub.stop()
    assert sorted(r.case_no for r in defaults(db)) == ["S1", "S2", "S3"]
    with db.engine.connect() as connection:
        holder = connection.execute(select(job_leases.c.holder)).scalar_one()
    assert holder.count(":") >= 2  # host:pid:random of one of the processes
