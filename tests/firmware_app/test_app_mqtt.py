"""The device app with the MQTT transport (chosen by device.json) against a real mosquitto
(its own config, accounts and ACLs: tests/firmware_mqtt's Broker) and an agent-side
LinkSession in CPython over paho: handshake, presence (the retained signed STATE), CONFIG,
a press that becomes a RATING, the ACK emptying the outbox."""

from __future__ import annotations

import queue
import shutil
import time
from pathlib import Path

import pytest

from protocol import messages as M
from protocol.packet import Signer, open_packet
from protocol.session import AGENT, LinkSession, LinkUp
from tests.firmware_app.device import Device, config_msg, device_json, mono_ms, seed_flash
from tests.firmware_mqtt.conftest import DEVICES, HALL, Agent, Broker


def test_device_app_over_mqtt(fw_build: Path, tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is missing (apt install mosquitto)")
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    broker.start()
    key = DEVICES["d1"]
    image = tmp_path / "flash.img"
    dev_cfg = device_json("-")
    dev_cfg["transport"] = {"type": "mqtt", "host": "127.0.0.1", "port": broker.port}
    ident = {"device_id": "d1", "hall": HALL, "seq_base": 1, "session_base": 1}
    seed_flash(fw_build, image, dev_cfg, key=key, identity=ident)
    agent = Agent(broker.port)
    s = LinkSession(
        AGENT, key, 1, device_id="d1", heartbeat_s=2, clock_ms=lambda: time.time_ns() // 10**6
    )
    s.accept_hellos(0)
    dev = Device(fw_build, image).start()
    ratings: dict[int, M.Message] = {}
    states: list[M.Message] = []

    def step(until: object, timeout: float = 20) -> None:
        assert callable(until)
        end = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < end, dev.output()[-2000:]
            try:
                m = agent.got.get(timeout=0.05)
            except queue.Empty:
                m = None
            now = mono_ms()
            if m is not None and m.topic.endswith("/up"):
                s.receive(m.payload, now)
            elif m is not None and m.topic.endswith("/state"):
                states.append(open_packet(m.payload, Signer(key), M.UP))
            s.poll(now)
            while (e := s.next_event()) is not None:
                if isinstance(e, M.Message) and e.type == M.RATING:
                    ratings[e.seq] = e
                    s.acknowledge(e.seq)
                elif isinstance(e, LinkUp):
                    pass
            for p in s.packets_to_send():
                agent.down("d1", p)

    try:
        step(lambda: s.is_open())
        step(lambda: any(st.online for st in states))
        ctl = dev.control()
        s.send(config_msg(), mono_ms())
        step(lambda: ctl("state")["config_version"] == 7)
        assert ctl("state")["online"]
        ctl("click", button=1)
        step(lambda: 1 in ratings)
        assert (ratings[1].level, ratings[1].flags) == (2, M.FLAG_UNSOLICITED)  # no invite open
        step(lambda: ctl("state")["outbox_depth"] == 0)
        ctl.close()
    finally:
        dev.kill()
        agent.close()
        broker.stop()
