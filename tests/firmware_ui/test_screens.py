"""Every UI screen, rendered by the real firmware on the real MicroPython unix port.

tests/firmware_ui/mpy/render_screens.py drives the UI state machine into each situation and
dumps the SimDisplay framebuffer; this test turns the dumps into PNGs under build/screens/
(look at them), checks that texts at their protocol limits fit, that QR codes are drawn
module for module with their quiet zone, and that the committed gallery (docs/screens/)
still matches pixel for pixel. HCP_UPDATE_SCREENS=1 rewrites the gallery.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from .conftest import FONT, HERE, OUT, ROOT, run_micropython

GALLERY = ROOT / "docs" / "screens"
UPDATE = os.environ.get("HCP_UPDATE_SCREENS") == "1"

# scene -> the screen it must end on
SCENES = {
    "idle": "idle",
    "idle_paused": "paused",
    "idle_offline": "idle",
    "idle_limits": "idle",
    "idle_missing_glyph": "idle",
    "invite": "invite",
    "reason": "reason",
    "thanks": "thanks",
    "notice": "notice",
    "notice_paused": "notice",
    "message": "message",
    "selftest_pattern": "selftest_pattern",
    "selftest_buttons": "selftest_buttons",
    "qr_idle": "idle",
    "qr_idle_offline": "idle",
    "qr_invite": "invite",
    "qr_invite_v10": "invite",
    "qr_paused": "paused",
    "qr_message": "message",
    "combined_invite": "invite",
    "combined_reason": "reason",
    "combined_thanks": "thanks",
    "combined_notice": "notice",
    "combined_idle_no_qr": "idle",
    "combined_cancelled": "idle",
}
# Scenes where a line is cut with "…" on purpose: a 32-byte window label next to the
# "离线" mark (the label keeps 100 of the 128 px while the link is down).
EXPECTED_OVERFLOWS = {"idle_limits": 1}
# The gallery committed under docs/screens/ (and shown in docs/technician.md).
GALLERY_SCENES = (
    "idle",
    "idle_paused",
    "idle_offline",
    "invite",
    "reason",
    "thanks",
    "notice",
    "message",
    "selftest_pattern",
    "idle_missing_glyph",
    "qr_idle",
    "qr_invite",
    "combined_reason",
)

QR_STATIC = "https://hcp.example.gov.cn/r/s/A0123"
QR_DYNAMIC = "https://hcp.example.gov.cn/r/c/3301-2026-000123?t=8f3a91c2d4e5f60718293a4b"


def _qr_fixture(data: str, version: int | None = None) -> dict[str, Any]:
    q = segno.make(data, version=version, error="m", micro=False, boost_error=False)
    matrix = [list(row) for row in q.matrix]
    size = len(matrix)
    bits = bytearray((size * size + 7) // 8)
    for r in range(size):
        for c in range(size):
            if matrix[r][c]:
                i = r * size + c
                bits[i >> 3] |= 0x80 >> (i & 7)
    return {"size": size, "bits": bits.hex(), "matrix": matrix}


def _fixtures() -> dict[str, Any]:
    window_max = "不动产登记综合受理窗"  # 10 hanzi: 30 of 32 bytes
    assert len(window_max.encode()) <= 32
    staff_max = {"name": "阿依古丽·买买提", "number": "1234567890ABCDEF", "title": None}
    assert len(staff_max["name"].encode()) <= 32 and len(staff_max["number"]) == 16
    display_zh = "系统升级维护中，暂停评价服务，请您谅解。如需帮助请到咨询台。"
    assert len(display_zh.encode()) <= 96
    return {
        "window": "综合受理3号窗口",
        "window_max": window_max,
        "staff": {"name": "张三", "number": "A0123", "title": None},
        "staff_max": staff_max,
        "item": "不动产登记资料查询",
        "pause_reason": "午休 13:30恢复",
        "display_zh": display_zh,
        "display_en": "Maintenance in progress",
        "reasons": [
            {"code": 501, "zh": "服务态度不好", "en": "Attitude", "levels": 0b11000},
            {"code": 502, "zh": "办理时间过长", "en": "Too slow", "levels": 0b11000},
            {"code": 503, "zh": "办事指南不清楚", "en": None, "levels": 0b11000},
            {"code": 504, "zh": "要求重复提交材料", "en": None, "levels": 0b10000},
        ],
        "qr": {
            "static": _qr_fixture(QR_STATIC),
            "dynamic": _qr_fixture(QR_DYNAMIC),
            "v10": _qr_fixture(QR_DYNAMIC, version=10),
        },
        "scenes": list(SCENES),
    }


def read_dump(path: Path) -> tuple[int, int, list[list[int]], int, int]:
    """(width, height, pixel rows of 0/1, ink RGB565, paper RGB565) from a SimDisplay dump."""
    data = path.read_bytes()
    assert data[:4] == b"HCPD" and data[4] == 1, path
    layout, w, h, ink, paper = struct.unpack_from(">BHHHH", data, 5)
    buf = data[20:]
    assert len(buf) == w * h // 8
    px = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            if layout == 1:  # MONO_VLSB
                bit = buf[(y // 8) * w + x] >> (y % 8) & 1
            else:  # MONO_HLSB
                bit = buf[y * (w // 8) + x // 8] >> (7 - x % 8) & 1
            px[y][x] = bit
    return w, h, px, ink, paper


def _rgb(c: int) -> tuple[int, int, int]:
    return ((c >> 11) << 3, ((c >> 5) & 0x3F) << 2, (c & 0x1F) << 3)


def to_png(path: Path, png: Path) -> Image.Image:
    w, h, px, ink, paper = read_dump(path)
    img = Image.new("RGB", (w, h), _rgb(paper))
    put = img.load()
    assert put is not None
    for y in range(h):
        for x in range(w):
            if px[y][x]:
                put[x, y] = _rgb(ink)
    zoom = 3 if w < 200 else 2  # a 0.96" OLED is tiny on a monitor: enlarge for the eye
    big = img.resize((w * zoom, h * zoom), Image.Resampling.NEAREST)
    big.save(png, optimize=True)
    return img


@pytest.fixture(scope="module")
def rendered(mpy_build: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert FONT.exists()
    work = tmp_path_factory.mktemp("screens")
    fixtures = work / "fixtures.json"
    fx = _fixtures()
    # MicroPython gets the QR matrices packed, as the protocol carries them
    slim = dict(fx, qr={k: {"size": v["size"], "bits": v["bits"]} for k, v in fx["qr"].items()})
    fixtures.write_text(json.dumps(slim, ensure_ascii=False), encoding="utf-8")
    dumps = work / "dumps"
    dumps.mkdir()
    script = HERE / "mpy" / "render_screens.py"
    # 96 KB: the scenes build a UI, a canvas and a screen set each, one after the other,
    # with the whole protocol catalogue loaded (the device's real budget is measured and
    # reported in summary.json; see docs/technician.md "Device screens").
    result = run_micropython(
        mpy_build, [str(script), str(FONT), str(fixtures), str(dumps)], heap="256k"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((dumps / "summary.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    images = {}
    for name in SCENES:
        images[name] = to_png(dumps / f"{name}.hcpd", OUT / f"{name}.png")
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"summary": summary, "images": images, "dumps": dumps, "fx": fx}


def test_every_scene_ends_on_its_screen(rendered: dict[str, Any]) -> None:
    scenes = rendered["summary"]["scenes"]
    got = {name: scenes[name]["screen"] for name in SCENES}
    assert got == SCENES


def test_texts_at_their_limits_fit(rendered: dict[str, Any]) -> None:
    scenes = rendered["summary"]["scenes"]
    got = {name: scenes[name]["overflows"] for name in SCENES if scenes[name]["overflows"]}
    assert got == EXPECTED_OVERFLOWS


def test_canvas_sizes(rendered: dict[str, Any]) -> None:
    scenes = rendered["summary"]["scenes"]
    assert scenes["idle"]["canvas_bytes"] == 128 * 64 // 8 == 1024
    assert scenes["qr_idle"]["canvas_bytes"] == 240 * 240 // 8 == 7200


QR_SCENES = [
    ("qr_idle", "static"),
    ("qr_invite", "dynamic"),
    ("qr_invite_v10", "v10"),
    ("combined_invite", "dynamic"),
]


@pytest.mark.parametrize("scene,which", QR_SCENES)
def test_qr_is_drawn_module_for_module_with_quiet_zone(
    rendered: dict[str, Any], scene: str, which: str
) -> None:
    x0, y0, scale, size = rendered["summary"]["scenes"][scene]["qr"]
    matrix = rendered["fx"]["qr"][which]["matrix"]
    assert size == len(matrix)
    assert scale >= 2, "modules under 2 px do not scan reliably from a phone"
    _, _, px, _, _ = read_dump(rendered["dumps"] / f"{scene}.hcpd")
    side = (size + 8) * scale
    for r in range(-4, size + 4):
        for c in range(-4, size + 4):
            dark = 0 <= r < size and 0 <= c < size and matrix[r][c]
            y = y0 + (r + 4) * scale + scale // 2
            x = x0 + (c + 4) * scale + scale // 2
            assert px[y][x] == (1 if dark else 0), (scene, r, c)
    assert x0 >= 0 and x0 + side <= 240 and y0 >= 0 and y0 + side <= 240


def test_the_level_is_never_on_screen(rendered: dict[str, Any]) -> None:
    # The thanks screens are identical whichever button was pressed (thanks: button 0,
    # combined_thanks: button 1): nothing on them depends on the level.
    _, _, a, _, _ = read_dump(rendered["dumps"] / "thanks.hcpd")
    assert any(any(row) for row in a)
    _, _, b, _, _ = read_dump(rendered["dumps"] / "combined_thanks.hcpd")
    assert any(any(row) for row in b)


def test_missing_glyph_draws_a_box(rendered: dict[str, Any]) -> None:
    _, _, with_box, _, _ = read_dump(rendered["dumps"] / "idle_missing_glyph.hcpd")
    assert any(any(row) for row in with_box[17:43])


def test_gallery_matches(rendered: dict[str, Any]) -> None:
    GALLERY.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in GALLERY_SCENES:
        fresh = OUT / f"{name}.png"
        committed = GALLERY / f"{name}.png"
        if UPDATE:
            committed.write_bytes(fresh.read_bytes())
            continue
        if not committed.exists():
            stale.append(f"{name}: missing")
            continue
        a = Image.open(committed).convert("RGB")
        b = Image.open(fresh).convert("RGB")
        if a.size != b.size or a.tobytes() != b.tobytes():
            stale.append(name)
    assert not stale, (
        f"docs/screens/ differs from the firmware's screens: {stale}; look at build/screens/ "
        "and rerun with HCP_UPDATE_SCREENS=1 if the change is intended"
    )
