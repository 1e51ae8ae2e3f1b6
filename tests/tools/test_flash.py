"""``hcp flash`` against the real MicroPython unix port over the pty relay, with mpremote.

One simulated board (tools.flash_relay: micropython -i behind two ptys, LittleFS flash
image) is flashed once for the module; the tests then check the image independently (a
second micropython mounts it and hashes every file), re-flash (nothing written), repair a
file changed on the board, copy a provisioned bundle, and hit each error a technician can.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools.conftest import Run
from tools import flash
from tools.flash_relay import ROOT, SimulatedBoard, VirtualCable, micropython

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@pytest.fixture(scope="module", autouse=True)
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sources as they are now: other work may edit the checkout while these run, and a
    re-flash must see the same files as the first flash."""
    root = tmp_path_factory.mktemp("src")
    for folder in flash.SOURCES:
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(flash, "ROOT", root)
        yield root


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedBoard]:
    d = tmp_path_factory.mktemp("board")
    b = SimulatedBoard(d / "port", d / "flash.img")
    b.wait_ready()
    yield b
    b.close()


@pytest.fixture(scope="module")
def first_flash(board: SimulatedBoard) -> str:
    from tools import cli

    code = cli.main(["--lang", "en", "flash", "-p", str(board.cable.path), "-b", "unix-sim"])
    assert code == 0
    return str(board.cable.path)


def _image_hashes(image: Path) -> dict[str, str]:
    """Every file in a LittleFS image with its SHA-256, read by a separate micropython."""
    script = f"""
import sys, os, vfs, hashlib, json
sys.path.append({str(ROOT)!r})
from firmware.storage.blockdev import FileBlockDev
fs = vfs.VfsLfs2(FileBlockDev({str(image)!r}, 4096, {image.stat().st_size // 4096}),
                readsize=32, progsize=256, lookahead=32)
vfs.mount(fs, '/img')
out = {{}}
def walk(d):
    for name, kind, *_ in os.ilistdir(d):
        p = d + '/' + name
        if kind == 0x4000:
            walk(p)
        else:
            with open(p, 'rb') as f:
                dg = hashlib.sha256(f.read()).digest()
                out['/flash' + p[4:]] = ''.join('%02x' % b for b in dg)
walk('/img')
print(json.dumps(out))
"""
    r = subprocess.run([micropython(), "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_flash_writes_every_file_verified(
    board: SimulatedBoard, first_flash: str, run: Run
) -> None:
    code, out, err = run("--lang", "en", "flash", "-p", first_flash, "-b", "unix-sim")
    assert code == 0, err
    assert "done: 0 written" in out, err  # unchanged files are skipped
    # the board's flash image, read independently: every built file, byte for byte
    items = flash.build(json.loads((ROOT / "hardware/boards/unix-sim.json").read_text()), "/flash")
    # (build() adds the profile itself; compare against what the command planned)
    board.process.kill()  # stop the board before reading its image from outside
    board.process.wait(5)
    on_image = _image_hashes(board.image)
    for item in items:
        assert on_image[item.target] == hashlib.sha256(item.data).hexdigest(), item.target
    assert (
        "/flash/firmware/ui/machine.mpy" in on_image and "/flash/protocol/session.mpy" in on_image
    )
    device_json = on_image.get("/flash/hcp/device.json")
    assert device_json is not None


def test_reflash_repairs_a_changed_file_and_copies_the_bundle(
    tmp_path: Path, hall_dir: Path, run: Run
) -> None:
    from edge_agent import registry
    from edge_agent.store import now_ms
    from tests.tools.conftest import store_at

    b = SimulatedBoard(tmp_path / "port", tmp_path / "flash.img")
    try:
        b.wait_ready()
        port = str(b.cable.path)
        assert run("flash", "-p", port, "-b", "unix-sim")[0] == 0
        # mpremote's own CLI (no soft reset: it would end the unix port) changes a file
        r = subprocess.run(
            [
                MPREMOTE,
                "connect",
                port,
                "resume",
                "exec",
                "f=open('/flash/protocol/crc.mpy','wb'); f.write(b'broken'); f.close()",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, r.stderr
        code, out, err = run("--lang", "en", "flash", "-p", port, "-b", "unix-sim")
        assert code == 0, err
        assert "done: 1 written" in out and "/flash/protocol/crc.mpy" in err
        # a provisioned device's bundle: refused on another board, copied on its own
        store = store_at(hall_dir)
        registry.add_device(store, device_id="EV-7", key=bytes(16), kind=1, now_ms=now_ms())
        store.conn.execute("UPDATE devices SET board = 'unix-sim', factory_id = 'F7'")
        store.close()
        assert run("provision", "bundle", "EV-7")[0] == 0
        code, out, err = run("--lang", "en", "flash", "-p", port, "--device", "EV-7")
        assert code == 1 and "wrong device: this board's factory id is" in err
        assert "the bundle is for F7" in err
        r = subprocess.run(
            [MPREMOTE, "connect", port, "resume", "fs", "cat", ":/flash/hcp/device.json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        factory_id = json.loads(r.stdout)["factory_id"]  # the first flash made one up
        store = store_at(hall_dir)
        store.conn.execute("UPDATE devices SET factory_id = ?", (factory_id,))
        store.close()
        assert run("provision", "bundle", "EV-7")[0] == 0
        code, out, err = run("--lang", "en", "flash", "-p", port, "--device", "EV-7")
        assert code == 0, err
        assert "done: 1 written" in out  # offline.json; device.json is the same document
        r = subprocess.run(
            [MPREMOTE, "connect", port, "resume", "fs", "cat", ":/flash/hcp/offline.json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(r.stdout)["version"] == 0
    finally:
        b.close()


def test_flash_errors(tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flash, "RAW_TIMEOUT_S", 1)
    code, _, err = run("--lang", "en", "flash", "-p", str(tmp_path / "nothing"), "-b", "unix-sim")
    assert code == 1 and "no device at" in err
    # a board that does not let the REPL in (the firmware disabled Ctrl-C)
    cable = VirtualCable(tmp_path / "stuck")
    stuck = subprocess.Popen(
        [
            micropython(),
            "-c",
            "import micropython, time\nmicropython.kbd_intr(-1)\nwhile True:\n time.sleep(1)",
        ],
        stdin=cable.board_fd,
        stdout=cable.board_fd,
        stderr=cable.board_fd,
    )
    try:
        code, _, err = run("--lang", "en", "flash", "-p", str(cable.path), "-b", "unix-sim")
        assert code == 1 and "refused the raw REPL 3 times" in err
        assert "hold the safe-boot button (GPIO 0)" in err
    finally:
        stuck.kill()
        stuck.wait()
        cable.unplug()
    # a 64 KiB flash: the firmware does not fit, nothing is written
    small = SimulatedBoard(tmp_path / "small", tmp_path / "small.img", size=64 * 1024)
    try:
        small.wait_ready()
        code, _, err = run("--lang", "en", "flash", "-p", str(small.cable.path), "-b", "unix-sim")
        assert code == 1 and "filesystem is full" in err and "KiB free (/flash)" in err
        code, _, err = run("--lang", "en", "flash", "-p", str(small.cable.path), "-b", "pico-w")
        assert code == 1 and "wrong board: the device is linux, the profile pico-w needs rp2" in err
    finally:
        small.close()
    assert os.path.getsize(tmp_path / "small.img") == 64 * 1024
