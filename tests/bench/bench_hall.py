"""Whole-hall benchmark: ratings from real-firmware devices to the hub, and the hall's clock.

    .venv/bin/python -m tests.bench.bench_hall            # print the figures
    .venv/bin/python -m tests.bench.bench_hall --write    # also update docs/performance.md
    .venv/bin/python -m tests.bench.bench_hall --quick    # fewer presses, a shorter day

The hall of ``hcp demo`` (tools.demo.Hall): 12 real-firmware evaluators (MicroPython unix
port; 6 on serial cables, 6 on MQTT through the agent's embedded broker), ``hcp agent run``
and ``hcp hub serve`` on SQLite. Measured in one run:

- **storm** (with the hub): every device presses as fast as a person can click it (each
  press waits for the thanks event), unsolicited; a poller reads the agent's store and the
  hub's database every 10 ms and notes when each rating first appears there. Throughput is
  ratings over the time from the first press to the last rating seen; latency is per rating
  from the click to its first sight (so it includes up to 10 ms of polling);
- **baseline: the agent alone** (no ``[hub]``): the same storm, ratings seen in the agent's
  store only: what the devices and the agent do without the sync;
- **devices**: memory (VmRSS) and CPU time of each MicroPython process over the storm;
- **the hall's clock**: the demo scenario's first simulated hour(s) as fast as possible
  through the scenario engine against the whole hall (invites, presses, hub sync), against
  the engine alone with an in-process transport that answers at once (the baseline from
  tests/bench/bench_simulator.py). The hub's accounting of that run is checked.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from simulator.engine import Engine
from simulator.plan import plan
from simulator.scenario import load_scenario
from tests.bench.bench_simulator import bench_engine_alone
from tests.bench.report import write_block
from tools.demo import DEFAULT_SCENARIO, Hall, device_specs, expected_from_truth, hub_account

POLL_S = 0.01
LINK_S = 120.0
IDLE_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Poller(threading.Thread):
    """First sight of each (device, seq) in a SQLite database, polled every POLL_S."""

    def __init__(self, path: Path, sql: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.sql = sql  # selects (rowid, device_id, seq) with rowid > ?
        self.seen: dict[tuple[str, int], float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        last = 0
        while not self.stopped.is_set():
            try:
                c = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
                try:
                    rows = c.execute(self.sql, (last,)).fetchall()
                finally:
                    c.close()
            except sqlite3.Error:
                rows = []
            now = time.monotonic()
            for rowid, dev, seq in rows:
                last = max(last, int(rowid))
                self.seen.setdefault((str(dev), int(seq)), now)
            time.sleep(POLL_S)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def _proc_stats(pid: int | None) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    if pid is None:
        return 0.0, 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return rss / 1024, cpu
    except (OSError, StopIteration, ValueError, IndexError):
        return 0.0, 0.0


async def storm(root: Path, presses: int, *, hub: bool) -> dict[str, Any]:
    hall = Hall(root, device_specs(12), hub=hub, invite_s=2)
    hall.prepare()
    try:
        await hall.start()
        assert hall.fleet is not None
        down = await hall.fleet.wait_linked(LINK_S)
        assert not down, f"not linked: {down}"
        agent_poll = Poller(
            # The agent's ratings table has no rowid (WITHOUT ROWID): read it whole, it is small.
            hall.agent.store_path,
            "SELECT 0, device_id, seq FROM ratings WHERE ? >= 0",
        )
        hub_poll = None
        if hall.hub is not None:
            hub_poll = Poller(
                hall.hub.db_path,
                "SELECT id, device_id, seq FROM ratings WHERE id > ? AND source = 'device_press'",
            )
            hub_poll.start()
        agent_poll.start()
        pressed: dict[tuple[str, int], float] = {}
        pids = {i: d.proc.pid for i, d in hall.fleet.rack.devices.items()}
        idle0 = {i: _proc_stats(p) for i, p in pids.items()}
        t = time.monotonic()
        await asyncio.sleep(IDLE_S)  # linked, heartbeating, nobody pressing
        idle_s = time.monotonic() - t
        before = {i: _proc_stats(p) for i, p in pids.items()}

        async def lane(dev: Any) -> None:
            for k in range(presses):
                t = time.monotonic()
                r = await dev.press(1 + k % 3, [])
                assert r.thanked and r.seq is not None, dev.device_id
                pressed[(dev.device_id, r.seq)] = t

        t0 = time.monotonic()
        await asyncio.gather(*(lane(d) for d in hall.fleet.devices.values()))
        press_s = time.monotonic() - t0
        after = {i: _proc_stats(p) for i, p in pids.items()}
        target = hub_poll if hub_poll is not None else agent_poll
        end = time.monotonic() + 120
        while not all(k in target.seen for k in pressed) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        agent_poll.stopped.set()
        if hub_poll is not None:
            hub_poll.stopped.set()
        missing = [k for k in pressed if k not in target.seen]
        assert not missing, f"not delivered: {missing[:5]}"
        out: dict[str, Any] = {"n": len(pressed), "press_s": press_s}
        for name, poll in (("agent", agent_poll), ("hub", hub_poll)):
            if poll is None:
                continue
            lat = [poll.seen[k] - t for k, t in pressed.items()]
            span = max(poll.seen[k] for k in pressed) - t0
            out[name] = {
                "rate": len(pressed) / span,
                "span": span,
                "p50": _pct(lat, 0.5),
                "p90": _pct(lat, 0.9),
                "p99": _pct(lat, 0.99),
                "max": max(lat),
            }
        rss = [after[i][0] for i in pids]
        cpu = [after[i][1] - before[i][1] for i in pids]
        out["rss_mib"] = sum(rss) / len(rss)
        out["cpu_share"] = sum(cpu) / len(cpu) / press_s
        idle = [before[i][1] - idle0[i][1] for i in pids]
        out["idle_share"] = sum(idle) / len(idle) / idle_s
        return out
    finally:
        await hall.stop()


async def clock(root: Path, sim_s: float) -> dict[str, Any]:
    sc = load_scenario(DEFAULT_SCENARIO)
    hall = Hall(root, device_specs(12), invite_s=2)
    hall.prepare()
    try:
        await hall.start()
        assert hall.fleet is not None and hall.hub is not None
        down = await hall.fleet.wait_linked(LINK_S)
        assert not down, f"not linked: {down}"
        since = {i: d.first_seq - 1 for i, d in hall.fleet.devices.items()}
        engine = Engine(
            sc,
            plan(sc),
            agent_url=hall.agent.url,
            devices=dict(hall.fleet.devices),
            speed=None,
            tag="bench",
            duration_s=sim_s,
        )
        report = await engine.run()
        t = time.monotonic()
        assert await hall.drained(120), "the hall did not drain"
        drain_s = time.monotonic() - t
        acc = hub_account(hall.hub, expected_from_truth(engine.truth), since)
        assert acc.ok, (acc.missing[:5], acc.wrong[:5], acc.duplicated[:5], acc.extra[:5])
        return {"report": report, "drain_s": drain_s, "acc": acc}
    finally:
        await hall.stop()


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    presses = 20 if quick else 100
    sim_s = 1800.0 if quick else 3600.0
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hcp-bench-hall-") as tmp:
        base = asyncio.run(storm(Path(tmp) / "alone", presses, hub=False))
        full = asyncio.run(storm(Path(tmp) / "hub", presses, hub=True))
        hall_clock = asyncio.run(clock(Path(tmp) / "clock", sim_s))
    sc = load_scenario(DEFAULT_SCENARIO)
    alone = asyncio.run(bench_engine_alone(sc, sim_s))
    ms = 1000.0
    a, h, ha = base["agent"], full["hub"], full["agent"]
    rep, acc = hall_clock["report"], hall_clock["acc"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; load average {load0[0]:.1f} at the start (other"
        " work was running). 12 real-firmware evaluators (6 serial, 6 MQTT through the"
        f" embedded broker), {presses} presses each, as fast as the thanks event allows.",
        "",
        "| run | ratings | ratings/s | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| baseline: device → agent store, agent alone (no hub sync) | {base['n']} |"
        f" {a['rate']:.1f} | {a['p50'] * ms:.0f} | {a['p90'] * ms:.0f} | {a['p99'] * ms:.0f} |"
        f" {a['max'] * ms:.0f} |",
        f"| device → agent store, with hub sync | {full['n']} | {ha['rate']:.1f} |"
        f" {ha['p50'] * ms:.0f} | {ha['p90'] * ms:.0f} | {ha['p99'] * ms:.0f} |"
        f" {ha['max'] * ms:.0f} |",
        f"| **device → hub** (press to the hub's database) | {full['n']} | {h['rate']:.1f} |"
        f" {h['p50'] * ms:.0f} | {h['p90'] * ms:.0f} | {h['p99'] * ms:.0f} |"
        f" {h['max'] * ms:.0f} |",
        "",
        f"Latency is from the click to the first sight of the rating (polled every"
        f" {POLL_S * ms:.0f} ms). The hub hop adds {(h['p50'] - ha['p50']) * ms:.0f} ms at the"
        " median over the agent's own commit: the agent's sync wakes when the rating's"
        " transaction commits (edge_agent/sync.py), so the hop is one HTTP batch and the"
        " hub's commit. Throughput is set by the devices (one press per"
        f" thanks event): {full['press_s']:.1f} s for the presses with the hub,"
        f" {base['press_s']:.1f} s without.",
        "",
        f"Per device (MicroPython unix port, 256 KiB heap, firmware from ROMFS):"
        f" {full['rss_mib']:.1f} MiB resident;"
        f" {full['idle_share']:.1%} of one core linked and idle ({IDLE_S:.0f} s, heartbeats),"
        f" {full['cpu_share']:.1%} while pressed as fast as possible (agent-alone run:"
        f" {base['rss_mib']:.1f} MiB, {base['idle_share']:.1%}, {base['cpu_share']:.1%}). So"
        f" about {1 / max(full['idle_share'], 1e-9):.0f} idle devices, or"
        f" {1 / max(full['cpu_share'], 1e-9):.0f} pressed flat out"
        f" ({full['n'] / len(device_specs(12)) / full['press_s']:.1f} presses/s each, far"
        " beyond a counter's rate), fill one core.",
        "",
        "| the hall's clock | events | wall s | simulated s per wall s |",
        "|---|---:|---:|---:|",
        f"| baseline: engine alone (no agent, no devices) | {alone.events:,} |"
        f" {alone.wall_s:.2f} | {alone.sim_s / alone.wall_s:,.0f} |",
        f"| whole hall: engine + 12 firmware devices + agent + hub | {rep.events:,} |"
        f" {rep.wall_s:.2f} | {rep.sim_s / rep.wall_s:,.0f} |",
        "",
        f"The first {sim_s / 60:.0f} simulated minutes of the demo hall as fast as possible:"
        f" {rep.presses} presses; the hub then held all {acc.found} thanked ratings (missing"
        f" {len(acc.missing)}, duplicated {len(acc.duplicated)}, bound wrongly"
        f" {len(acc.wrong)}), {acc.orders} work orders for {acc.bad} case 差评; the last"
        f" reached it {hall_clock['drain_s']:.1f} s after the engine finished. `hcp demo`"
        " runs at speed 60, well inside this.",
    ]
    text = "\n".join(lines)
    print(text)
    if "--write" in argv:
        write_block("hall", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
