"""The tools against the real firmware on the MicroPython unix port (firmware/unix_rom.py).

One board on the bench, as a technician meets it: flashed with ``device.json`` but no key,
so it boots into provisioning mode. ``hcp provision`` gives it an identity over a pty cable
(tools.flash_relay.VirtualCable: the firmware opens its end by name); the firmware reboots
into normal mode; ``hcp factory-test`` drives its selftest (buttons pressed through the
simulator's control channel, the technician's answers on stdin); then the real agent takes
the same cable and accepts the device's signed frames.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent import registry
from tests.agent.helpers import AgentThread, make_config, wait_for
from tests.firmware_app.device import Device, build_firmware, device_json, seed_flash
from tests.tools.conftest import Run, store_at
from tools.flash_relay import VirtualCable


@pytest.fixture(scope="module")
def fw_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("tools_fw"))


@pytest.fixture
def bench(fw_build: Path, hall_dir: Path) -> Iterator[tuple[VirtualCable, Device]]:
    cable = VirtualCable(hall_dir / "usb", board_path=hall_dir / "dev-serial")
    image = hall_dir / "flash.img"
    seed_flash(fw_build, image, device_json(str(cable.board_path), "evaluator"), key=None)
    device = Device(fw_build, image).start()
    yield cable, device
    device.kill()
    cable.unplug()


def _press_buttons_when_asked(device: Device, stop: threading.Event) -> None:
    ctl = device.control()
    try:
        while not stop.is_set():
            if ctl("state").get("screen") == "selftest_buttons":
                for b in range(5):
                    ctl("click", button=b)
                    time.sleep(0.1)
                return
            time.sleep(0.05)
    finally:
        ctl.close()


def test_provision_factory_test_and_agent_with_real_firmware(
    bench: tuple[VirtualCable, Device],
    hall_dir: Path,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cable, device = bench
    port = str(cable.path)
    code, out, err = run(
        "provision",
        "device",
        "--port",
        port,
        "--window",
        "W01",
        "--staff",
        "S1001",
        "--name",
        "张三",
        "--number",
        "1001",
        "--board",
        "unix-sim",
        "--timeout",
        "20",
    )
    assert code == 0, err + device.output()
    assert "connected: factory id F-0001, evaluator, board unix-sim" in out
    store = store_at(hall_dir)
    key = registry.device_key(store, "EV-F-0001")
    store.close()
    assert key is not None
    # The firmware wrote the identity and reboots into normal mode. A power cycle here too:
    # the unix ROM's in-process reboot could not re-bind its control port (EADDRINUSE).
    device.kill()
    device.start()
    # its selftest, bench side
    monkeypatch.setattr("sys.stdin", io.StringIO("y\ny\ny\n"))
    stop = threading.Event()
    presser = threading.Thread(target=_press_buttons_when_asked, args=(device, stop))
    presser.start()
    try:
        code, out, err = run(
            "factory-test", "--port", port, "--device", "EV-F-0001", "--timeout", "20"
        )
    finally:
        stop.set()
        presser.join(10)
    assert code == 0, err + out + device.output()
    record = sorted((hall_dir / "data/factory-tests").glob("EV-F-0001-*.json"))[-1]
    report = json.loads(record.read_text())
    assert report["passed"] and report["firmware"] and report["board"] == "unix-sim"
    assert {r["name"]: r["device_ok"] for r in report["items"]} == {
        "link": True,
        "flash": True,
        "buttons": True,
        "display": True,
        "LED": True,
        "buzzer": True,
    }
    # the agent on the same cable: the provisioned device's frames are accepted
    cfg = make_config(hall_dir / "data", serial=[{"device": "EV-F-0001", "port": port}])
    with AgentThread(cfg) as agent:
        link = agent.link("EV-F-0001")
        wait_for(lambda: link.snapshot().get("state") == "open", timeout=30)
        assert not link.snapshot()["refused"].get("auth.mac")
    store = store_at(hall_dir)
    dev = registry.device(store, "EV-F-0001")
    store.close()
    assert dev is not None and dev.firmware and dev.board == "unix-sim"


def test_flashed_firmware_boots_into_provisioning(hall_dir: Path, run: Run) -> None:
    """The whole bench: hcp flash onto an empty simulated board, boot what it wrote (the
    firmware loaded from the image, not from the repository), provision it."""
    from tests.firmware_app.device import free_port
    from tools.flash_relay import SimulatedBoard, boot_flashed_app, micropython

    image = hall_dir / "flash.img"
    with SimulatedBoard(hall_dir / "usb", image) as board:
        code, out, err = run("--lang", "en", "flash", "-p", str(board.cable.path), "-b", "unix-sim")
        assert code == 0, err
    (hall_dir / "sim").mkdir()
    cable = VirtualCable(hall_dir / "bench", board_path=hall_dir / "sim" / "serial")
    app = boot_flashed_app(image, hall_dir, env={"HCP_CONTROL_PORT": str(free_port())})
    try:
        code, out, err = run(
            "provision",
            "device",
            "--port",
            str(cable.path),
            "--window",
            "W02",
            "--staff",
            "S2001",
            "--name",
            "王五",
            "--number",
            "2001",
            "--timeout",
            "20",
        )
        log = (hall_dir / "device.log").read_text()
        assert code == 0, err + log
        assert "hcp-sim: firmware from /flash/firmware/__init__.mpy" in log
        assert "key check passed" in out
        # The ROM's in-process reboot into normal mode: the control channel listens again.
        ctl = '"event": "control"'
        wait_for(lambda: (hall_dir / "device.log").read_text().count(ctl) == 2, timeout=20)
        assert "EADDRINUSE" not in (hall_dir / "device.log").read_text()
    finally:
        app.kill()
        app.wait(5)
        cable.unplug()
    store = store_at(hall_dir)
    (dev,) = registry.devices(store)
    store.close()
    blocks = image.stat().st_size // 4096  # the unix-sim profile's geometry
    script = (
        "import sys, vfs\n"
        f"sys.path.append({str(Path(__file__).resolve().parents[2])!r})\n"
        "from firmware.storage.blockdev import FileBlockDev\n"
        f"bd = FileBlockDev({str(image)!r}, 4096, {blocks})\n"
        "vfs.mount(vfs.VfsLfs2(bd, progsize=256), '/f')\n"
        "print(open('/f/hcp/identity.json').read())\n"
    )
    import subprocess

    r = subprocess.run([micropython(), "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    identity = json.loads(r.stdout)
    assert identity["device_id"] == dev.device_id and identity["hall"] == "H330201001"
