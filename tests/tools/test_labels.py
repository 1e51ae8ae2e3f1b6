"""``hcp labels``: the printed matrix is the QR unit's matrix, read back from the image."""

from __future__ import annotations

import json
from pathlib import Path

import segno
from PIL import Image

from edge_agent import qr
from edge_agent.config import load_config
from tests.tools.conftest import Run, store_at
from tools import labels


def _bind(run: Run) -> None:
    for window, staff, name, number in (
        ("W01", "S1001", "张三", "1001"),
        ("W02", "S1002", "李四", "1002"),
        ("W03", "S1003", "王五", "1003"),
    ):
        code, _, err = run(
            "provision",
            "staff",
            "--window",
            window,
            "--staff",
            staff,
            "--name",
            name,
            "--number",
            number,
            "--department",
            "市人力资源和社会保障局",
        )
        assert code == 0, err


def _read_matrix(page: Image.Image, p: labels.Placement) -> list[list[int]]:
    half = p.module_px // 2
    return [
        [
            int(page.getpixel((p.x + c * p.module_px + half, p.y + r * p.module_px + half)) < 128)
            for c in range(p.size)
        ]
        for r in range(p.size)
    ]


def test_labels_carry_the_same_matrix_as_the_qr_unit(hall_dir: Path, run: Run) -> None:
    _bind(run)
    code, out, err = run("labels", "-o", "labels.png")
    assert code == 0, err
    assert "wrote labels.png: 3 labels on 1 page(s)" in out
    sheet = Image.open(hall_dir / "labels.png").convert("L")
    assert sheet.size == (2480, 3508)  # A4 at 300 dpi
    cfg = load_config(hall_dir / "agent.toml")
    store = store_at(hall_dir)
    items = labels.collect(store, cfg, None)
    _, placements = labels.render_sheet(items, cfg.hall_id)
    secret = store.secret("qr.1")
    for item, p in zip(items, placements, strict=True):
        read = _read_matrix(sheet, p)
        code_ = item["code"]
        assert read == qr.unpack_bits(code_.size, code_.bits)
        # the same URL rendered by segno directly, and a token the hub verifies as static
        expected = [list(r) for r in segno.make_qr(code_.url, error="m").matrix_iter(border=0)]
        assert read == expected
        claims = qr.verify_token(code_.url.split("?t=")[1], {1: secret}, now_s=0)
        assert (claims.window_id, claims.staff_id, claims.case_no) == (
            item["window_id"],
            item["staff_id"],
            None,
        )
    store.close()
    # the PDF has the same content; a second run draws the same codes
    code, out, _ = run("labels", "-o", "labels.pdf", "--window", "W02")
    assert code == 0 and (hall_dir / "labels.pdf").read_bytes().startswith(b"%PDF")
    store = store_at(hall_dir)
    again = labels.collect(store, cfg, ["W02"])
    assert again[0]["code"] == items[1]["code"]
    store.close()


def test_labels_match_the_provisioned_bundle(hall_dir: Path, run: Run) -> None:
    from edge_agent import registry
    from edge_agent.store import now_ms

    _bind(run)
    store = store_at(hall_dir)
    registry.add_device(
        store, device_id="QR-1", key=bytes(16), kind=2, window_id="W02", now_ms=now_ms()
    )
    store.close()
    code, _, err = run("provision", "bundle", "QR-1")
    assert code == 0, err
    offline = json.loads((hall_dir / "data/devices/QR-1/offline.json").read_text())
    cfg = load_config(hall_dir / "agent.toml")
    store = store_at(hall_dir)
    item = labels.collect(store, cfg, ["W02"])[0]
    store.close()
    assert offline["qr"] == {"size": item["code"].size, "bits": item["code"].bits.hex()}
    assert offline["staff"]["name"] == "李四"


def test_labels_errors(hall_dir: Path, run: Run) -> None:
    code, _, err = run("labels", "-o", "labels.png")
    assert code == 1 and "no window has a staff member bound" in err
    code, _, err = run("labels", "-o", "labels.svg")
    assert code == 1 and "must end in .pdf or .png" in err
    assert not (hall_dir / "labels.png").exists()
