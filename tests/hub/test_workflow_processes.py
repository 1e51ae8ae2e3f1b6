"""Two hub processes over one database never open two orders for one 差评: both run the
sweep at the same instant over the same ratings (real processes; SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import func, select

from hub.db.schema import work_order_steps, work_orders
from hub.ingest.service import ingest_ratings
from tests.hub.conftest import Hall, HubDb
from tests.hub.test_workflow_support import NOW, bad

ROOT = Path(__file__).resolve().parents[2]
RATINGS = 150

SWEEPER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from hub.db.engine import make_engine
    from hub.workflow.service import WorkflowConfig, open_missing

    url, start = sys.argv[1], float(sys.argv[2])
    config = WorkflowConfig.default()
    engine = make_engine(url)
    with engine.connect():
        pass  # connect before the start line, so both race on the sweep itself
    time.sleep(max(0.0, start - time.time()))
    opened = 0
    for _ in range(3):
        with engine.begin() as connection:
            opened += len(open_missing(connection=connection, config=config, now=datetime.now(UTC)))
    print(opened)
    """
)


def test_two_processes_sweep_at_once(db: HubDb, hall: Hall) -> None:
    with db.engine.begin() as c:  # stored without the ingest hook: the sweep must open them
        ingest_ratings(
            connection=c,
            hall_id=hall.hall_id,
            items_in=[bad(n) for n in range(1, RATINGS + 1)],
            now=NOW,
            actor="test",
        )
    start = time.time() + 2.0  # both interpreters are up and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SWEEPER, db.url, str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    opened = [int(out.strip()) for out, _ in results]
    assert sum(opened) == RATINGS  # each order opened by exactly one process
    with db.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(work_orders)).scalar_one() == RATINGS
        assert (
            c.execute(select(func.count(func.distinct(work_orders.c.rating_id)))).scalar_one()
            == RATINGS
        )
        opens = c.execute(
            select(func.count())
            .select_from(work_order_steps)
            .where(work_order_steps.c.action == "open")
        ).scalar_one()
    assert opens == RATINGS  # and its opening step written once


def test_two_people_act_on_one_order_at_once(db: HubDb, hall: Hall) -> None:
    """The move is a compare-and-set on the order's version: of two simultaneous callbacks
    (each on its own connection) exactly one succeeds; the other is refused unchanged."""
    import threading

    from hub.workflow import service
    from hub.workflow.machine import Action, WorkflowError
    from tests.hub.test_workflow_support import NINGBO, PRINCIPALS, add_users, ingest

    add_users(db.engine)
    ingest(db.engine, [bad(1)], NOW)
    with db.engine.connect() as c:
        order_id = c.execute(select(work_orders.c.id)).scalar_one()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def callback(who: str) -> None:
        barrier.wait()
        try:
            with db.engine.begin() as c:
                service.act(
                    connection=c, order_id=order_id, action=Action.CALLBACK,
                    who=PRINCIPALS[who], fields={"reason": f"{who} 已回访"}, config=NINGBO,
                    now=NOW, expected_version=1,
                )  # fmt: skip
            outcomes.append("ok")
        except WorkflowError as e:
            outcomes.append(e.code)

    threads = [threading.Thread(target=callback, args=(w,)) for w in ("handler", "hotline")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok", "workflow.version_conflict"]
    with db.engine.connect() as c:
        assert c.execute(select(work_orders.c.version)).scalar_one() == 2
        callbacks = c.execute(
            select(func.count())
            .select_from(work_order_steps)
            .where(work_order_steps.c.action == "callback")
        ).scalar_one()
    assert callbacks == 1
