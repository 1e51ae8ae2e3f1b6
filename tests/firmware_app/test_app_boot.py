"""Boot paths of the device app on the unix port: provisioning mode end to end
(docs/protocol.md §10, against a CPython provisioning peer), the reboot into normal mode
with the stored identity, safe-mode boot (a button held at power-on), and a configuration
error that is reported instead of a boot loop."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from protocol import messages as M
from protocol.messages import Message
from protocol.packet import PROVISIONING_KEY, key_check
from tests.agent.helpers import Pty
from tests.firmware_app.conftest import Rig
from tests.firmware_app.device import (
    HALL,
    ROOT,
    AgentEnd,
    Device,
    config_msg,
    device_json,
    seed_flash,
)

NEW_KEY = bytes(range(100, 132))


def test_provisioning_end_to_end(fw_build: Path, tmp_path: Path) -> None:
    rig = Rig(fw_build, tmp_path, key=None)
    try:
        prov = AgentEnd(rig.pty.master, PROVISIONING_KEY, None, mode=M.PROVISIONING)
        rig.agent = prov
        rig.start()
        prov.run_until(lambda: prov.session.is_open())
        hello = prov.hellos[-1]
        assert (hello.mode, hello.device_id) == (M.PROVISIONING, "F-0001")
        assert rig.state()["mode"] == "provisioning"
        rig.ctl("click", button=0)  # a factory-new device records no ratings
        time.sleep(0.2)
        assert rig.state()["next_seq"] == 1 and rig.state()["outbox_depth"] == 0
        prov.send(
            Message(
                M.PROVISION,
                device_id="EV-0042",
                hall=HALL,
                key=NEW_KEY,
                seq_base=100,
                session_base=50,
            )
        )
        done = prov.run_until(lambda: prov.last(M.PROVISIONED))
        assert done.device_id == "EV-0042" and done.check == key_check(NEW_KEY)
        # The device reboots into normal mode with its new identity.
        agent = AgentEnd(rig.pty.master, NEW_KEY, "EV-0042")
        agent.run_until(lambda: agent.session.is_open(), 20)
        h = agent.hellos[-1]
        assert (h.mode, h.device_id, h.next) == (M.NORMAL, "EV-0042", 100)
        assert h.session >= 50
        ctl = rig.device.control()
        agent.run_until(lambda: ctl("state")["mode"] == "normal")
        ctl("click", button=2)
        r = agent.run_until(lambda: agent.ratings.get(100))
        assert r.level == 3 and r.boot == h.session
        ctl.close()
    finally:
        rig.close()


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_safe_mode_boot_skips_the_application(fw_build: Path, tmp_path: Path) -> None:
    pty = Pty(tmp_path / "tty")
    image = tmp_path / "flash.img"
    seed_flash(fw_build, image, device_json(str(pty.path)))
    before = _digest(image)
    dev = Device(fw_build, image, env={"HCP_HOLD": "0"}).start()
    assert dev.proc is not None
    assert dev.proc.wait(20) == 0
    out = dev.output()
    assert "safe mode" in out and '"control"' not in out
    assert _digest(image) == before  # nothing written: no boot session was taken
    dev.kill()
    # Released: the same image boots normally.
    rig_dev = Device(fw_build, image).start()
    try:
        agent = AgentEnd(pty.master)
        agent.run_until(lambda: agent.session.is_open())
        assert agent.hellos[-1].session == 1
    finally:
        rig_dev.kill()
        pty.close()


def test_configuration_error_is_reported_not_a_boot_loop(fw_build: Path, tmp_path: Path) -> None:
    image = tmp_path / "flash.img"
    seed_flash(fw_build, image, device_json("/nonexistent", kind="toaster"))
    dev = Device(fw_build, image).start()
    assert dev.proc is not None
    assert dev.proc.wait(20) == 0
    assert "configuration error" in dev.output() and "toaster" in dev.output()
    dev.kill()


def test_no_link_yet_presses_are_stored_offline(fw_build: Path, tmp_path: Path) -> None:
    # No agent at all: the device still thanks and stores (offline flag), and its
    # watchdog stays fed (the process keeps running).
    rig = Rig(fw_build, tmp_path)
    try:
        rig.start()
        rig.ctl("click", button=0)
        time.sleep(0.3)
        st = rig.state()
        assert st["outbox_depth"] == 1 and not st["online"] and st["ui"] == "notice"
        time.sleep(1.0)
        assert rig.device.alive()
    finally:
        rig.close()


def test_unix_rom_runs_main_py_from_the_flash(fw_build: Path, tmp_path: Path) -> None:
    # What `hcp flash` installs: a main.py on the image is what the ROM runs.
    pty = Pty(tmp_path / "tty")
    image = tmp_path / "flash.img"
    main_py = (
        b'print("main.py from the flash")\nimport firmware.main\nfirmware.main.run("/flash")\n'
    )
    seed_flash(fw_build, image, device_json(str(pty.path)), extra={"main.py": main_py})
    dev = Device(fw_build, image).start()
    try:
        agent = AgentEnd(pty.master)
        agent.run_until(lambda: agent.session.is_open())
        assert "main.py from the flash" in dev.output()
    finally:
        dev.kill()
        pty.close()


def test_watchdog_kills_a_stalled_loop(fw_build: Path, tmp_path: Path) -> None:
    rig = Rig(fw_build, tmp_path)
    try:
        rig.up()
        rig.ctl.sock.sendall(b'{"cmd": "stall", "ms": 20000}\n')  # the loop blocks 20 s
        proc = rig.device.proc
        assert proc is not None
        t0 = time.monotonic()
        code = proc.wait(18)
        assert code == -9 and 6 < time.monotonic() - t0 < 14  # profile: timeout_ms 8000
        assert '"watchdog"' in rig.device.output()
    finally:
        rig.close()


_ = subprocess  # the device processes are started through tests.firmware_app.device


def test_outbox_overflow_is_marked_reported_and_a_gap(fw_build: Path, tmp_path: Path) -> None:
    # A tiny outbox (2 segments x 4 ratings) and an agent that stores nothing: the screen
    # marks it near full, then the oldest ratings are dropped (counted, reported in STATUS)
    # and the next HELLO's `oldest` makes the agent see the gap (docs/protocol.md §8).
    profile = json.loads((ROOT / "hardware" / "boards" / "unix-sim.json").read_text())
    profile["storage"]["outbox"] = {"segments": 2, "records": 4}
    rig = Rig(fw_build, tmp_path, extra={"hcp/board.json": json.dumps(profile).encode()})
    try:
        rig.up()
        rig.agent.ack_ratings = False
        rig.agent.send(config_msg(thanks_s=0))
        rig.until(lambda: rig.state()["config_version"] == 7)
        plain = rig.ctl("frame")["data"]
        for i in range(5):
            rig.ctl("click", button=i % 5)
            time.sleep(0.08)
        st = rig.until(lambda: (s := rig.state())["next_seq"] == 6 and s)
        assert st["mark"] & 1 and st["dropped"] == 0  # near full: the next segment drops
        rig.until(lambda: rig.state()["ui"] == "idle", 10)
        assert rig.ctl("frame")["data"] != plain  # 存满 on the screen
        for i in range(4):
            rig.ctl("click", button=i % 5)
            time.sleep(0.08)
        st = rig.until(lambda: (s := rig.state())["next_seq"] == 10 and s)
        assert st["dropped"] == 4 and st["mark"] & 2 and st["oldest"] == 5
        status = rig.until(lambda: (m := rig.agent.last(M.STATUS)) and m.outbox_dropped == 4 and m)
        assert status.outbox_depth == 5
        rig.restart()  # a new HELLO: oldest 5, so seqs 1..4 are reported as a gap
        rig.until(lambda: len(rig.agent.hellos) == 2)
        assert rig.agent.hellos[-1].oldest == 5 and rig.agent.session.rx_acked == 4
    finally:
        rig.close()


def test_a_crash_in_the_loop_reboots_without_losing_ratings(fw_build: Path, tmp_path: Path) -> None:
    rig = Rig(fw_build, tmp_path)
    try:
        rig.up()
        rig.agent.ack_ratings = False
        rig.ctl("click", button=0)
        rig.until(lambda: rig.agent.ratings.get(1))
        assert rig.ctl("crash")["ok"]
        rig.until(lambda: len(rig.agent.hellos) == 2)  # rebooted: a new HELLO
        h = rig.agent.hellos[-1]
        assert h.session == 2 and (h.oldest, h.next) == (1, 2)  # the rating is still held
        assert "injected by the control channel" in rig.device.output()
        assert rig.device.alive()
        rig.ctl.close()
        rig.ctl = rig.device.control()
        rig.agent.ack_ratings = True
        rig.until(lambda: rig.state()["boot"] == 2 and rig.state()["outbox_depth"] == 0)
    finally:
        rig.close()
