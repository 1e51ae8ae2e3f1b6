"""``hcp factory-test`` over a real pty against the CPython bench peer (both modes)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edge_agent import registry
from protocol import messages as M
from tests.agent.helpers import Pty
from tests.tools.bench_peer import BenchPeer
from tests.tools.conftest import Run, store_at


def test_factory_line_unprovisioned_device_passes(
    hall_dir: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    pty = Pty(hall_dir / "tty")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nmaybe\ny\ny\n"))
    with BenchPeer(pty.master, factory_id="F00100") as peer:
        code, out, err = run("factory-test", "--port", str(pty.path), "--timeout", "5")
    assert code == 0, err
    assert [s.items for s in peer.selftests] == [[6], [5], [1], [2], [3], [4]]
    assert "press each button in turn, left to right: 非常满意" in out
    assert "factory test passed" in out and "F00100" in out
    records = sorted((hall_dir / "data" / "factory-tests").glob("F00100-*.json"))
    report = json.loads(records[-1].read_text())
    assert report["passed"] and report["mode"] == "provisioning" and report["board"] == "unix-sim"
    assert [r["name"] for r in report["items"]] == [
        "link",
        "flash",
        "buttons",
        "display",
        "LED",
        "buzzer",
    ]
    assert records[-1].with_suffix(".txt").read_text().endswith("=> pass\n")


def test_failures_are_reported_and_saved(
    hall_dir: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = bytes(range(32))
    store = store_at(hall_dir)
    registry.add_device(store, device_id="EV-0042", key=key, kind=M.KIND_EVALUATOR, now_ms=1)
    store.close()
    pty = Pty(hall_dir / "tty")
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # the LED did not blink
    with BenchPeer(pty.master, key=key, device_id="EV-0042", kind=M.KIND_EVALUATOR) as peer:
        peer.failing = {1}  # a button never pressed
        code, out, err = run(
            "factory-test",
            "--port",
            str(pty.path),
            "--device",
            "EV-0042",
            "--items",
            "buttons,led,flash",
        )
    assert code == 1
    assert "factory test failed: 2 item(s)" in err
    assert "=> FAIL" in out and "no press" in out
    report = json.loads(
        sorted((hall_dir / "data/factory-tests").glob("EV-0042-*.json"))[-1].read_text()
    )
    assert report["mode"] == "normal" and not report["passed"]
    by = {r["name"]: r for r in report["items"]}
    assert by["buttons"]["device_ok"] is False and by["buttons"]["detail"] == "no press"
    assert by["LED"]["device_ok"] is True and by["LED"]["operator_ok"] is False
    assert by["flash"]["ok"] is True
    # the wrong key: the device's frames do not verify, nothing is tested
    store = store_at(hall_dir)
    registry.add_device(store, device_id="EV-0042", key=bytes(32), now_ms=2)
    store.close()
    with BenchPeer(pty.master, key=key, device_id="EV-0042") as peer:
        code, _, err = run(
            "factory-test", "--port", str(pty.path), "--device", "EV-0042", "--timeout", "2"
        )
        assert peer.selftests == []
    assert code == 1 and "do not verify" in err and "run hcp provision first" in err
