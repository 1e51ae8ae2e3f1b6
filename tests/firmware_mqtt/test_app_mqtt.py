"""The whole device application over MQTT: firmware/unix_rom.py (the real app, on a
LittleFS image, under MicroPython) with transport type "mqtt", a real mosquitto, and the
agent's link session (CPython, protocol/session.py) on the other side of the broker.

Ratings pressed while the broker is down are stored, then reach the agent exactly once
after the broker restarts; the device's presence follows (online, then its will).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocol import messages as M
from protocol.messages import Message
from protocol.packet import Signer
from protocol.session import LinkUp
from protocol.topics import Presence, agent_subscriptions, topic
from tests.firmware_app.device import (
    DEVICE_ID,
    HALL,
    KEY,
    AgentEnd,
    Device,
    build_firmware,
    device_json,
    seed_flash,
)
from tests.firmware_mqtt.conftest import AGENT_PASSWORD, AGENT_USER, Broker

UP, STATE = topic(HALL, DEVICE_ID, "up"), topic(HALL, DEVICE_ID, "state")


class MqttAgentEnd(AgentEnd):
    """AgentEnd's link session, fed from the broker instead of a pty."""

    def __init__(self, port: int) -> None:
        super().__init__(-1)
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.presence = Presence()
        self.states: list[tuple[bool, int, int]] = []
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="agent-app")
        self.c.username_pw_set(AGENT_USER, AGENT_PASSWORD)
        self.c.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in agent_subscriptions(HALL)])
        self.c.on_message = lambda c, u, m: self.inbox.put((m.topic, bytes(m.payload)))
        self.c.reconnect_delay_set(1, 2)
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()

    def step(self, timeout: float = 0.01) -> None:
        try:
            t, payload = self.inbox.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            if t == UP:
                self.session.receive(payload, int(time.monotonic() * 1000))
            elif t == STATE and self.presence.update(Signer(KEY), payload):
                p = self.presence
                self.states.append((bool(p.online), p.boot, p.conn))
        # AgentEnd.step's session half (its pty half is replaced by the broker above).
        now = int(time.monotonic() * 1000)
        self.session.poll(now)
        while (e := self.session.next_event()) is not None:
            if isinstance(e, LinkUp):
                self.hellos.append(e.peer)
            elif isinstance(e, Message):
                self.received.append(e)
                if e.type == M.RATING:
                    old = self.ratings.get(e.seq)
                    if old is not None and old.fields() != e.fields():
                        self.duplicates_differ.append((old, e))
                    self.ratings.setdefault(e.seq, e)
                    self.session.acknowledge(e.seq)
        self.flush()

    def flush(self) -> None:
        for p in self.session.packets_to_send():
            self.c.publish(topic(HALL, DEVICE_ID, "down"), p, qos=1)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture(scope="module")
def app_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("app_mqtt_mpy"))


@pytest.fixture
def hall(tmp_path: Path, app_build: Path) -> Iterator[dict[str, Any]]:
    broker = Broker(tmp_path, hall=HALL, devices={DEVICE_ID: KEY})
    broker.start()
    image = tmp_path / "flash.img"
    transport = {"type": "mqtt", "host": "127.0.0.1", "port": broker.port, "keepalive_s": 5}
    seed_flash(app_build, image, device_json("", transport=transport))
    device = Device(app_build, image)
    agent = MqttAgentEnd(broker.port)
    yield {"broker": broker, "device": device, "agent": agent}
    print(device.output()[-4000:])
    agent.close()
    device.kill()
    broker.stop()


def test_ratings_cross_a_broker_restart_exactly_once(hall: dict[str, Any]) -> None:
    broker, device, agent = hall["broker"], hall["device"], hall["agent"]
    device.start()
    ctl = device.control()
    agent.run_until(lambda: agent.session.is_open(), 30)
    agent.run_until(lambda: agent.states and agent.states[-1][0])
    assert agent.states[-1][2] == 1  # online, connection 1 of this boot
    ctl("click", button=4)
    agent.run_until(lambda: len(agent.ratings) == 1)
    broker.stop()
    ctl("click", button=0)
    ctl("click", button=2)
    broker.start()
    agent.run_until(lambda: len(agent.ratings) == 3, 60)
    assert sorted(agent.ratings) == sorted({m.seq for m in agent.ratings.values()})
    assert [agent.ratings[s].level for s in sorted(agent.ratings)] == [5, 1, 3]
    assert not agent.duplicates_differ
    agent.run_until(lambda: agent.states[-1][0] and agent.states[-1][2] >= 2)
    ctl.close()
    device.kill()  # the will: offline, for the newest connection
    agent.run_until(lambda: agent.states[-1][0] is False, 30)
    assert agent.states[-1][2] >= 2
