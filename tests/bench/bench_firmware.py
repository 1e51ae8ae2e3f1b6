"""Device app benchmark: press-to-frame latency, flash per rating, boot-to-ready, heap.

    .venv/bin/python -m tests.bench.bench_firmware            # print the figures
    .venv/bin/python -m tests.bench.bench_firmware --write    # also update docs/performance.md

Everything real: the .mpy build of protocol/ and firmware/ under the MicroPython unix port,
booted by firmware/unix_rom.py on a LittleFS image, its link on a real pty to a CPython
agent-side LinkSession, buttons through the control channel. Each figure has a baseline
measured in the same run:

- **latency**: from writing a "press" request on the control channel to the agent end
  reading the complete RATING frame (debounce poll, UI, Outbox.add() through LittleFS,
  the thanked event, the session, COBS, the pty). Baseline: the control channel's own
  round trip (a "state" request).
- **flash per rating**: bytes LittleFS programmed (and blocks erased) on the image per
  rating, from the block device's counters. Baseline: the same device idle for as long.
- **boot to ready**: process start to the first HELLO on the wire (mount, boot session,
  outbox recovery, imports, first screen). Baseline: an empty MicroPython start.
- **heap**: the smallest `-X heapsize` with which each device kind completes a scenario
  (CONFIG, INVITE with a version-10 QR, a 差评 with a reason, ACK, frames read), the
  firmware running in place from the ROMFS image (simulator/romfs.py, as from a board's
  flash), and the live heap at idle. Baseline: the evaluator with its .mpy files loaded
  into the heap instead (`romfs=False`), as `mpremote cp` to a board's filesystem leaves it.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from protocol import messages as M
from protocol.messages import Message
from tests.agent.helpers import Pty
from tests.firmware_app.device import (
    AgentEnd,
    Device,
    build_firmware,
    config_msg,
    device_json,
    seed_flash,
)
from tests.mpy import tool

PRESSES = int(os.environ.get("HCP_BENCH_PRESSES", "300"))
BOOTS = 15


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


class Rig:
    def __init__(
        self,
        build: Path,
        tmp: Path,
        kind: str = "evaluator",
        heap: str = "256k",
        romfs: bool = True,
    ):
        tmp.mkdir(parents=True, exist_ok=True)
        self.pty = Pty(tmp / "tty")
        self.image = tmp / "flash.img"
        seed_flash(build, self.image, device_json(str(self.pty.path), kind))
        self.dev = Device(build, self.image, heap=heap, romfs=romfs)
        self.agent = AgentEnd(self.pty.master)

    def close(self) -> None:
        self.dev.kill()
        self.pty.close()


def latency(build: Path, tmp: Path) -> tuple[list[float], list[float], dict[str, float]]:
    rig = Rig(build, tmp)
    rig.dev.start()
    ag = rig.agent
    try:
        ag.run_until(lambda: ag.session.is_open())
        ctl = rig.dev.control()
        ag.send(config_msg(thanks_s=1))
        ag.run_until(lambda: ctl("state")["config_version"] == 7)
        base = []
        for _ in range(PRESSES):
            t0 = time.perf_counter()
            ctl("state")
            base.append((time.perf_counter() - t0) * 1000)
        s0 = ctl("state")
        t_idle = time.monotonic()
        time.sleep(3.0)
        s1 = ctl("state")
        idle_s = time.monotonic() - t_idle
        lat = []
        seq = 1
        t_start = time.monotonic()
        for i in range(PRESSES):
            b = i % 5
            t0 = time.perf_counter()
            ctl.sock.sendall(json.dumps({"cmd": "press", "button": b}).encode() + b"\n")
            while seq not in ag.ratings:
                select.select([ag.fd], [], [], 0.5)
                ag.step(0)
            lat.append((time.perf_counter() - t0) * 1000)
            seq += 1
            ctl.rfile.readline()  # the press's answer
            ctl("release", button=b)
            time.sleep(0.06)  # past the 50 ms debounce before the next press of it
        ag.run_until(lambda: ctl("state")["outbox_depth"] == 0)
        press_s = time.monotonic() - t_start
        s2 = ctl("state")
        ctl.close()
    finally:
        rig.close()
    flash = {
        "prog": (s2["flash_programmed"] - s1["flash_programmed"]) / PRESSES,
        "erase": (s2["flash_erased"] - s1["flash_erased"]) / PRESSES,
        "idle_prog": (s1["flash_programmed"] - s0["flash_programmed"]) / idle_s * press_s / PRESSES,
        "idle_erase": (s1["flash_erased"] - s0["flash_erased"]) / idle_s * press_s / PRESSES,
    }
    return lat, base, flash


def boot_times(build: Path, tmp: Path) -> tuple[list[float], list[float]]:
    empty = []
    for _ in range(BOOTS):
        t0 = time.perf_counter()
        subprocess.run([tool("micropython"), "-c", "pass"], check=True)
        empty.append((time.perf_counter() - t0) * 1000)
    rig = Rig(build, tmp)
    ready = []
    try:
        for _ in range(BOOTS):
            n = len(rig.agent.hellos)
            t0 = time.perf_counter()
            rig.dev.start()
            while len(rig.agent.hellos) <= n:
                select.select([rig.agent.fd], [], [], 0.5)
                rig.agent.step(0)
            ready.append((time.perf_counter() - t0) * 1000)
            rig.dev.kill()
    finally:
        rig.close()
    return ready, empty


def live_heap(build: Path, tmp: Path, kind: str, romfs: bool = True) -> int:
    """Bytes allocated after a collection, the app idle after CONFIG (heap 1 MiB)."""
    rig = Rig(build, tmp, kind, "1m", romfs)
    rig.dev.start()
    ag = rig.agent
    try:
        ag.run_until(lambda: ag.session.is_open())
        ctl = rig.dev.control()
        ag.send(config_msg())
        ag.run_until(lambda: ctl("state")["config_version"] == 7)
        n = int(ctl("heap")["alloc"])
        ctl.close()
        return n
    finally:
        rig.close()


def scenario_ok(build: Path, tmp: Path, kind: str, heap: str, romfs: bool = True) -> bool:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rig = Rig(build, tmp, kind, heap, romfs)
    rig.dev.start()
    ag = rig.agent
    try:
        ag.run_until(lambda: ag.session.is_open(), 8)
        ctl = rig.dev.control()
        ag.send(config_msg())
        ag.run_until(lambda: ctl("state")["config_version"] == 7, 5)
        qr = {"size": 57, "bits": bytes(range(256)) + bytes(151)}
        staff = {"name": "王小明", "number": "A0123", "title": None}
        ag.send(Message(M.INVITE, invite=9, timeout_s=10, staff=staff, qr=qr, item="身份证换领"))
        ag.run_until(lambda: ctl("state")["ui"] == "invite", 5)
        if kind != "qr":
            ctl("click", button=3)
            ag.run_until(lambda: ctl("state")["ui"] == "reason", 5)
            ctl("click", button=0)
            ag.run_until(lambda: ag.ratings, 5)
            ag.run_until(lambda: ctl("state")["outbox_depth"] == 0, 5)
        for _ in range(3):
            assert ctl("frame")["ok"]
        time.sleep(0.5)
        ok = rig.dev.alive()
        ctl.close()
        return ok
    except Exception:
        return False
    finally:
        rig.close()


def smallest(ok: object, lo: int, hi: int, step: int = 4) -> int:
    """Smallest heap in KiB (multiple of step) for which ok(f"{n}k") holds; lo fails."""
    assert callable(ok)
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if ok(f"{mid}k"):
            hi = mid
        else:
            lo = mid
    return hi


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        build = build_firmware(tmp / "build")
        lat, base, flash = latency(build, tmp / "lat")
        ready, empty = boot_times(build, tmp / "boot")
        heaps = {}
        live = {}
        for kind in ("evaluator", "qr", "combined"):
            live[kind] = live_heap(build, tmp / f"live-{kind}", kind)
            heaps[kind] = smallest(
                lambda h, k=kind: scenario_ok(build, tmp / "heap", k, h), 16, 512
            )
        live["loaded"] = live_heap(build, tmp / "live-loaded", "evaluator", romfs=False)
        heaps["loaded"] = smallest(
            lambda h: scenario_ok(build, tmp / "heap", "evaluator", h, romfs=False), 16, 512
        )
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = [
        f"Measured {day} on {platform.machine()}, MicroPython unix port (64-bit), .mpy build,"
        " LittleFS v2 image (progsize 256), serial link on a pty at 115200 (a pty does not"
        " pace bytes).",
        "",
        f"| press to RATING frame on the wire ({PRESSES} presses) | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| baseline: control channel round trip (a `state` request) | {pct(base, 50):.2f}"
        f" | {pct(base, 99):.2f} |",
        "| press → debounce → UI → `Outbox.add()` → RATING frame read at the agent end"
        f" | {pct(lat, 50):.2f} | {pct(lat, 99):.2f} |",
        "",
        "| flash per rating (LittleFS, progsize 256) | bytes programmed | blocks erased |",
        "|---|---|---|",
        "| baseline: the device idle for as long (heartbeats, no ratings)"
        f" | {flash['idle_prog']:.0f} | {flash['idle_erase']:.3f} |",
        "| a rating (`Outbox.add()`, acknowledged at once)"
        f" | {flash['prog']:.0f} | {flash['erase']:.3f} |",
        "",
        f"| boot ({BOOTS} boots) | median ms | max ms |",
        "|---|---|---|",
        "| baseline: empty MicroPython start (`micropython -c pass`)"
        f" | {statistics.median(empty):.1f} | {max(empty):.1f} |",
        "| process start → first HELLO on the wire (mount, boot session, outbox recovery,"
        f" imports, first screen) | {statistics.median(ready):.1f} | {max(ready):.1f} |",
        "",
        "| heap (64-bit unix port) | smallest `-X heapsize` for the scenario, KiB"
        " | live after GC at idle, KiB |",
        "|---|---|---|",
        "| baseline: evaluator, its .mpy files loaded into the heap"
        f" | {heaps['loaded']} | {live['loaded'] / 1024:.0f} |",
        "| firmware in place from the ROMFS image (simulator/romfs.py): | | |",
        f"| evaluator (128×64 OLED canvas) | {heaps['evaluator']}"
        f" | {live['evaluator'] / 1024:.0f} |",
        f"| QR unit (240×240 canvas) | {heaps['qr']} | {live['qr'] / 1024:.0f} |",
        f"| combined unit (320×240) | {heaps['combined']} | {live['combined'] / 1024:.0f} |",
    ]
    text = "\n".join(rows)
    print(text)
    if "--write" in argv:
        from tests.bench.report import write_block

        write_block("firmware", text)


if __name__ == "__main__":
    main(sys.argv[1:])
