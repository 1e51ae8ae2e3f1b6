"""The MQTT client and transport under the real MicroPython against a real mosquitto.

The device is mp/mqtt_device.py (the app's use of a transport, steered over stdin); the
agent is paho-mqtt. Presence payloads are checked as the agent checks them
(protocol.topics.Presence with the device's key).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho

from protocol.packet import Signer
from protocol.topics import Presence, broker_password, topic
from tests.firmware_mqtt.conftest import (
    DEVICES,
    HALL,
    Agent,
    Broker,
    Device,
    Relay,
    device_cfg,
    wait_until,
)
from tests.mpy import tool

UP = topic(HALL, "d1", "up")
STATE = topic(HALL, "d1", "state")

Devices = Callable[..., Device]


def state(m: paho.MQTTMessage, device: str = "d1") -> Presence:
    """The presence a state message gives (its signature verified with the device key)."""
    p = Presence()
    assert p.update(Signer(DEVICES[device]), m.payload)
    return p


def is_up(data: bytes) -> Callable[[paho.MQTTMessage], bool]:
    return lambda m: m.topic == UP and m.payload == data


def is_state(online: bool) -> Callable[[paho.MQTTMessage], bool]:
    return lambda m: m.topic == STATE and state(m).online is online


def test_connect_publish_subscribe_both_ways(
    broker: Broker, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(broker.port))
    d.cmd("run")
    assert d.expect("connected")["conn"] == 1
    on = state(agent.until(is_state(True))[-1])
    assert (on.boot, on.conn) == (7, 1)
    for i in range(5):
        d.cmd(f"send up-{i}")
        d.expect("sent")
    got = [m.payload for m in agent.until(is_up(b"up-4")) if m.topic == UP]
    assert got == [b"up-%d" % i for i in range(5)]
    for i in range(3):
        agent.down("d1", b"down-%d" % i)
    assert [d.expect("down")["data"] for _ in range(3)] == ["down-0", "down-1", "down-2"]
    d.cmd("close")
    d.expect("closed")
    off = state(agent.until(is_state(False))[-1])
    assert (off.boot, off.conn, off.online) == (7, 1, False)
    assert d.proc.wait(10) == 0


def test_qos1_is_retransmitted_with_dup_until_acknowledged(
    broker: Broker, relay: Relay, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(relay.port, retry_ms=1000))
    d.cmd("run")
    d.expect("connected")
    agent.until(is_state(True))
    wait_until(lambda: d.stats()["inflight"] == 0, 10, "the online state's PUBACK")
    relay.hold_down.set()  # the broker gets the PUBLISH, the device never sees its PUBACK
    d.cmd("send once")
    d.expect("sent")
    first = agent.until(is_up(b"once"))
    again = agent.until(is_up(b"once"), timeout=10)  # resent (DUP) after retry_ms
    assert first and again
    held = d.stats()
    assert held["inflight"] == 1 and held["retransmits"] >= 1, held
    relay.hold_down.clear()
    wait_until(lambda: d.stats()["inflight"] == 0, 10, "the PUBACK")
    after = d.stats()
    assert after["inflight"] == 0 and after["connected"], after
    assert after["connects"] == 1  # one connection: retransmission did not need a reconnect


def test_keepalive_holds_an_idle_link_and_a_silent_one_is_dropped(
    broker: Broker, relay: Relay, agent: Agent, devices: Devices
) -> None:
    # A PINGRESP may take up to timeout_ms: longer than the broker's 1.5 keepalives, so
    # the broker's drop is seen first.
    d = devices(device_cfg(relay.port, keepalive_s=2, timeout_ms=8000))
    d.cmd("run")
    d.expect("connected")
    agent.until(is_state(True))
    time.sleep(5)  # 2.5 keepalives idle: only PINGREQs keep the broker from dropping us
    agent.down("d1", b"still here")
    assert d.expect("down", "lost")["ev"] == "down"
    assert d.stats()["connects"] == 1
    # A silent link (nothing passes either way): the broker drops the client after 1.5
    # keepalives and publishes its will; the device sees no PINGRESP and reconnects.
    relay.frozen.set()
    t0 = time.monotonic()
    off = state(agent.until(is_state(False), timeout=15)[-1])
    assert (off.boot, off.conn) == (7, 1)
    lost = d.expect("lost", timeout=15)
    assert lost["code"] == "mqtt.timeout", lost
    assert time.monotonic() - t0 < 15
    relay.frozen.clear()
    assert d.expect("connected", timeout=20)["conn"] >= 2
    on = state(agent.until(is_state(True))[-1])
    assert on.online and on.conn >= 2
    assert "Client d1 has exceeded timeout" in broker.log(tail=1 << 20)


def test_wrong_password_is_refused_with_a_clear_error(broker: Broker, devices: Devices) -> None:
    cfg = device_cfg(broker.port)
    cfg["key"] = DEVICES["d2"].hex()  # d1's name with d2's key: the wrong password
    d = devices(cfg)
    d.cmd("connect")
    e = d.expect("connect_error")
    assert e["code"] == "mqtt.refused" and e["rc"] in (4, 5), e
    assert "not authorized" in e["msg"] or "bad user name or password" in e["msg"]
    d.cmd("stats")
    assert d.expect("stats")["failures"] == 1


def test_acl_keeps_a_device_to_its_own_topics(
    broker: Broker, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(broker.port))
    d.cmd("run")
    d.expect("connected")
    agent.until(is_state(True))
    d.cmd(f"pub {topic(HALL, 'd2', 'up')} forged")  # the broker acks and drops it
    d.expect("puback", "pub_error")
    # mosquitto grants an ACL-denied subscription under MQTT 3.1.1 (the refusal 0x80 is
    # tested with a scripted broker in test_mqtt_faults.py) but delivers nothing on it.
    d.cmd(f"sub {topic(HALL, 'd2', 'down')}")
    d.expect("subscribed", "sub_error")
    agent.down("d2", b"for d2")
    agent.down("d1", b"for d1")
    assert d.expect("down")["data"] == "for d1"
    d.cmd("send after")
    got = agent.until(is_up(b"after"))
    assert all(m.payload != b"forged" for m in got)
    assert d.stats()["connects"] == 1  # the refusals did not cost the connection


def test_last_will_says_offline_when_the_device_dies(
    broker: Broker, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(broker.port))
    d.cmd("run")
    d.expect("connected")
    assert state(agent.until(is_state(True))[-1]).conn == 1
    d.kill()
    off = state(agent.until(is_state(False))[-1])
    assert (off.online, off.boot, off.conn) == (False, 7, 1)
    # The retained state is the will: a newly started agent sees the device offline too.
    late = Agent(broker.port)
    try:
        assert state(late.until(lambda m: m.topic == STATE)[-1]).online is False
    finally:
        late.close()


def test_broker_restart_reconnects_resubscribes_and_republishes(
    broker: Broker, relay: Relay, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(relay.port))
    d.cmd("run")
    d.expect("connected")
    agent.until(is_state(True))
    relay.frozen.set()  # these three never reach the old broker: unacknowledged
    for i in range(3):
        d.cmd(f"send r{i}")
        d.expect("sent")
    assert d.stats()["inflight"] >= 3  # (the online state's PUBACK may be among them)
    broker.stop()
    relay.cut()
    relay.frozen.clear()
    # The loss, then five attempts while the broker is down; each waited its backoff
    # first: 0, then jittered halves of 200, 400, 800, 1600 ms (base 200, cap 2000).
    delays = [d.expect("lost")["delay"] for _ in range(6)]
    # The agent's clean session is gone with the old broker: until it has subscribed again,
    # the new broker would drop the republished messages. Hold the device back till then.
    agent.subscribed.clear()
    relay.frozen.set()
    broker.start()
    assert agent.subscribed.wait(20), "the agent did not subscribe to the new broker"
    relay.frozen.clear()
    up = d.expect("connected", timeout=30)
    assert up["conn"] >= 2
    assert delays == sorted(delays) and 800 <= delays[-1] <= 2000, delays
    got = agent.until(is_up(b"r2"), timeout=20)
    assert [m.payload for m in got if m.topic == UP] == [b"r0", b"r1", b"r2"]
    agent.down("d1", b"after restart")  # the subscription was renewed
    assert d.expect("down")["data"] == "after restart"
    wait_until(lambda: d.stats()["inflight"] == 0, 10, "every PUBACK")


def test_connection_cut_mid_packet(
    broker: Broker, relay: Relay, agent: Agent, devices: Devices
) -> None:
    d = devices(device_cfg(relay.port))
    d.cmd("run")
    d.expect("connected")
    agent.until(is_state(True))
    relay.cut_after = 300  # of the next 1000-byte PUBLISH to the device
    agent.down("d1", b"x" * 1000)
    lost = d.expect("lost", "down")
    assert lost["ev"] == "lost" and lost["code"] == "mqtt.closed", lost
    relay.cut_after = None
    assert d.expect("connected")["conn"] == 2
    agent.down("d1", b"whole")
    assert d.expect("down")["data"] == "whole"


# The client's own heap on the 64-bit unix port (about half on a 32-bit MCU); measured
# 20.1 KB / 28.8 KB / 29-30 KB when set: a regression shows up here.
CLIENT_HEAP = "48k"  # the whole script (client, asyncio, one connection) runs in this
IMPORT_BUDGET = 21 * 1024  # firmware.net.mqtt and mqtt_wire (.mpy)
CONNECTED_BUDGET = 30 * 1024  # + a connected Client: streams, tasks, subscription
TRAFFIC_BUDGET = 32 * 1024  # + after 40 QoS 1 messages out and 10 in


def test_heap(broker: Broker, agent: Agent, build: Path) -> None:
    cfg = {
        "host": "127.0.0.1",
        "port": broker.port,
        "user": "d1",
        "password": broker_password(DEVICES["d1"]),
        "up": UP,
        "down": topic(HALL, "d1", "down"),
        "state": STATE,
    }
    proc = subprocess.Popen(
        [tool("micropython"), "-X", f"heapsize={CLIENT_HEAP}", "-m", "heap"],
        cwd=build,
        env=dict(os.environ, MICROPYPATH=f".frozen:{build}", HCP_MQTT_CFG=json.dumps(cfg)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert json.loads(line)["ev"] == "connected", line + proc.stdout.read()
    for _ in range(10):
        agent.down("d1", b"d" * 60)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    heap = json.loads(out.splitlines()[-1])
    print(heap)
    assert heap["imported"] <= IMPORT_BUDGET, heap
    assert heap["connected"] <= CONNECTED_BUDGET, heap
    assert heap["after"] <= TRAFFIC_BUDGET, heap
