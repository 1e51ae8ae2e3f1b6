"""Run the portable suite (tests/portable) under the real MicroPython unix port.

Modules are first compiled with mpy-cross, as they would be for a device, and
run from the .mpy files: compiling from source on the device would cost heap
that a real deployment never spends. Each module runs in a 64 KB heap unless it
declares MICROPYTHON_HEAP with its reason (e.g. both link ends in one process).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mpy import add_runner, compile_to, run_micropython

ROOT = Path(__file__).resolve().parent.parent
PORTABLE = ROOT / "tests" / "portable"
DEFAULT_HEAP = "64k"  # the heap for the vector suite; about what a device leaves free


@pytest.fixture(scope="session")
def mpy_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """protocol/ and tests/portable/ compiled to .mpy (run.py stays source: it is __main__)."""
    out = tmp_path_factory.mktemp("mpy")
    (out / "protocol").mkdir()
    sources = [(p, out / "protocol" / (p.stem + ".mpy")) for p in (ROOT / "protocol").glob("*.py")]
    sources += [(p, out / (p.stem + ".mpy")) for p in PORTABLE.glob("*.py") if p.stem != "run"]
    for src, dst in sources:
        compile_to(src, dst)
    shutil.copytree(ROOT / "tests" / "vectors", out / "vectors", dirs_exist_ok=True)
    add_runner(out)
    return out


def heap_for(module: str) -> str:
    m = re.search(r'^MICROPYTHON_HEAP = "(\w+)"', (PORTABLE / f"{module}.py").read_text(), re.M)
    return m.group(1) if m else DEFAULT_HEAP


def run_portable(build: Path, module: str, heap: str) -> subprocess.CompletedProcess[str]:
    return run_micropython(
        build,
        ["run.py", module],
        heap=heap,
        timeout=600,
        env={"HCP_VECTORS": str(build / "vectors")},
    )


MODULES = sorted(p.stem for p in PORTABLE.glob("test_*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_portable_module_passes_on_micropython(mpy_build: Path, module: str) -> None:
    result = run_portable(mpy_build, module, heap_for(module))
    last = result.stdout.strip().splitlines()[-1:] or ["<no output>"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert last[0].endswith(" 0 failed") and not last[0].startswith("0 passed"), last[0]
