"""``hcp provision``: a device on a real pty, the CPython bench peer as the firmware's side.

The last test hands the provisioned identity to the real agent (its serial link on another
pty): frames signed with the provisioned key are accepted, the old key after ``--rekey``
and an unprovisioned device (provisioning key) are refused.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from edge_agent import registry
from protocol import messages as M
from protocol.packet import PROVISIONING_KEY
from simulator.peer import DevicePeer
from tests.agent.helpers import AgentThread, Pty, make_config, wait_for
from tests.tools.bench_peer import BenchPeer
from tests.tools.conftest import Run, store_at

STAFF = ("--staff", "S1001", "--name", "张三", "--number", "1001", "--department", "人社局")


def provision(run: Run, pty: Pty, window: str, *extra: str) -> tuple[int, str, str]:
    return run(
        "provision",
        "device",
        "--port",
        str(pty.path),
        "--window",
        window,
        "--timeout",
        "5",
        *extra,
    )


def test_provision_binds_and_keeps_the_key_secret(hall_dir: Path, run: Run) -> None:
    pty = Pty(hall_dir / "tty")
    with BenchPeer(pty.master, factory_id="F00001") as peer:
        code, out, err = provision(run, pty, "W01", *STAFF)
        wait_for(lambda: peer.mode == M.NORMAL)
    assert code == 0, err
    assert "device CU-F00001 provisioned: window W01, staff S1001, key check passed" in out
    store = store_at(hall_dir)
    key = registry.device_key(store, "CU-F00001")
    assert key is not None and peer.key == key and len(key) == 32
    assert key.hex() not in out + err  # never printed unless asked
    dev = registry.device(store, "CU-F00001")
    assert dev is not None and dev.window_id == "W01" and dev.quarantine is None
    assert peer.provisioned is not None and peer.provisioned.hall == "H330201001"
    assert peer.provisioned.seq_base == 1 and peer.provisioned.session_base == 1
    pos = registry.position(store, "W01")
    assert pos is not None and pos["staff_id"] == "S1001" and pos["department"] == "人社局"
    bundle = hall_dir / "data" / "devices" / "CU-F00001"
    device_json = json.loads((bundle / "device.json").read_text())
    assert device_json == {
        "version": 1,
        "factory_id": "F00001",
        "kind": "combined",
        "board": "unix-sim",
        "transport": {"type": "serial", "port": "sim/serial", "baud": 115200},
    }
    offline = json.loads((bundle / "offline.json").read_text())
    assert offline["staff"] == {"name": "张三", "number": "1001", "title": None}
    assert offline["window"] == "社保窗口 01" and offline["qr"]["size"] >= 21
    assert (
        key.hex()
        not in (bundle / "device.json").read_text() + (bundle / "offline.json").read_text()
    )
    store.close()


def test_running_twice_keeps_identity_and_key(hall_dir: Path, run: Run) -> None:
    pty = Pty(hall_dir / "tty")
    keys = []
    for _ in range(2):
        with BenchPeer(pty.master, factory_id="F00002", kind=M.KIND_EVALUATOR) as peer:
            code, out, err = provision(run, pty, "W02", *STAFF)
            assert code == 0, err
            keys.append(peer.key)
    assert keys[0] == keys[1]
    store = store_at(hall_dir)
    assert [d.device_id for d in registry.devices(store)] == ["EV-F00002"]
    events = [h["event"] for h in registry.history(store)]
    assert events.count("provisioned") == 2 and events.count("staff_bound") == 1
    store.close()
    with BenchPeer(pty.master, factory_id="F00002", kind=M.KIND_EVALUATOR) as peer:
        code, out, err = provision(run, pty, "W02", *STAFF, "--rekey", "--show-key")
    assert code == 0 and peer.key is not None and peer.key != keys[0]
    assert f"key (keep it secret): {peer.key.hex()}" in out


def test_one_account_one_position(hall_dir: Path, run: Run) -> None:
    pty = Pty(hall_dir / "tty")
    with BenchPeer(pty.master, factory_id="F00003", kind=M.KIND_EVALUATOR):
        assert provision(run, pty, "W01", *STAFF)[0] == 0
    # the same staff account at a second window: refused, naming the holder; device untouched
    with BenchPeer(pty.master, factory_id="F00004", kind=M.KIND_EVALUATOR) as peer:
        code, out, err = provision(run, pty, "W02", *STAFF)
        assert peer.provisioned is None
    assert code == 1
    assert "staff S1001 is already bound to window W01 (device EV-F00003)" in err
    # a second evaluator at W01: refused, naming the device that holds the position
    with BenchPeer(pty.master, factory_id="F00004", kind=M.KIND_EVALUATOR) as peer:
        code, out, err = provision(run, pty, "W01", *STAFF)
        assert peer.provisioned is None
    assert code == 1 and "window W01 already has device EV-F00003" in err
    store = store_at(hall_dir)
    assert registry.device_by_factory(store, "F00004") is None
    store.close()
    # replacing the broken one: the old device is retired, the history keeps both
    with BenchPeer(pty.master, factory_id="F00004", kind=M.KIND_EVALUATOR):
        code, out, err = provision(run, pty, "W01", "--staff", "S1001", "--replace", "EV-F00003")
    assert code == 0, err
    assert "device EV-F00003 retired (replaced by EV-F00004)" in out
    store = store_at(hall_dir)
    old = registry.device(store, "EV-F00003")
    assert old is not None and old.quarantine == "retired" and old.window_id is None
    assert registry.device_key(store, "EV-F00003") is None
    store.close()
    code, out, _ = run("provision", "history", "--window", "W01", "--json")
    events = [(h["event"], h["device_id"], h["staff_id"]) for h in json.loads(out)]
    assert ("retired", "EV-F00003", None) in events
    assert events[-1] == ("provisioned", "EV-F00004", None)


def test_rebinding_a_window_keeps_history(hall_dir: Path, run: Run) -> None:
    staff2 = ("--staff", "S1002", "--name", "李四", "--number", "1002")
    assert run("provision", "staff", "--window", "W01", *STAFF)[0] == 0
    code, out, err = run("provision", "staff", "--window", "W02", "--staff", "S1001")
    assert code == 1 and "already bound to window W01" in err
    assert run("provision", "staff", "--window", "W01", *staff2)[0] == 0
    code, out, _ = run("provision", "staff", "--window", "W01", "--staff", "S1002")
    assert code == 0 and "window W01 already has staff S1002" in out
    assert run("provision", "staff", "--window", "W02", "--staff", "S1001")[0] == 0
    code, out, _ = run("provision", "history", "--json")
    events = [(h["event"], h["window_id"], h["staff_id"]) for h in json.loads(out)]
    assert events == [
        ("staff_bound", "W01", "S1001"),
        ("staff_unbound", "W01", "S1001"),
        ("staff_bound", "W01", "S1002"),
        ("staff_bound", "W02", "S1001"),
    ]


def test_failures_are_clear_and_safe(hall_dir: Path, run: Run) -> None:
    pty = Pty(hall_dir / "tty")
    code, _, err = run(
        "provision", "device", "--port", str(pty.path), "--window", "W01", "--timeout", "1", *STAFF
    )
    assert code == 1 and "no device answered on" in err
    # a provisioned device (normal mode) does not verify with the provisioning key
    with BenchPeer(pty.master, key=bytes(32), device_id="EV-9"):
        code, _, err = provision(run, pty, "W01", *STAFF)
    assert code == 1 and "hold the safe-boot button" in err
    with BenchPeer(pty.master, factory_id="F00005", board="pico-w"):
        code, _, err = provision(run, pty, "W01", *STAFF, "--board", "esp32-s3-devkitc-1")
    assert code == 1 and "the device is a pico-w board, not esp32-s3-devkitc-1" in err
    with BenchPeer(pty.master, factory_id="F00005", corrupt_check=True):
        code, _, err = provision(run, pty, "W01", *STAFF)
    assert code == 1 and "wrong key check" in err
    store = store_at(hall_dir)
    dev = registry.device(store, "CU-F00005")
    assert dev is not None and dev.quarantine == "provisioning" and dev.window_id is None
    assert registry.position(store, "W01") is None
    store.close()
    with BenchPeer(pty.master, factory_id="F00005") as peer:  # the next run completes it
        code, _, err = provision(run, pty, "W01", *STAFF)
    assert code == 0, err
    store = store_at(hall_dir)
    assert registry.device_key(store, "CU-F00005") == peer.key
    store.close()


def test_the_agent_accepts_the_provisioned_device_only(hall_dir: Path, run: Run) -> None:
    bench = Pty(hall_dir / "bench")
    with BenchPeer(bench.master, factory_id="F00006", kind=M.KIND_EVALUATOR) as peer:
        assert provision(run, bench, "W01", *STAFF)[0] == 0
    key, boot, seq = peer.key, peer.boot, peer.next_seq
    assert key is not None
    counter = Pty(hall_dir / "counter")
    cfg = make_config(
        hall_dir / "data", serial=[{"device": "EV-F00006", "port": str(counter.path)}]
    )
    with AgentThread(cfg) as agent:
        device = DevicePeer(
            counter.master,
            key,
            device_id="EV-F00006",
            boot=boot,
            next_seq=seq,
            kind=M.KIND_EVALUATOR,
        )
        device.connect()
        device.run_until(lambda: device.link_ups >= 1)
        pressed = device.press(1)
        device.run_until(lambda: device.acked >= pressed)
        link = agent.link("EV-F00006")
        # an unprovisioned board on the same cable (provisioning key, normal HELLO)
        stranger = DevicePeer(
            counter.master,
            PROVISIONING_KEY,
            device_id="EV-F00006",
            boot=boot + 1,
            next_seq=seq + 1,
            kind=M.KIND_EVALUATOR,
        )
        stranger.connect()
        stranger.run_for(1.5)
        assert stranger.link_ups == 0
        wait_for(lambda: link.snapshot()["refused"].get("auth.mac"))
    # re-keyed: the old key no longer opens the link
    with BenchPeer(bench.master, factory_id="F00006", kind=M.KIND_EVALUATOR) as peer2:
        assert provision(run, bench, "W01", "--staff", "S1001", "--rekey")[0] == 0
    assert peer2.key != key and peer2.next_seq > pressed
    with AgentThread(cfg) as agent:
        old = DevicePeer(
            counter.master,
            key,
            device_id="EV-F00006",
            boot=boot + 5,
            next_seq=seq + 5,
            kind=M.KIND_EVALUATOR,
        )
        old.connect()
        old.run_for(1.5)
        assert old.link_ups == 0
        link = agent.link("EV-F00006")
        wait_for(lambda: link.snapshot()["refused"].get("auth.mac"))
        new = DevicePeer(
            counter.master,
            peer2.key,
            device_id="EV-F00006",
            boot=peer2.boot,
            next_seq=peer2.next_seq,
            kind=M.KIND_EVALUATOR,
        )
        new.connect()
        new.run_until(lambda: new.link_ups >= 1)


def _wrong_key_hello() -> bytes:
    from protocol.framing import encode_frame
    from protocol.messages import Message
    from protocol.packet import Signer, seal

    hello = Message(
        M.HELLO,
        device_id="F00009",
        kind=1,
        board="unix-sim",
        firmware="x",
        mode=M.PROVISIONING,
        config_version=0,
        outbox_depth=0,
        oldest=1,
        next=1,
        ticks=0,
    )
    return bytes(encode_frame(seal(hello, Signer(bytes(32)), M.UP, 1, 1)))


@pytest.mark.parametrize(
    ("garbage", "expected"),
    [
        (b"\x00" * 64, "no device answered"),
        (bytes(range(256)) * 4, "is not protocol frames"),
        (b"\x05\x01\x02\x03\x00" * 20, "is not protocol frames"),
        (None, "do not verify"),  # a HELLO signed with another key than the provisioning key
    ],
)
def test_bad_bytes_on_the_link_change_nothing(
    hall_dir: Path, run: Run, garbage: bytes | None, expected: str
) -> None:
    pty = Pty(hall_dir / "tty")
    payload = garbage if garbage is not None else _wrong_key_hello()
    stop = threading.Event()

    def babble() -> None:  # keeps sending while the tool listens (opening a port flushes it)
        while not stop.wait(0.1):
            os.write(pty.master, payload)

    writer = threading.Thread(target=babble)
    writer.start()
    try:
        code, _, err = provision(run, pty, "W01", *STAFF, "--timeout", "1")
    finally:
        stop.set()
        writer.join()
    assert code == 1 and expected in err
    store = store_at(hall_dir)
    assert registry.devices(store) == [] and registry.history(store) == []
    assert registry.position(store, "W01") is None
    store.close()


def test_retire_and_chinese_messages(hall_dir: Path, run: Run) -> None:
    store = store_at(hall_dir)
    registry.add_device(store, device_id="QR-1", key=bytes(16), kind=2, window_id="W03", now_ms=1)
    store.close()
    code, out, _ = run("--lang", "zh-CN", "provision", "retire", "QR-1")
    assert code == 0 and "设备 QR-1 已退役" in out
    code, _, err = run("--lang", "zh-CN", "provision", "retire", "QR-9")
    assert code == 1 and err.startswith("hcp: 没有设备 QR-9")
    store = store_at(hall_dir)
    dev = registry.device(store, "QR-1")
    assert dev is not None and dev.quarantine == "retired" and dev.window_id is None
    assert registry.device_key(store, "QR-1") is None
    assert [(h["event"], h["window_id"]) for h in registry.history(store)] == [("retired", "W03")]
    store.close()
    # a retired id is never provisioned again
    pty = Pty(hall_dir / "tty")
    with BenchPeer(pty.master, factory_id="F00010", kind=M.KIND_QR) as peer:
        code, _, err = run(
            "--lang",
            "zh-CN",
            "provision",
            "device",
            "--port",
            str(pty.path),
            "--window",
            "W03",
            "--device-id",
            "QR-1",
            "--timeout",
            "5",
            *STAFF,
        )
        assert peer.provisioned is None
    assert code == 1 and "设备标识 QR-1 已退役，不能再使用" in err
