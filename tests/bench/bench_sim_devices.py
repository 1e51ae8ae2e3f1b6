"""How many virtual devices one machine runs: memory and CPU per device.

    .venv/bin/python -m tests.bench.bench_sim_devices            # print the figures
    .venv/bin/python -m tests.bench.bench_sim_devices --write    # also update docs/performance.md
    .venv/bin/python -m tests.bench.bench_sim_devices --devices 4

Measured in one run, from /proc (RSS: VmRSS; CPU: utime + stime over a window):
- baseline: bare ``micropython`` processes with the same heap option, sleeping (what the unix
  port costs before any firmware runs);
- idle: N real-firmware devices (``hcp sim devices``' rack, simulator.rack) linked over their
  pty cables to a real ``hcp agent run`` (heartbeat 1 s), signed-in staff, nobody pressing;
- busy: the same devices pressed one after the other through the control API as fast as each
  press is thanked (a citizen's press, the rating to the agent, its ACK).
The simulator's own process (cables and control API, one asyncio loop) is measured too.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.vdevice import HEAP, tool
from tests.bench.report import write_block
from tests.simulator.simrack import SimHall

WINDOW_S = 10.0
SLEEP = "import time\ntime.sleep(120)"  # the baseline: alive long enough to be measured
PASS = ["-c", "pass"]
TICK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def cpu_percent(pids: list[int], window: float, during: object = None) -> list[float]:
    """CPU % of one core per process over `window` s (calling `during()` meanwhile)."""
    before = [cpu_s(p) for p in pids]
    t0 = time.monotonic()
    if callable(during):
        during(t0 + window)
    else:
        time.sleep(window)
    wall = time.monotonic() - t0
    return [(cpu_s(p) - b) / wall * 100 for p, b in zip(pids, before, strict=True)]


def bare_pass(runs: int = 5) -> float:
    """`micropython -c pass`, start to exit: CPU ms, the median of `runs`. (Its max RSS
    would count the forking CPython's pages, so the RSS baseline is a live process.)"""
    cpu = []
    for _ in range(runs):
        p = subprocess.Popen([tool("micropython"), "-X", f"heapsize={HEAP['evaluator']}", *PASS])
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    return statistics.median(cpu)


def baseline(n: int) -> tuple[list[int], list[float]]:
    procs = [
        subprocess.Popen([tool("micropython"), "-X", f"heapsize={HEAP['evaluator']}", "-c", SLEEP])
        for _ in range(n)
    ]
    try:
        time.sleep(1.0)
        rss = [rss_kib(p.pid) for p in procs]
        cpu = cpu_percent([p.pid for p in procs], 3.0)
        return rss, cpu
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(argv: list[str]) -> int:
    n = int(argv[argv.index("--devices") + 1]) if "--devices" in argv else 8
    load = os.getloadavg()[0]
    pass_cpu = bare_pass()
    base_rss, base_cpu = baseline(n)
    with tempfile.TemporaryDirectory() as tmp:
        hall = SimHall(Path(tmp), count=n)
        hall.start()
        try:
            assert hall.rack is not None
            devs = list(hall.rack.devices.values())
            pids = [d.proc.pid for d in devs if d.proc.pid is not None]
            time.sleep(2.0)  # past the link-up burst
            idle_rss = [rss_kib(p) for p in pids]
            idle_cpu = cpu_percent([*pids, os.getpid()], WINDOW_S)
            presses = [0]

            def press_all(until: float) -> None:
                while time.monotonic() < until:
                    for d in devs:
                        hall.press(d.device_id, 1 + presses[0] % 3)
                        presses[0] += 1

            busy_cpu = cpu_percent([*pids, os.getpid()], WINDOW_S, press_all)
            busy_rss = [rss_kib(p) for p in pids]
            stored = sum(len(hall.ratings(d.device_id)) for d in devs)
            agent_rss = rss_kib(hall.agent.pid) if hall.agent is not None else 0
        finally:
            hall.stop()
    mem_avail = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            mem_avail = int(line.split()[1])
    cores = os.cpu_count() or 1
    per_idle_cpu = statistics.fmean(idle_cpu[:-1])
    per_busy_cpu = statistics.fmean(busy_cpu[:-1])
    per_rss = statistics.fmean(busy_rss)
    sim_idle_cpu = idle_cpu[-1] / n
    fit_mem = int(mem_avail * 0.8 / per_rss)
    fit_idle = int(cores * 100 * 0.8 / (per_idle_cpu + sim_idle_cpu))
    rate = presses[0] / WINDOW_S / n
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {cores} cores,"
        f" Python {platform.python_version()}, {n} evaluator devices (heap"
        f" {HEAP['evaluator']}); load average {load:.1f} at the start"
        + (" (other work was running)." if load > 1.5 else "."),
        "",
        "| per process | RSS KiB (mean) | CPU % of a core (mean) |",
        "|---|---:|---:|",
        f"| bare `micropython -c pass`, same heap, start to exit | — | {pass_cpu:.1f} ms"
        " of CPU in all |",
        f"| bare `micropython`, same heap, sleeping (baseline) | {statistics.fmean(base_rss):,.0f}"
        f" | {statistics.fmean(base_cpu):.2f} |",
        f"| virtual device, idle (linked, heartbeat 1 s) | {statistics.fmean(idle_rss):,.0f}"
        f" | {per_idle_cpu:.2f} |",
        f"| virtual device, busy ({rate:.2f} presses/s each) | {per_rss:,.0f}"
        f" | {per_busy_cpu:.2f} |",
        f"| simulator process (cables + control API), idle, per device | — | {sim_idle_cpu:.2f} |",
        f"| simulator process, busy, per device | — | {busy_cpu[-1] / n:.2f} |",
        "",
        f"A device costs {per_rss - statistics.fmean(base_rss):,.0f} KiB above the bare"
        " interpreter (busy and idle differ little: the heap is sized at start); the agent"
        f" ({agent_rss:,} KiB) is not counted. Busy: {presses[0]} presses in the window, one"
        f" at a time across the devices, each waiting for its thanks"
        f" ({presses[0] / WINDOW_S:.1f}/s in all); {stored} ratings in the agent's store at"
        f" the end. At these figures, with 80% of this machine's {mem_avail // 1024:,} MiB"
        f" available memory and 80% of its {cores} cores, memory allows ~{fit_mem:,} devices"
        f" and idle CPU ~{fit_idle:,}: one machine runs a hall of dozens of idle virtual"
        " devices; CPU, not memory, is the limit.",
    ]
    text = "\n".join(lines)
    print(text)
    if "--write" in argv:
        write_block("sim_devices", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
