"""The UI and display tests on the real MicroPython unix port, from .mpy builds.

- portable/test_fwui_machine.py: the state-machine table (pytest runs it on CPython too);
- mpy/test_fwui_display.py: font reader, pen, drivers on fake buses, sim (MicroPython only).
Both run in tests/portable/run.py, the project's portable runner, in a 64 KB heap unless
the module declares MICROPYTHON_HEAP with its reason; and
the import footprint of each UI and display module is measured and bounded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.mpy import add_runner

from .conftest import ROOT, run_micropython

# Heap after importing each module on the 64-bit unix port (objects are twice an MCU's),
# measured with everything it imports already loaded. A bound, so growth is noticed.
FOOTPRINT_BOUNDS = {
    "protocol.messages": 24_000,  # not ours; the base the UI builds on
    "firmware.ui.machine": 24_000,
    "firmware.display.font": 4_000,
    "firmware.display.pen": 5_000,
    "firmware.ui.screens": 6_000,
    "firmware.ui.screens_small": 6_000,
    "firmware.ui.screens_large": 6_000,
    "firmware.display.ssd1306": 5_000,
    "firmware.display.st7789": 6_000,
    "firmware.display.sim": 4_000,
}


def heap_for(module: str) -> str:
    """The module's MICROPYTHON_HEAP with its reason, else 64 KB (tests/portable convention)."""
    for folder in ("portable", "mpy"):
        path = Path(__file__).parent / folder / f"{module}.py"
        if path.exists():
            m = re.search(r'^MICROPYTHON_HEAP = "(\w+)"', path.read_text(), re.M)
            return m.group(1) if m else "64k"
    raise FileNotFoundError(module)


@pytest.mark.parametrize("module", ["test_fwui_machine", "test_fwui_display"])
def test_on_micropython(mpy_build: Path, module: str) -> None:
    result = run_micropython(mpy_build, [add_runner(mpy_build), module], heap=heap_for(module))
    last = result.stdout.strip().splitlines()[-1:] or ["<no output>"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert last[0].endswith(" 0 failed") and not last[0].startswith("0 passed"), last[0]


def test_import_footprint(mpy_build: Path) -> None:
    names = list(FOOTPRINT_BOUNDS)
    program = (
        "import gc, json\n"
        "out = {}\n"
        f"for name in {names!r}:\n"
        "    gc.collect()\n"
        "    a = gc.mem_alloc()\n"
        "    __import__(name)\n"
        "    gc.collect()\n"
        "    out[name] = gc.mem_alloc() - a\n"
        "print(json.dumps(out))\n"
    )
    result = run_micropython(mpy_build, ["-c", program], heap="128k")
    assert result.returncode == 0, result.stdout + result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    sizes = {n: (mpy_build / (n.replace(".", "/") + ".mpy")).stat().st_size for n in names}
    out = ROOT / "build" / "screens"
    out.mkdir(parents=True, exist_ok=True)
    (out / "footprint.json").write_text(json.dumps({"heap": got, "mpy": sizes}, indent=1))
    over = {n: got[n] for n in names if got[n] > FOOTPRINT_BOUNDS[n]}
    assert not over, f"import heap above its bound: {over} (all: {got})"
