"""A busy hour at three windows against the REAL agent (``hcp agent run``, a subprocess),
with CPython device peers on real ptys: afterwards the agent's store matches the ground
truth press for press."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from simulator.accounting import account
from simulator.engine import Engine, SimClock
from simulator.plan import plan, summary
from tests.simulator.hall import AgentHall
from tests.simulator.scenarios import busy_hour

SIM_S = 2400.0


def test_every_thanked_press_is_bound_as_the_scenario_says(tmp_path: Path) -> None:
    sc = busy_hour()
    events = [e for e in plan(sc) if e.t < SIM_S]  # past the 09:30 shift handover
    planned = summary(events)
    assert planned["presses_self"] and planned["not_invited"] and planned["presses_repeat"]
    # A device takes presses after the first as repeats until the invite's deadline; a short
    # invite window lets the staff's self-presses come after it: unsolicited.
    hall = AgentHall(tmp_path, sc, invite_s=2)

    async def run() -> Engine:
        await hall.start()
        try:
            engine = Engine(
                sc, events, agent_url=hall.url, devices=hall.devices(), speed=None, tag="e2e"
            )
            report = await engine.run()
            assert report.api_refused == 0, engine.truth.api_errors[:3]
            assert report.events == len(events)
            return engine
        finally:
            await hall.stop()

    engine = asyncio.run(run())
    truth = engine.truth
    assert [p for p in truth.presses if p.note] == []
    acc = account(truth, hall.store_path)
    assert acc.ok, acc.problems[:10]
    assert acc.thanked == acc.found == len(truth.presses)
    # what the plan said, the agent recorded
    assert acc.bindings["counted"] == planned["presses_first"] == acc.cases_rated
    assert acc.bindings["repeat"] == planned["presses_repeat"]
    assert acc.bindings["unsolicited"] == planned["presses_self"]
    assert acc.cases_without_invite == planned["not_invited"]

    db = sqlite3.connect(hall.store_path)
    try:
        # self-presses: unsolicited, attributed to nobody's case
        rows = db.execute(
            "SELECT count(*), count(case_no) FROM ratings WHERE binding = 'unsolicited'"
        ).fetchone()
        assert rows == (planned["presses_self"], 0)
        # forgotten invites: those cases were finished but nobody rated them
        forgotten = [c.case_no for c in truth.cases.values() if c.outcome == "not_invited"]
        marks = ",".join("?" * len(forgotten))
        states = dict(
            db.execute(
                f"SELECT case_no, state FROM cases WHERE case_no IN ({marks})", forgotten
            ).fetchall()
        )
        assert set(states) == set(forgotten) and "rated" not in states.values()
        # 差评 carry their reasons
        bad = db.execute("SELECT reasons FROM ratings WHERE level >= 4").fetchall()
        assert bad and all(r[0] != "[]" for r in bad)

        # The accounting is no rubber stamp: lose a thanked rating, count a repeat.
        counted = next(p for p in truth.presses if p.expect == "counted")
        db.execute(
            "DELETE FROM ratings WHERE device_id = ? AND seq = ?", (counted.device_id, counted.seq)
        )
        db.execute("UPDATE ratings SET binding = 'counted' WHERE binding = 'repeat'")
        db.commit()
    finally:
        db.close()
    broken = account(truth, hall.store_path)
    assert any(f"#{counted.seq} " in p and "not in the agent's store" in p for p in broken.problems)
    assert any("recorded counted, expected repeat" in p for p in broken.problems)
    assert any("counted ratings (one per case)" in p for p in broken.problems)


def test_the_simulated_clock_runs_at_its_speed() -> None:
    async def measure() -> float:
        clock = SimClock(600.0)
        clock.start()
        await clock.until(120.0)  # two simulated minutes at 600x: 0.2 s of wall time
        return clock.now()

    reached = asyncio.run(measure())
    assert 120.0 <= reached < 120.0 + 600 * 0.5  # never early; late by at most 0.5 s of load
