"""The committed vectors match what protocol/ and the independent reference encoder produce."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_vectors_are_current_and_agree_with_the_reference_encoder() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "vectors" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
