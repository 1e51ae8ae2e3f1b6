"""Every MicroPython source compiles with mpy-cross, and a compiled module loads.

Devices run precompiled .mpy files (smaller, no compile-time RAM spike on import). mpy-cross
rejects what the MicroPython compiler rejects (syntax CPython accepts, such as `match`
statements and `def f[T]()` type parameters), so a file that fails here would fail on the
device even when every CPython test passes. Files are found at collection time: new modules
are covered without editing this test.
"""

import os
import subprocess
from pathlib import Path

import pytest

from tests.mpy import tool

ROOT = Path(__file__).resolve().parent.parent
DEVICE_CODE = ("protocol", "firmware")  # what runs under MicroPython (DESIGN.md layout)
MPY_MAGIC = b"M"  # first byte of every .mpy file, followed by the format version


def _sources() -> list[str]:
    found = []
    for folder in DEVICE_CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found.append(path.relative_to(ROOT).as_posix())
    return found


def compile_mpy(source: str, out_dir: Path) -> Path:
    """Compile ROOT/source to out_dir/<same path>.mpy; return the .mpy path."""
    target = out_dir / Path(source).with_suffix(".mpy")
    target.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [tool("mpy-cross"), "-o", str(target), source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"mpy-cross {source}:\n{result.stdout}{result.stderr}"
    return target


@pytest.mark.parametrize("source", _sources())
def test_compiles(source: str, tmp_path: Path) -> None:
    mpy = compile_mpy(source, tmp_path)
    data = mpy.read_bytes()
    assert data[:1] == MPY_MAGIC and len(data) > 4, f"{mpy} is not an .mpy file"


def test_compiled_module_loads_under_micropython(tmp_path: Path) -> None:
    for source in ("protocol/__init__.py", "protocol/errors.py"):
        compile_mpy(source, tmp_path)
    assert not list(tmp_path.rglob("*.py")), "only .mpy files may be importable here"
    program = (
        "import protocol.errors as e\n"
        "print(e.__file__)\n"
        "x = e.CborError('cbor.length', 'text of 9 bytes exceeds MAX_LENGTH=8')\n"
        "print(isinstance(x, e.ProtocolError), x.code, str(x))\n"
    )
    env = dict(os.environ, MICROPYPATH=str(tmp_path))  # the .mpy files and nothing else
    result = subprocess.run(
        [tool("micropython"), "-c", program],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "protocol/errors.mpy",
        "True cbor.length cbor.length: text of 9 bytes exceeds MAX_LENGTH=8",
    ]
