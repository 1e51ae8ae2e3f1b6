"""The device font: the committed file is what tools/fontgen.py builds, and covers the text.

The rebuild needs the source font (Debian's fonts-wqy-zenhei). It is never skipped: when the
package is missing and the tests run as root (CI, scripts/test on a fresh machine), the
fixture installs it; otherwise the test fails and says what to install.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tools import fontgen

from .conftest import FONT, ROOT

MANIFEST = FONT.with_suffix(".json")


def _font() -> tuple[dict[str, int], set[int]]:
    data = FONT.read_bytes()
    magic, version, height, baseline, stride, count, rec, flags, box, _ = struct.unpack_from(
        ">4sBBBBHHBBH", data
    )
    assert magic == b"HCPF" and version == 1
    assert (height, baseline, box) == (fontgen.HEIGHT, fontgen.ABOVE, fontgen.CELL)
    assert rec == 1 + height * stride
    assert len(data) == 16 + count * (2 + rec)
    cps = struct.unpack_from(f">{count}H", data, 16)
    assert list(cps) == sorted(set(cps)), "code points must be sorted and unique"
    return {"count": count, "flags": flags, "height": height}, set(cps)


def test_committed_font_matches_its_manifest() -> None:
    meta = json.loads(MANIFEST.read_text(encoding="utf-8"))
    data = FONT.read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert len(data) == meta["bytes"]
    head, _ = _font()
    assert head["count"] == meta["glyphs"]
    assert head["flags"] & fontgen.FLAG_ASCII_DIRECT
    assert meta["missing"] == "" and meta["clipped"] == ""


def test_font_covers_gb2312_ascii_and_every_screen_text() -> None:
    _, have = _font()
    need = {ord(c) for c in fontgen.default_charset()}
    assert len([c for c in fontgen.gb2312_chars() if "\u4e00" <= c <= "\u9fff"]) == 6763
    assert need <= have, f"missing {sorted(need - have)[:20]}"
    # every literal string the screens draw
    texts = []
    for module in ("screens.py", "screens_small.py", "screens_large.py"):
        tree = ast.parse((ROOT / "firmware" / "ui" / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    missing = {ch for t in texts for ch in t if ord(ch) not in have and ch not in "\n"}
    assert not missing, f"screen text without glyphs: {sorted(missing)}"


@pytest.fixture(scope="module")
def source_font() -> Path:
    """The source font, installed from Debian when missing and the tests run as root."""
    if not fontgen.SOURCE.exists():
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            pytest.fail(
                f"{fontgen.SOURCE} is missing: install it with "
                f"`sudo apt-get install {fontgen.SOURCE_PACKAGE}` (the font rebuild test needs it)"
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = [apt, "install", "-y", "--no-install-recommends", fontgen.SOURCE_PACKAGE]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run([apt, "update"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=True)
    return fontgen.SOURCE


def test_font_rebuilds_byte_for_byte(source_font: Path) -> None:
    meta = json.loads(MANIFEST.read_text(encoding="utf-8"))
    got = hashlib.sha256(source_font.read_bytes()).hexdigest()
    assert got == meta["source"]["sha256"], (
        f"{source_font} is not the file hcp12.bin was built from "
        f"({fontgen.SOURCE_PACKAGE} {meta['source']['version']}): rebuild with "
        "`python -m tools.fontgen`, look at the screens, and commit both files"
    )
    data, missing, clipped = fontgen.build(fontgen.default_charset(), source_font)
    assert not missing and not clipped
    assert data == FONT.read_bytes(), "tools/fontgen.py no longer builds the committed font"


def test_subset_build_is_deterministic(source_font: Path) -> None:
    a = fontgen.build("请您对本次服务进行评价A0123", source_font)[0]
    b = fontgen.build("价评行进务服次本对您请3210A", source_font)[0]
    assert a == b
    assert struct.unpack_from(">H", a, 8)[0] == 16
