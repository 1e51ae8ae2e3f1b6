"""Build firmware/storage for MicroPython (.mpy, as a device loads it) and run scripts on it.

The build holds firmware/storage, the protocol module it uses (crc) and the helpers in
mp/ compiled with mpy-cross; scripts run under the real unix port with MICROPYPATH
pointing at the build and nothing else, so a missing module is a failure here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mpy import add_runner, compile_to, tool  # noqa: F401  (tool: re-exported for the storage tests)
from tests.mpy import run_micropython as run

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MP = HERE / "mp"
DEVICE_SOURCES = (
    "firmware/__init__.py",
    "firmware/compat.py",
    "firmware/storage/*.py",
    "protocol/__init__.py",
    "protocol/crc.py",
)


def build_storage(out: Path) -> Path:
    """Compile the storage package and its dependencies (and mp/ helpers) into out."""
    for pattern in DEVICE_SOURCES:
        for src in sorted(ROOT.glob(pattern)):
            compile_to(src, out / src.relative_to(ROOT).with_suffix(".mpy"))
    for src in MP.glob("*.py"):
        compile_to(src, out / f"{src.stem}.mpy")
    add_runner(out)
    return out


@pytest.fixture(scope="session")
def storage_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_storage(tmp_path_factory.mktemp("storage-mpy"))


def micropython(
    build: Path,
    args: list[str],
    heap: str = "64k",
    timeout: float = 300,
    tmp: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return run(build, args, heap=heap, timeout=timeout, env={"HCP_TMP": str(tmp)} if tmp else None)


@pytest.fixture
def mp_tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
