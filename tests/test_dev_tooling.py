"""The development checks themselves: the MicroPython stub check and scripts/test.

The stub check is proven the only way that counts: scratch modules that use what MicroPython
lacks must fail it, each at the right line, and idiomatic MicroPython code must pass.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check_micropython_types.py"
SCRIPTS_TEST = ROOT / "scripts" / "test"

# (module source, line that must be reported, what the report must say). The check sees only
# what mypy can infer: `def f(n): return n.bit_length()` passes, because n's type is unknown
# in untyped code; the portable tests under MicroPython catch that kind at run time.
VIOLATIONS: dict[str, tuple[str, int, str]] = {
    "uses_dataclasses": ("import dataclasses\n", 1, 'module named "dataclasses"'),
    "uses_typing": ("import typing\n", 1, "MicroPython cannot import 'typing'"),
    "uses_abc": ("from collections.abc import Iterable\n", 1, "cannot import 'collections.abc'"),
    "uses_hub": ("import hub\n", 1, "MicroPython cannot import 'hub'"),
    "uses_bit_length": (
        "X = 5\nY = X.bit_length()\n",
        2,
        '"int" has no attribute "bit_length"',
    ),
    "uses_ljust": ("def f():\n    return 'a'.ljust(4)\n", 2, '"str" has no attribute "ljust"'),
    "uses_getsizeof": ("import sys\n\n\ndef f():\n    return sys.getsizeof(1)\n", 5, '"getsizeof"'),
    "uses_struct_class": ("import struct\n\nS = struct.Struct('<I')\n", 3, '"Struct"'),
    "uses_tobytes": ("def f():\n    return memoryview(b'a').tobytes()\n", 2, '"tobytes"'),
    "uses_file_not_found": (
        "def f():\n    try:\n        open('x')\n    except FileNotFoundError:\n        pass\n",
        4,
        'Name "FileNotFoundError" is not defined',
    ),
    "uses_os_path": ("import os\n\nP = os.path.join('a', 'b')\n", 3, 'no attribute "path"'),
    "uses_insert": ("def f():\n    b = bytearray(2)\n    b.insert(0, 1)\n", 3, "_NotInMicroPython"),
}

CLEAN = '''"""What MicroPython has: none of this may be reported."""
import struct
import sys
import time
from binascii import hexlify

from micropython import const

try:
    from typing import Any
except ImportError:
    pass

LIMIT = const(64)


def elapsed(start):
    return time.ticks_diff(time.ticks_ms(), start)


def pack(n):
    buf = bytearray(4)
    struct.pack_into(">I", buf, 0, n)
    buf.extend(b"x")
    return hexlify(bytes(buf)).decode().upper(), sys.implementation.name, n.to_bytes(2, "big")


class Error(Exception):
    pass


def fail():
    try:
        raise OSError(2)
    except OSError as e:
        return e.args[0] + LIMIT
'''


def run_check(*paths: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), "--work-dir", str(work), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
        check=False,
    )


def test_stub_check_reports_what_micropython_lacks(tmp_path: Path) -> None:
    pkg = tmp_path / "scratch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, (source, _, _) in VIOLATIONS.items():
        (pkg / f"{name}.py").write_text(source)
    result = run_check(pkg, work=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    for name, (_, line, words) in VIOLATIONS.items():
        pattern = rf"scratch/{name}\.py:{line}: error: .*"
        reports = [m.group(0) for m in re.finditer(pattern, out)]
        assert reports, f"{name}: nothing reported at line {line}\n{out}"
        # mypy --pretty wraps long messages onto the next line: compare unwrapped text
        assert words in " ".join(out.split()), f"{name}: {words!r} not in\n{out}"


def test_stub_check_passes_idiomatic_micropython(tmp_path: Path) -> None:
    pkg = tmp_path / "clean"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "device.py").write_text(CLEAN)
    result = run_check(pkg, work=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


INFERENCE_NOISE = """
class Reader:
    def __init__(self):
        self.data = b""

    def feed(self, chunk):
        self.data = bytearray(chunk)
