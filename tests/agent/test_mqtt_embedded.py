"""The embedded demo broker (amqtt) that the agent starts itself: accounts and ACLs enforced.

The real Agent runs with ``[mqtt] embedded = true`` on a free port; devices are the CPython
MQTT peers (paho). Also: the broker as its own process with the files
``hcp agent broker-files`` writes, and the subscription-filter rule as a table.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from edge_agent import registry
from edge_agent.embedded_broker import _filter_allowed
from edge_agent.store import Store, now_ms
from protocol import messages as M
from protocol import topics
from tests.agent.helpers import HALL, KEY, AgentThread, make_config, wait_for
from tests.agent.mqtt_peer import MqttPeer, free_port, try_connect

EV1, EV2, EV3 = "EV-0001", "EV-0002", "EV-0003"
KEY2 = bytes(range(1, 33))
KEY3 = bytes(range(2, 34))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentThread]:
    cfg = make_config(tmp_path / "data", mqtt={"host": "127.0.0.1", "port": 0, "embedded": True})
    store = Store(cfg.store_path)
    t = now_ms()
    registry.add_window(store, window_id="W01", label="综合窗口 01", now_ms=t)
    registry.add_device(
        store, device_id=EV1, key=KEY, kind=M.KIND_COMBINED, window_id="W01", now_ms=t
    )
    registry.add_device(store, device_id=EV2, key=KEY2, kind=M.KIND_EVALUATOR, now_ms=t)
    store.close()
    a = AgentThread(cfg).start()
    mqtt = a.agent.mqtt
    assert mqtt is not None
    wait_for(lambda: mqtt.state == "connected")
    yield a
    a.stop()


def port_of(agent: AgentThread) -> int:
    assert agent.agent.mqtt is not None
    return agent.agent.mqtt.port


def test_ratings_through_the_embedded_broker(agent: AgentThread) -> None:
    peer = MqttPeer(port_of(agent), KEY, hall=HALL, device_id=EV1)
    peer.mqtt_connect()
    peer.connect()
    peer.run_until(lambda: peer.link_ups >= 1 and peer.last(M.CONFIG))
    seqs = [peer.press(level=5) for _ in range(4)]
    peer.run_until(lambda: peer.acked == seqs[-1])
    link = agent.agent.service.links[EV1]
    assert link.snapshot()["ratings_acked"] == 4
    rows = agent.db(lambda s: s.all("SELECT seq FROM ratings ORDER BY seq"))
    assert [r[0] for r in rows] == seqs
    peer.vanish()  # the will goes through amqtt too
    wait_for(lambda: link.snapshot()["presence"]["online"] is False)


def test_accounts_follow_the_registry(agent: AgentThread) -> None:
    port = port_of(agent)
    assert try_connect(port, EV1, topics.broker_password(KEY)) == "Success"
    assert try_connect(port, EV1, topics.broker_password(KEY2)) != "Success"
    assert try_connect(port, EV3, topics.broker_password(KEY3)) != "Success"  # not registered
    assert try_connect(port, "", None) != "Success"
    agent.db(registry.add_device, device_id=EV3, key=KEY3, now_ms=now_ms())
    assert try_connect(port, EV3, topics.broker_password(KEY3)) == "Success"  # no restart
    agent.db(registry.set_quarantine, device_id=EV3, reason="admin", now_ms=now_ms())
    assert try_connect(port, EV3, topics.broker_password(KEY3)) != "Success"


def test_acl_a_device_cannot_act_as_another(agent: AgentThread) -> None:
    port = port_of(agent)
    got: list[str] = []
    spy = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="spy")
    spy.username_pw_set(EV2, topics.broker_password(KEY2))
    spy.on_message = lambda c, u, m: got.append(m.topic)
    spy.connect("127.0.0.1", port)
    spy.subscribe([(topics.topic(HALL, EV1, "down"), 1), (f"hcp/v1/{HALL}/#", 1)])
    spy.publish(topics.topic(HALL, EV1, "up"), b"\x00garbage", qos=1)
    spy.publish(topics.topic(HALL, EV1, "state"), b"\x00garbage", qos=1, retain=True)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        spy.loop(0.05)
    peer = MqttPeer(port, KEY, hall=HALL, device_id=EV1)
    peer.mqtt_connect()
    peer.connect()
    peer.run_until(lambda: peer.link_ups >= 1 and peer.last(M.CONFIG))
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        spy.loop(0.05)
        peer.step()
    spy.disconnect()
    assert got == []  # EV-0001's CONFIG went to EV-0001 only
    link = agent.agent.service.links[EV1]
    assert dict(link.refused) == {}  # the forged publishes never reached the agent

    # A will aimed at another device's state topic is refused at CONNECT.
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="will")
    c.username_pw_set(EV2, topics.broker_password(KEY2))
    c.will_set(topics.topic(HALL, EV1, "state"), b"offline", qos=1, retain=True)
    answers: list[Any] = []
    c.on_connect = lambda c, u, f, rc, p: answers.append(rc)
    c.connect("127.0.0.1", port)
    end = time.monotonic() + 3
    while not answers and time.monotonic() < end:
        c.loop(0.05)
    assert answers and answers[0].is_failure, answers


FILTERS = [
    ("hcp/v1/H/D/up", "hcp/v1/H/D/up", True),
    ("hcp/v1/H/D/up", "hcp/v1/H/+/up", True),
    ("hcp/v1/H/+/up", "hcp/v1/H/+/up", True),
    ("hcp/v1/H/+/down", "hcp/v1/H/D/down", False),  # a device may not widen to every device
    ("hcp/v1/H/#", "hcp/v1/H/D/down", False),
    ("hcp/v1/H/D/down/x", "hcp/v1/H/D/down", False),
    ("hcp/v1/H/D", "hcp/v1/H/D/down", False),
    ("hcp/v1/H/E/down", "hcp/v1/H/D/down", False),
    ("anything/at/all", "#", True),
]


@pytest.mark.parametrize(("requested", "rule", "ok"), FILTERS)
def test_subscription_filters(requested: str, rule: str, ok: bool) -> None:
    assert _filter_allowed(requested, rule) is ok


def test_standalone_process_with_the_generated_files(tmp_path: Path) -> None:
    """``python -m edge_agent.embedded_broker`` takes mosquitto's files and their $7$ hashes."""
    from edge_agent.broker import write_broker_files

    store = Store(tmp_path / "s.sqlite3")
    registry.add_device(store, device_id=EV1, key=KEY, now_ms=now_ms())
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    write_broker_files(
        store,
        hall=HALL,
        agent_user="hcp-agent",
        agent_secret="s3cret",
        password_file=pw,
        acl_file=acl,
    )
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.embedded_broker",
            "--port",
            str(port),
            "--password-file",
            str(pw),
            "--acl-file",
            str(acl),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False

        wait_for(listening, 20)
        assert try_connect(port, "hcp-agent", "s3cret") == "Success"
        assert try_connect(port, EV1, topics.broker_password(KEY)) == "Success"
        assert try_connect(port, EV1, "wrong") != "Success"
    finally:
        proc.terminate()
        proc.wait(10)


