"""Power cuts during a rating storm: SIGKILL of the real MicroPython process, 200+ times.

mp/storm.py runs the outbox on a LittleFS image file (FileBlockDev, as the simulator
does) and prints every seq whose add() returned (`A`), every agent acknowledgement
before the outbox acts on it (`K`), and after each boot what recovery found (`B`). This
test kills it at random moments (during boot and recovery as well as during adds, acks,
segment rollovers and overflow drops), then checks the next boot against everything
printed before:

- no seq is ever printed twice, and the next seq is above every seq printed: never reused;
- every printed seq is held (oldest <= seq < next), or was acknowledged, or was dropped
  by the overflow policy and counted (seq <= the highest dropped seq, and dropped()
  covers every such rating): never lost silently;
- every held record reads back intact and equal to what was added (storm checks, `B ... 1`);
- dropped() never goes down.

Two independent devices (images) are killed in parallel to keep the wall time short.
HCP_KILLS sets the number of kills (default 200, split over the devices).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.firmware_storage.conftest import MP, tool

KILLS = int(os.environ.get("HCP_KILLS", "200"))
DEVICES = 2
SEGMENTS = 4  # small, so boots without acknowledgements overflow and drop
RECORDS = 8
# Where a kill lands. `micropython` here is CPython hosting the port in-process, so a
# boot takes ~30 ms (more on a loaded machine) before the storm starts. A quarter of
# the kills land at a random moment of the boot, measured from the boots before (mount,
# recovery and its repairs); the rest wait for the B line and land at a random moment
# of the storm (adds, acks, rollovers, drops).
BOOT_KILLS = 0.25
STORM_S = 0.04


class Ledger:
    def __init__(self) -> None:
        self.printed: set[int] = set()
        self.top = 0  # highest seq printed
        self.ack = 0  # highest ack printed
        self.dropped = 0
        self.boots = 0  # boots that reached their B line
        self.adds = 0

    def check_boot(self, fields: list[int], where: str) -> None:
        oldest, nxt, dropped, drop_upto, held_ok = fields
        assert held_ok == 1, f"{where}: a held record is missing or not what was added"
        assert nxt > self.top, f"{where}: next seq {nxt} would reuse printed seq {self.top}"
        assert dropped >= self.dropped, f"{where}: dropped went down {self.dropped} -> {dropped}"
        gone = [s for s in self.printed if s > self.ack and not oldest <= s < nxt]
        for s in gone:
            assert s <= drop_upto, (
                f"{where}: seq {s} was durable, is not held ({oldest}..{nxt - 1}), "
                f"not acknowledged (ack {self.ack}) and not dropped (up to {drop_upto})"
            )
        assert len(gone) <= dropped, f"{where}: {len(gone)} ratings gone, dropped() is {dropped}"
        self.dropped = dropped
        self.boots += 1

    def record(self, line: str, where: str) -> None:
        kind, _, value = line.partition(" ")
        if kind == "A":
            seq = int(value)
            assert seq not in self.printed, f"{where}: seq {seq} given out twice"
            self.printed.add(seq)
            self.top = max(self.top, seq)
            self.adds += 1
        elif kind == "K":
            self.ack = max(self.ack, int(value))


def boot(
    build: Path, image: Path, ledger: Ledger, delay: float | None, storm: float, where: str
) -> float:
    """One boot of the device, killed `delay` s after its start, or (None) `storm` s
    after its B line; returns the seconds the boot took to its B line (0: killed first)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            tool("micropython"),
            "-X",
            "heapsize=64k",
            str(MP / "storm.py"),
            str(image),
            str(SEGMENTS),
            str(RECORDS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, MICROPYPATH=str(build)),
        cwd=build,
    )
    assert proc.stdout is not None
    booted = 0.0
    if delay is None:
        first = proc.stdout.readline()
        booted = time.monotonic() - start
        time.sleep(storm)
        proc.kill()
        out = first + proc.stdout.read()
    else:
        time.sleep(delay)
        proc.kill()  # SIGKILL: no cleanup, no flush, mid-write if it happens to be
        out = proc.stdout.read()
    err = proc.stderr.read() if proc.stderr else b""
    proc.wait()
    text = out.decode()
    lines = text.split("\n")[:-1]  # an unterminated last line may be cut: not printed
    assert not err, f"{where}: the device failed:\n{err.decode()}\n{text[-2000:]}"
    for line in lines:
        if line.startswith("B "):
            ledger.check_boot([int(x) for x in line.split()[1:]], where)
        else:
            ledger.record(line, where)
    return booted


def device(build: Path, image: Path, kills: int, seed: int) -> Ledger:
    rng = random.Random(seed)
    ledger = Ledger()
    boot_s = boot(build, image, ledger, None, 0, f"{image.name} first boot")
    for k in range(kills):
        where = f"{image.name} kill {k} (seed {seed})"
        if rng.random() < BOOT_KILLS:
            boot(build, image, ledger, rng.uniform(0, boot_s * 1.2), 0, where)
        else:
            boot_s = boot(build, image, ledger, None, rng.uniform(0, STORM_S), where) or boot_s
    boot(build, image, ledger, None, 0, f"{image.name} final boot")
    return ledger


def test_no_durable_rating_is_lost_or_reused_across_random_kills(
    storage_build: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("HCP_KILL_SEED", str(random.randrange(1 << 30))))
    per_device = -(-KILLS // DEVICES)
    with ThreadPoolExecutor(DEVICES) as pool:
        futures = [
            pool.submit(device, storage_build, tmp_path / f"dev{d}.img", per_device, seed + d)
            for d in range(DEVICES)
        ]
        ledgers = [f.result() for f in futures]
    kills = per_device * DEVICES
    adds = sum(led.adds for led in ledgers)
    print(
        f"{kills} kills, {sum(led.boots for led in ledgers)} boots reached recovery's end, "
        f"{adds} durable adds, dropped {[led.dropped for led in ledgers]}, seed {seed}"
    )
    # The kills must land in the storm, not only during boots, and must cut some
    # drops: otherwise this test would pass without testing (HCP_KILL_SEED={seed}).
    assert kills >= KILLS
    assert adds >= 10 * kills, f"only {adds} durable adds in {kills} boots (seed {seed})"
    assert any(led.dropped for led in ledgers), f"no overflow drop exercised (seed {seed})"
