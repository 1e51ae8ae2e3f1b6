"""Protocol benchmark: the rating's encode and decode paths, wire size, MicroPython heap.

    uv run python -m tests.bench.bench_protocol            # print the figures
    uv run python -m tests.bench.bench_protocol --write    # also update docs/performance.md

Every time is compared with a baseline measured in the same run: cbor2 (C
extension) encoding / decoding the same CBOR body on CPython. Our paths do more
than cbor2 does (signing, CRC, COBS, field validation), so the ratio says what
the whole path costs in units of "just CBOR", on this machine, today.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cbor2

from protocol import cbor
from protocol.framing import decode_frame, encode_frame
from protocol.messages import UP, to_body
from protocol.packet import Signer, open_packet, seal
from tests.bench.report import write_block
from tests.mpy import compile_to, run_micropython

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "portable"))
from examples import example  # noqa: E402  (the same rating the MicroPython side uses)

KEY = bytes(range(32))
HEAP_GOAL = 8 * 1024
WIRE_GOAL = 48


def best_us(fn: Callable[[], object], n: int, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        times.append(time.perf_counter_ns() - t0)
    return min(times) / n / 1000


def cpython_figures(n: int) -> dict[str, float]:
    signer = Signer(KEY)
    msg = example("rating")
    body = to_body(msg)
    body_bytes = cbor2.dumps(body)
    frame = encode_frame(seal(msg, signer, UP, 3, 1))
    return {
        "cbor2_encode_us": best_us(lambda: cbor2.dumps(body), n),
        "cbor2_decode_us": best_us(lambda: cbor2.loads(body_bytes), n),
        "cbor_encode_us": best_us(lambda: cbor.encode(body), n),
        "cbor_decode_us": best_us(lambda: cbor.decode(body_bytes), n),
        "encode_sign_frame_us": best_us(lambda: encode_frame(seal(msg, signer, UP, 3, 1)), n),
        "deframe_verify_decode_us": best_us(
            lambda: open_packet(decode_frame(frame[:-1]), signer, UP), n
        ),
        "rating_wire_bytes": float(len(frame)),
    }


def max_frame() -> bytes:
    for line in (ROOT / "tests" / "vectors" / "messages.jsonl").read_text("utf-8").splitlines():
        v = json.loads(line)
        if v["name"] == "config-max-size":
            return bytes.fromhex(v["frame"])
    raise SystemExit("bench: no config-max-size vector")


def micropython_figures(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        for src in (ROOT / "protocol").glob("*.py"):
            compile_to(src, build / "protocol" / f"{src.stem}.mpy")
        compile_to(ROOT / "tests" / "portable" / "examples.py", build / "examples.mpy")
        big = build / "max_frame.bin"
        big.write_bytes(max_frame())
        result = run_micropython(
            build,
            [str(ROOT / "tests" / "bench" / "mpy_protocol.py"), str(n), str(big)],
            heap="256k",
            timeout=600,
        )
        result.check_returncode()
        out = result.stdout
    figures = {}
    for line in out.splitlines():
        name, value = line.split()
        figures[name] = float(value)
    return figures


def report(cp: dict[str, float], mp: dict[str, float]) -> str:
    enc, dec = cp["cbor2_encode_us"], cp["cbor2_decode_us"]

    def row(what: str, us: float, base: float) -> str:
        return f"| {what} | {us:.1f} | {us / base:.1f}× |"

    heap = mp["max_frame_decode_heap"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"CPython {platform.python_version()}, MicroPython unix port (64-bit; objects are "
        "about twice the size they are on a 32-bit MCU).",
        "",
        "| path (typical rating) | µs per op | × cbor2 (same run) |",
        "|---|---|---|",
        f"| baseline: cbor2.dumps(body), CPython | {enc:.2f} | 1.0× |",
        f"| baseline: cbor2.loads(body), CPython | {dec:.2f} | 1.0× |",
        row("our CBOR encode only, CPython", cp["cbor_encode_us"], enc),
        row("our CBOR decode only, CPython", cp["cbor_decode_us"], dec),
        row("encode + sign + frame, CPython", cp["encode_sign_frame_us"], enc),
        row("deframe + verify + decode, CPython", cp["deframe_verify_decode_us"], dec),
        row("encode + sign + frame, MicroPython", mp["encode_sign_frame_us"], enc),
        row("deframe + verify + decode, MicroPython", mp["deframe_verify_decode_us"], dec),
        "",
        "| figure | value | goal |",
        "|---|---|---|",
        f"| typical rating frame on the wire | {cp['rating_wire_bytes']:.0f} bytes "
        f"| ≤ {WIRE_GOAL} |",
        f"| MicroPython heap allocated decoding the largest frame "
        f"({mp['max_frame_bytes']:.0f} bytes, GC off: an upper bound on the peak) "
        f"| {heap:.0f} bytes | ≤ {HEAP_GOAL} |",
        f"| MicroPython heap allocated decoding a typical rating frame "
        f"| {mp['rating_decode_heap']:.0f} bytes | |",
        f"| stream decoder's receive buffer (allocated once) "
        f"| {mp['decoder_buffer_heap']:.0f} bytes | |",
        f"| MicroPython heap after importing framing, catalogue, CBOR and packet layers "
        f"(.mpy) | {mp['import_heap']:.0f} bytes | |",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    n = 200 if "--quick" in argv else 5000
    text = report(cpython_figures(n), micropython_figures(max(50, n // 10)))
    print(text)
    if "--write" in argv:
        write_block("protocol", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
