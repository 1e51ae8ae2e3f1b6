"""Fixtures for the firmware UI tests: the .mpy build and the MicroPython runner.

tests/firmware_ui/mpy/ holds modules that need framebuf (MicroPython only): pytest must not
import them; test_micropython.py runs them under the unix port.
"""

import subprocess
from pathlib import Path

import pytest

from tests.mpy import compile_to
from tests.mpy import run_micropython as run

collect_ignore = ["mpy"]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FONT = ROOT / "firmware" / "fonts" / "hcp12.bin"
OUT = ROOT / "build" / "screens"  # PNGs to look at (build/ is not committed)


@pytest.fixture(scope="session")
def mpy_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """protocol/ and firmware/ as a device gets them (.mpy), plus the test modules."""
    out = tmp_path_factory.mktemp("fwui_mpy")
    for package in ("protocol", "firmware"):
        for src in (ROOT / package).rglob("*.py"):
            compile_to(src, out / src.relative_to(ROOT).with_suffix(".mpy"))
    for folder in (HERE / "portable", HERE / "mpy"):
        for src in folder.glob("*.py"):
            if src.stem != "conftest" and src.stem != "render_screens":
                compile_to(src, out / (src.stem + ".mpy"))
    return out


def run_micropython(
    build: Path, args: list[str], heap: str = "64k", timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    return run(build, args, heap=heap, timeout=timeout, env={"HCP_FONT": str(FONT)})