def test_hcp_agent_run_with_its_own_broker(tmp_path: Path) -> None:
    """The installed ``hcp agent run`` as a process: embedded broker, a device, SIGTERM."""
    port, http = free_port(), free_port()
    (tmp_path / "agent.toml").write_text(
        f'[agent]\nhall_id = "{HALL}"\ndata_dir = "data"\nlisten = "127.0.0.1:{http}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nembedded = true\n'
    )
    hcp = Path(sys.executable).parent / "hcp"
    env = {**os.environ, "HCP_LANG": "en"}
    cfg = ["--config", str(tmp_path / "agent.toml")]
    for args in (["add-window", "W01", "--label", "综合窗口 01"],
                 ["add-device", EV1, "--kind", "combined", "--window", "W01",
                  "--generate-key", str(tmp_path / "ev1.key")]):  # fmt: skip
        r = subprocess.run([str(hcp), "agent", *args, *cfg], env=env, capture_output=True)
        assert r.returncode == 0, r.stderr
    key = bytes.fromhex((tmp_path / "ev1.key").read_text().strip())
    proc = subprocess.Popen(
        [str(hcp), "agent", "run", *cfg], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        def up() -> bool:
            try:
                return try_connect(port, EV1, topics.broker_password(key), 1) == "Success"
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False

        wait_for(up, 30, 0.2)
        peer = MqttPeer(port, key, hall=HALL, device_id=EV1)
        peer.mqtt_connect()
        peer.connect()
        peer.run_until(lambda: peer.link_ups >= 1 and peer.last(M.CONFIG), timeout=20)
        seq = peer.press(level=5)
        peer.run_until(lambda: peer.acked == seq)
        peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    c = sqlite3.connect(tmp_path / "data" / "agent.sqlite3")
    try:
        assert c.execute("SELECT device_id, seq, level FROM ratings").fetchall() == [(EV1, 1, 5)]
    finally:
        c.close()
