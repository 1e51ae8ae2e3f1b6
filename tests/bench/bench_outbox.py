"""Outbox benchmark: add() latency, flash bytes and erases per rating, heap, boot recovery.

    uv run python -m tests.bench.bench_outbox            # print the figures
    uv run python -m tests.bench.bench_outbox --write    # also update docs/performance.md

Runs the .mpy build of firmware/storage under the MicroPython unix port on a LittleFS v2
image in a file (FileBlockDev, as the simulator does), twice: with the Pico W's and the
simulator's `progsize` 256, and with the ESP32 port's default 32. Two baselines are
measured in the same run on the same kind of image:

- one file, the same 32-byte record appended and flushed per rating (the naive design);
- the outbox's file pattern without its bookkeeping: a new file every 16 records, the
  previous one deleted. The outbox's own cost is the ratio to this one.

Latencies are on the unix port, where "flash" is a file on the host: they measure the
outbox's CPU cost and LittleFS's, not a board's flash, which programs a 256-byte page in
~0.5 ms and erases a 4 KB block in ~50 ms. Bytes and erases per rating are the same on a
board with the same LittleFS settings.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.report import write_block
from tests.firmware_storage.conftest import MP, build_storage
from tests.mpy import run_micropython

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def run_mp(build: Path, args: list[str], heap: str) -> dict[str, int]:
    result = run_micropython(build, args, heap=heap, timeout=900)
    result.check_returncode()
    out = result.stdout
    figures = {}
    for line in out.splitlines():
        name, value = line.split()
        figures[name] = int(value)
    return figures


def measure(n: int) -> tuple[dict[int, dict[str, int]], dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        build = build_storage(Path(tmp) / "mpy")
        data = Path(tmp) / "data"
        data.mkdir()
        runs = {
            progsize: run_mp(
                build, [str(HERE / "mpy_outbox.py"), str(data), str(n), str(progsize)], "256k"
            )
            for progsize in (256, 32)
        }
        heap = run_mp(build, [str(MP / "footprint.py"), str(data / "fp.img")], "64k")
    return runs, heap


def report(runs: dict[int, dict[str, int]], heap: dict[str, int], n: int) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, MicroPython unix port "
        f"(64-bit), {n} ratings per row, LittleFS v2 on a file image: 4096-byte blocks, "
        "readsize 32, lookahead 32. The outbox is 64 segments x 16 ratings.",
        "",
    ]
    for progsize, board in ((256, "Pico W and the simulator"), (32, "ESP32-S3 port default")):
        f = runs[progsize]
        rot = f["rot_mean_us"]

        def row(what: str, key: str, f: dict[str, int] = f, rot: int = rot) -> str:
            mean = f[f"{key}_mean_us"]
            return (
                f"| {what} | {mean} | {mean / rot:.1f}× | {f[f'{key}_p50_us']} | "
                f"{f[f'{key}_p99_us']} | {f[f'{key}_bytes']} | "
                f"{f[f'{key}_erases_x1000'] / 1000:.3f} |"
            )

        lines += [
            f"**progsize {progsize}** ({board}):",
            "",
            "| per rating | mean µs | × baseline 2 | median µs | p99 µs | flash bytes "
            "programmed | blocks erased |",
            "|---|---|---|---|---|---|---|",
            row("baseline 1: append + flush to one growing file", "base"),
            row("baseline 2: append + flush, a new file per 16, old one deleted", "rot"),
            row("`Outbox.add()`, link up (each rating acknowledged)", "up"),
            row(
                f"`Outbox.add()`, link down (full: {f['down_dropped']} dropped by the "
                "overflow policy)",
                "down",
            ),
            "",
            f"Boot with a full outbox ({f['boot_full_depth']} ratings): recovery "
            f"{f['boot_full_us'] / 1000:.1f} ms; `records(oldest, 8)` (a transmit window) "
            f"{f['records8_us']} µs.",
            "",
        ]
    lines += [
        "| heap (64-bit unix port, .mpy) | bytes |",
        "|---|---|",
        f"| import `firmware.storage.outbox` (with record, atomic, protocol.crc) | "
        f"{heap['import_storage']} |",
        f"| import blockdev + mount (simulator only) | {heap['import_mount']} |",
        f"| LittleFS mounted (caches, lookahead) | {heap['mount_lfs']} |",
        f"| an open 64 × 16 outbox after recovery, newest segment open | {heap['outbox_open']} |",
        f"| allocated by one `add()` (garbage) | {heap['add_alloc']} |",
        f"| allocated by `records(oldest, 8)` (garbage; the open file's cache included) | "
        f"{heap['records_alloc']} |",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    n = 300 if "--quick" in argv else 2000
    runs, heap = measure(n)
    text = report(runs, heap, n)
    print(text)
    if "--write" in argv:
        write_block("outbox", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
