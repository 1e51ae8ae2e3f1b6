"""Simulator benchmark: simulated-hall time against wall time, engine alone and with the agent.

    .venv/bin/python -m tests.bench.bench_simulator            # print the figures
    .venv/bin/python -m tests.bench.bench_simulator --write    # also update docs/performance.md
    .venv/bin/python -m tests.bench.bench_simulator --quick    # the first simulated hour only

The demo hall (simulator/scenarios/default.toml: 12 windows, 08:30-17:00, ~1,900 events).
Measured in one run:
- plan: the discrete-event model alone (simulator.plan), the whole day;
- engine alone (the baseline): the plan executed as fast as possible against an in-process
  HTTP transport that answers at once, no devices: the engine's own cost per event;
- with the real agent: ``hcp agent run`` as a subprocess with 12 CPython device peers on
  ptys, as fast as possible, then the accounting of every press against the agent's store
  (policy.invite_s = 2: a staff self-press waits for the last invite's deadline so that the
  device sends it unsolicited; with 60 s the run would mostly wait);
- with the real firmware: the same, the 12 devices MicroPython unix port processes clicked
  through their control channel (simulator.firmware);
- paced: the real agent again at speed 600 (one wall second = ten simulated minutes) for
  the first simulated half hour: how late events start against the simulated clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from protocol import messages as M
from simulator.accounting import account
from simulator.engine import Engine, RunReport
from simulator.firmware import FirmwareHall
from simulator.plan import plan
from simulator.scenario import Scenario, load_scenario
from tests.bench.report import write_block
from tests.simulator.hall import HALL_ID, AgentHall

DEFAULT = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "default.toml"
PACED_SPEED = 600.0
PACED_SIM_S = 1800.0
INVITE_S = 2  # the agent's invite window (wall s): self-presses wait for it (simulator.engine)


def bench_plan(sc: Scenario) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for _ in range(5):
        t = time.perf_counter()
        n = len(plan(sc))
        best = min(best, time.perf_counter() - t)
    return n, best


def _null_agent(sc: Scenario) -> httpx.MockTransport:
    invite = iter(range(1, 10**9))

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/api/v1/windows":
            return httpx.Response(200, json=[{"window_id": w.window_id} for w in sc.windows])
        if request.method == "GET":
            return httpx.Response(200, json=[])
        if path == "/api/v1/cases/finish":
            body = json.loads(request.content)
            return httpx.Response(200, json={"case_no": body["case_no"], "invite_id": next(invite)})
        return httpx.Response(201 if path == "/api/v1/cases" else 200, json={})

    return httpx.MockTransport(answer)


async def bench_engine_alone(sc: Scenario, duration: float | None) -> RunReport:
    events = plan(sc)
    engine = Engine(
        sc, events, agent_url="http://null", transport=_null_agent(sc), duration_s=duration
    )
    return await engine.run()


async def bench_agent(
    sc: Scenario, duration: float | None, speed: float | None, *, firmware: bool = False
) -> tuple[RunReport, Engine, Any]:
    with tempfile.TemporaryDirectory(prefix="hcp-bench-sim-") as tmp:
        hall = AgentHall(
            Path(tmp),
            sc,
            invite_s=INVITE_S,
            peers=not firmware,
            kind=M.KIND_EVALUATOR if firmware else M.KIND_COMBINED,
        )
        await hall.start()
        fw = None
        try:
            if firmware:
                fw = FirmwareHall(hall.device_dir, hall.keys, hall_id=HALL_ID, invite_s=INVITE_S)
                await fw.start()
                assert await fw.wait_linked(60) == []
            devices = dict(fw.devices) if fw is not None else hall.devices()
            engine = Engine(
                sc,
                plan(sc),
                agent_url=hall.url,
                devices=devices,
                speed=speed,
                tag="bench",
                duration_s=duration,
            )
            report = await engine.run()
        finally:
            if fw is not None:
                await fw.stop()
                fw.close()
            await hall.stop()
        acc = account(engine.truth, hall.store_path)
    return report, engine, acc


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    duration = 3600.0 if quick else None
    sc = load_scenario(DEFAULT)
    load0 = os.getloadavg()
    n_plan, plan_s = bench_plan(sc)
    alone = asyncio.run(bench_engine_alone(sc, duration))
    agent, _engine, acc = asyncio.run(bench_agent(sc, duration, None))
    paced, paced_engine, paced_acc = asyncio.run(bench_agent(sc, PACED_SIM_S, PACED_SPEED))
    fw, _fw_engine, fw_acc = asyncio.run(bench_agent(sc, duration, None, firmware=True))
    lags = paced_engine.lag_s
    for a in (acc, paced_acc, fw_acc):
        if not a.ok:
            print("accounting failed:", a.problems[:5], file=sys.stderr)
            return 1
    day_s = sc.end_s()
    rows = [
        ("plan (discrete-event model only)", n_plan, plan_s, day_s),
        ("engine alone (baseline: no agent, no devices)", alone.events, alone.wall_s, alone.sim_s),
        ("engine + real agent + 12 device peers", agent.events, agent.wall_s, agent.sim_s),
        ("engine + real agent + 12 real firmware devices", fw.events, fw.wall_s, fw.sim_s),
    ]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; load average {load0[0]:.1f} at the start"
        f" (other work was running). Scenario: the demo hall, {len(sc.windows)} windows"
        f"{', first simulated hour' if quick else ', the whole day'}, as fast as possible.",
        "",
        "| run | events | wall s | events/s | simulated s per wall s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, n, wall, sim in rows:
        lines.append(f"| {name} | {n:,} | {wall:.2f} | {n / wall:,.0f} | {sim / wall:,.0f} |")
    share = (agent.events / agent.wall_s) / (alone.events / alone.wall_s)
    lines += [
        "",
        f"With the agent the engine runs at {share:.1%}"
        f" of its own speed: the agent's case API ({agent.api_calls:,} calls, each a committed"
        " SQLite transaction) and the wait for each press's acknowledgement set the pace."
        f" Accounting after the run: {acc.thanked} thanked presses, all in the agent's store,"
        f" bound as expected ({dict(sorted(acc.bindings.items()))}); with the firmware"
        f" {fw_acc.thanked}, likewise ({dict(sorted(fw_acc.bindings.items()))}).",
        "",
        f"Paced at speed {PACED_SPEED:.0f} against the real agent ({paced.events} events in the"
        f" first {PACED_SIM_S / 60:.0f} simulated minutes, {paced.wall_s:.1f} s of wall time):"
        f" events started late by p50 {_pct(lags, 0.5) * 1000:.1f} ms, p99"
        f" {_pct(lags, 0.99) * 1000:.1f} ms, max {max(lags, default=0) * 1000:.1f} ms of wall"
        f" time (mean {statistics.fmean(lags) * 1000 if lags else 0:.1f} ms).",
    ]
    text = "\n".join(lines)
    print(text)
    if "--write" in argv:
        write_block("simulator", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