"""


def test_stub_check_leaves_inferred_types_to_the_cpython_tests(tmp_path: Path) -> None:
    """mypy's opinions about inferred types in untyped code are not about MicroPython: they
    are counted, not failed on, unless --all asks for them."""
    pkg = tmp_path / "noisy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "reader.py").write_text(INFERENCE_NOISE)
    result = run_check(pkg, work=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 other mypy findings about inferred types not shown (--all)" in result.stdout
    result = run_check(pkg, Path("--all"), work=tmp_path)
    assert result.returncode == 1
    assert "reader.py:7: error: Incompatible types in assignment" in result.stdout


def test_clean_sample_really_runs_on_micropython(tmp_path: Path) -> None:
    """The sample above is what MicroPython accepts: prove it on the interpreter."""
    exe = shutil.which("micropython", path=str(Path(sys.executable).parent))
    assert exe is not None
    (tmp_path / "device.py").write_text(CLEAN)
    result = subprocess.run(
        [exe, "-c", "import device; print(device.pack(7)[0], device.fail())"],
        env=dict(os.environ, MICROPYPATH=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["0000000778", "66"]


# ---------------------------------------------------------------- scripts/test, .ci/run


def apt_dry_run(packages: str, *, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HCP_APT_DRY_RUN="1", HCP_APT_PACKAGES=packages)
    command = ["bash", str(SCRIPTS_TEST)]
    if as_nobody:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
MISSING = "hcp-no-such-package"


def test_apt_packages_the_suite_needs_are_present_on_this_machine() -> None:
    # The dry run names nothing to install once scripts/test has run here (CI runs it first).
    result = subprocess.run(
        ["bash", str(SCRIPTS_TEST)],
        env={k: v for k, v in os.environ.items() if k != "HCP_APT_PACKAGES"}
        | {"HCP_APT_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("==> Debian packages: all present ("), result.stdout
    for package in ("postgresql", "fonts-wqy-zenhei"):
        assert package in result.stdout


@needs_dpkg
def test_apt_present_packages_need_nothing() -> None:
    result = apt_dry_run("bash coreutils")
    assert result.returncode == 0, result.stderr
    assert "all present" in result.stdout and "would run" not in result.stdout


@needs_dpkg
@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs only as root")
def test_apt_root_installs_what_is_missing() -> None:
    result = apt_dry_run(f"bash {MISSING}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "would run: apt-get update",
        "would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"--no-install-recommends {MISSING}",
    ]


@needs_dpkg
def test_apt_non_root_names_missing_packages_and_stops() -> None:
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        result = apt_dry_run(f"bash {MISSING}", as_nobody=True)
    else:
        result = apt_dry_run(f"bash {MISSING}")
    assert result.returncode == 1
    assert f"missing Debian packages: {MISSING}" in result.stderr
    assert f"sudo apt-get install -y {MISSING}" in result.stderr
    assert "would run" not in result.stdout


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    body = [line for line in ci if line.strip() and not line.startswith("#")]
    assert body[-1] == "exec scripts/test"
    assert body[:-1] == ["set -euo pipefail", 'cd "$(dirname "${BASH_SOURCE[0]}")/.."']
    assert "scripts/test" in (ROOT / "README.md").read_text()
    for path in (ROOT / ".ci" / "run", SCRIPTS_TEST):
        assert os.access(path, os.X_OK), f"{path} is not executable"


def test_readme_demo_command_sets_itself_up() -> None:
    demo = ROOT / "scripts" / "demo"
    assert "scripts/demo" in (ROOT / "README.md").read_text()
    assert os.access(demo, os.X_OK), f"{demo} is not executable"
    body = demo.read_text()
    # the same environment set-up as the test command, then the demo itself
    assert 'source "$ROOT/scripts/lib/env.sh"' in body
    assert 'source "$ROOT/scripts/lib/env.sh"' in SCRIPTS_TEST.read_text()
    assert body.rstrip().endswith('exec "$UV" run --no-sync hcp demo "$@"')
