"""MQTT device links through a REAL mosquitto, with the files ``hcp agent broker-files`` wrote.

The broker runs with ``allow_anonymous false``, the generated password_file ($7$ PBKDF2
hashes) and acl_file, persistence off. The agent runs in-process (the real Agent: store,
links, HTTP); devices are CPython peers speaking the real protocol over paho (mqtt_peer.py).

Covered: accounts (right password in, wrong password / no key / anonymous / quarantined
out, regeneration + SIGHUP takes effect), ratings stored and acknowledged only after the
commit, presence from the retained STATE and the Last Will (a stale will ignored), a broker
restart (agent and device reconnect, nothing lost, nothing twice), the ACL (a device cannot
publish as another), forged/replayed/garbage/oversized payloads counted and refused, and
a quarantined device's packets dropped.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent import registry
from edge_agent.broker import check_password
from edge_agent.config import load_config
from edge_agent.store import Store, now_ms
from protocol import messages as M
from protocol import topics
from protocol.messages import Message
from protocol.packet import Signer, seal
from tests.agent.helpers import HALL, KEY, AgentThread, wait_for
from tests.agent.mqtt_peer import Mosquitto, MqttPeer, make_ca, try_connect

ROOT = Path(__file__).resolve().parents[2]
EV1, EV2, EV3 = "EV-0001", "EV-0002", "EV-0003"
KEY2 = bytes(range(1, 33))
AGENT_USER = "hcp-agent"


def hcp(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``hcp`` entry point, as an administrator runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "hcp"), "--lang", "en", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Hall:
    """A store with three devices (EV-0003 without a key), broker files, a real mosquitto."""

    def __init__(self, tmp: Path, pki: dict[str, str] | None = None, ca: str = "") -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.data.mkdir()
        self.pki = pki
        pw, acl = self.data / "mosquitto.passwd", self.data / "mosquitto.acl"
        self.broker = Mosquitto(tmp, pw, acl, tls=pki)
        self.host = "localhost" if pki else "127.0.0.1"
        tls = f'tls = true\nca = "{ca or pki["ca"]}"\n' if pki else ""
        self.config_path = tmp / "agent.toml"
        self.config_path.write_text(
            f'[agent]\nhall_id = "{HALL}"\ndata_dir = "data"\nlisten = "127.0.0.1:0"\n'
            "heartbeat_s = 2\n\n"
            '[policy]\nqr_base_url = "https://hub.example.gov.cn/r"\n\n'
            f'[mqtt]\nhost = "{self.host}"\nport = {self.broker.port}\n{tls}'
            f'username = "{AGENT_USER}"\npassword_file = "agent-mqtt.secret"\n'
        )
        store = Store(self.data / "agent.sqlite3")
        t = now_ms()
        registry.add_window(store, window_id="W01", label="综合窗口 01", now_ms=t)
        registry.add_window(store, window_id="W02", label="综合窗口 02", now_ms=t)
        registry.add_device(
            store, device_id=EV1, key=KEY, kind=M.KIND_COMBINED, window_id="W01", now_ms=t
        )
        registry.add_device(
            store, device_id=EV2, key=KEY2, kind=M.KIND_COMBINED, window_id="W02", now_ms=t
        )
        registry.add_device(store, device_id=EV3, now_ms=t)  # no key: no account
        store.close()
        self.broker_files()
        self.broker.start()
        self.agent: AgentThread | None = None
        self.peers: list[MqttPeer] = []

    def broker_files(self, *extra: str) -> str:
        r = hcp("agent", "broker-files", "--config", str(self.config_path), *extra)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def start_agent(self, state: str = "connected") -> AgentThread:
        self.agent = AgentThread(load_config(self.config_path)).start()
        mqtt = self.agent.agent.mqtt
        assert mqtt is not None
        wait_for(lambda: mqtt.state == state, timeout=15)
        return self.agent

    def peer(self, device: str = EV1, key: bytes = KEY) -> MqttPeer:
        ca = self.pki["ca"] if self.pki else None
        p = MqttPeer(
            self.broker.port,
            key,
            hall=HALL,
            device_id=device,
            status_every_ms=500,
            ca=ca,
            host=self.host,
        )
        self.peers.append(p)
        return p

    def up(self, device: str = EV1, key: bytes = KEY) -> MqttPeer:
        p = self.peer(device, key)
        p.mqtt_connect()
        p.connect()
        p.run_until(lambda: p.link_ups >= 1 and p.last(M.CONFIG))
        return p

    def link(self, device: str) -> Any:
        assert self.agent is not None
        return wait_for(lambda: self.agent.agent.service.links.get(device))  # type: ignore[union-attr]

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        c = sqlite3.connect(self.data / "agent.sqlite3")
        try:
            return c.execute(query, args).fetchall()
        finally:
            c.close()

    def close(self) -> None:
        for p in self.peers:
            p.close()
        if self.agent is not None:
            self.agent.stop()
        self.broker.stop()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[Hall]:
    h = Hall(tmp_path)
    yield h
    h.close()


def test_broker_accounts_from_the_registry(hall: Hall) -> None:
    port = hall.broker.port
    secret = (hall.tmp / "agent-mqtt.secret").read_text().strip()
    assert len(secret) == 32 and (hall.tmp / "agent-mqtt.secret").stat().st_mode & 0o777 == 0o600
    lines = dict(
        line.split(":", 1) for line in (hall.data / "mosquitto.passwd").read_text().splitlines()
    )
    assert sorted(lines) == [EV1, EV2, AGENT_USER]  # EV-0003 has no key: no account
    assert check_password(topics.broker_password(KEY), lines[EV1])
    assert not check_password(topics.broker_password(KEY2), lines[EV1])
    assert (hall.data / "mosquitto.passwd").stat().st_mode & 0o777 == 0o640
    acl = (hall.data / "mosquitto.acl").read_text()
    assert f"user {EV1}\ntopic write hcp/v1/{HALL}/{EV1}/up\n" in acl
    assert f"topic write hcp/v1/{HALL}/+/down" in acl

    # The real mosquitto takes the $7$ hashes, and nothing else.
    assert try_connect(port, AGENT_USER, secret) == "Success"
    assert try_connect(port, EV1, topics.broker_password(KEY)) == "Success"
    assert try_connect(port, EV1, topics.broker_password(KEY2)) != "Success"  # wrong password
    assert try_connect(port, EV2, topics.broker_password(KEY)) != "Success"
    assert try_connect(port, EV3, topics.broker_password(KEY)) != "Success"  # no key, no account
    assert try_connect(port, "", None) != "Success"  # anonymous

    # A device gets its key: regenerate, reload, it is in. One is blocked: it is out.
    store = Store(hall.data / "agent.sqlite3")
    registry.add_device(store, device_id=EV3, key=bytes(range(2, 34)), now_ms=now_ms())
    registry.set_quarantine(store, device_id=EV2, reason="admin", now_ms=now_ms())
    store.close()
    out = hall.broker_files("--reload-pid", str(hall.broker.pid_file))
    assert "2 device accounts" in out and "EV-0002 (admin)" in out, out
    hall.broker.reload()
    assert try_connect(port, EV3, topics.broker_password(bytes(range(2, 34)))) == "Success"
    assert try_connect(port, EV2, topics.broker_password(KEY2)) != "Success"
    assert try_connect(port, EV1, topics.broker_password(KEY)) == "Success"


def test_broker_files_need_an_mqtt_section(hall: Hall) -> None:
    text = hall.config_path.read_text()
    hall.config_path.write_text(text[: text.index("[mqtt]")])
    r = hcp("agent", "broker-files", "--config", str(hall.config_path))
    assert r.returncode == 1 and "no [mqtt] section" in r.stderr, r.stderr


def test_ratings_presence_and_a_broker_restart(hall: Hall) -> None:
    hall.start_agent()
    peer = hall.up()
    config = peer.last(M.CONFIG)
    assert config is not None and config.window == "综合窗口 01"
    link = hall.link(EV1)
    wait_for(lambda: link.snapshot()["presence"] == {"online": True, "boot_conn": [1, 1]})
    wait_for(lambda: hall.sql("SELECT online, link FROM devices WHERE device_id = ?", EV1))
    assert hall.sql("SELECT online, link FROM devices WHERE device_id = ?", EV1) == [(1, "mqtt")]

    health = hall.agent.http("GET", "/healthz").json()  # type: ignore[union-attr]
    assert health["brokers"]["mqtt"]["state"] == "connected"
    assert {"device_id": EV1, "port": f"mqtt://127.0.0.1:{hall.broker.port}", "state": "open",
            "quarantine": None} in health["links"]  # fmt: skip

    seqs = [peer.press(level=5) for _ in range(5)]
    peer.run_until(lambda: peer.acked == seqs[-1])
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings ORDER BY seq")] == seqs

    # A new connection (conn 2), then the will of conn 1 arrives late: it must not count.
    peer.close()
    peer.mqtt_connect()
    wait_for(lambda: link.snapshot()["presence"]["boot_conn"] == [1, 2])
    stale = link.refused["presence.stale"]
    peer.publish_raw(peer.state_topic, peer.state(False, conn=1))
    wait_for(lambda: link.refused["presence.stale"] == stale + 1)
    assert link.snapshot()["presence"]["online"] is True

    # Power cut: the broker publishes the Last Will; the agent marks the device offline.
    peer.vanish()
    wait_for(lambda: link.snapshot()["presence"] == {"online": False, "boot_conn": [1, 2]})
    wait_for(lambda: hall.sql("SELECT online FROM devices WHERE device_id = ?", EV1) == [(0,)])

    # Back, then the broker restarts while the device holds new ratings.
    peer.run_until(lambda: peer.connected and peer.session.is_open(), timeout=15)
    mqtt = hall.agent.agent.mqtt  # type: ignore[union-attr]
    assert mqtt is not None
    before = mqtt.connections
    hall.broker.stop()
    more = [peer.press(level=4) for _ in range(3)]
    peer.run_for(0.5)
    assert peer.acked == seqs[-1]  # nothing can be acknowledged without the broker
    hall.broker.start()
    peer.run_until(lambda: peer.acked == more[-1], timeout=30)
    assert mqtt.connections > before
    rows = hall.sql("SELECT seq, count(*) FROM ratings GROUP BY seq ORDER BY seq")
    assert rows == [(s, 1) for s in seqs + more]  # every acknowledged rating, exactly once


def test_bad_payloads_acl_and_quarantine(hall: Hall) -> None:
    agent = hall.start_agent()
    agent.db(registry.set_quarantine, device_id=EV2, reason="admin", now_ms=now_ms())
    peer = hall.up()
    link = hall.link(EV1)
    peer.press(level=5)
    peer.run_until(lambda: peer.acked == 1)
    base = dict(link.refused)

    def refused(code: str) -> int:
        return int(link.refused[code]) - base.get(code, 0)

    good = peer.sent_packets[-1]
    forged = seal(
        Message(
            M.STATUS,
            uptime_s=1,
            ticks=0,
            free_heap=1,
            outbox_depth=0,
            outbox_dropped=0,
            errors=[0] * 6,
            link={"rssi": None, "rx_dropped": 0},
            ui=1,
            config_version=0,
        ),
        Signer(KEY2),
        M.UP,
        peer.boot,
        10_000,
    )
    bad = {
        "garbage": b"\x00garbage\xff" * 3,
        "truncated": good[:5],
        "forged": forged,
        "flipped": good[:-1] + bytes([good[-1] ^ 1]),
        "replayed": good,
    }
    for payload in bad.values():
        peer.publish_raw(peer.up_topic, payload)
    peer.publish_raw(peer.up_topic, b"x" * 5000)  # larger than any packet
    peer.publish_raw(peer.state_topic, b"not a state")
    wait_for(lambda: sum(link.refused.values()) - sum(base.values()) >= 7)
    # garbage, forged and flipped fail the tag; truncated and the bad state are too short
    # for a header; the replay is seen; the oversized one never reaches the session.
    assert refused("auth.mac") == 3, dict(link.refused)
    assert refused("auth.truncated") == 2, dict(link.refused)
    assert refused("replay.seen") >= 1, dict(link.refused)
    assert refused("mqtt.oversize") == 1
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings")] == [1]  # nothing else stored

    # The link carries on.
    peer.press(level=3)
    peer.run_until(lambda: peer.acked == 2)

    # ACL: EV-0002 cannot publish on EV-0001's topics (mosquitto drops it); on its own
    # topic the same garbage arrives, and is dropped as quarantined.
    intruder = hall.peer(EV2, KEY2)
    intruder.mqtt_connect()
    before = dict(link.refused)
    intruder.publish_raw(peer.up_topic, b"\x00garbage\xff")
    intruder.publish_raw(peer.state_topic, b"\x00garbage\xff")
    intruder.publish_raw(intruder.up_topic, b"\x00garbage\xff")
    link2 = hall.link(EV2)
    wait_for(lambda: link2.refused["quarantined"] >= 2)  # its state on connect + the garbage
    peer.run_for(0.3)
    assert dict(link.refused) == before
    assert link2.snapshot()["state"] == "quarantined"
    intruder.connect()  # a HELLO from a quarantined device: dropped, no session
    intruder.run_for(0.5)
    assert intruder.link_ups == 0
    assert hall.sql("SELECT count(*) FROM ratings WHERE device_id = ?", EV2) == [(0,)]


def test_tls_to_the_broker(tmp_path: Path) -> None:
    hall = Hall(tmp_path, pki=make_ca(tmp_path / "pki", "hall"))
    try:
        hall.start_agent()
        peer = hall.up()
        peer.press(level=1)
        peer.run_until(lambda: peer.acked == 1)
        assert hall.sql("SELECT seq, level FROM ratings") == [(1, 1)]
    finally:
        hall.close()


def test_a_broker_the_agent_cannot_trust_or_enter(tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other", "other")  # a CA that did not sign the broker
    hall = Hall(tmp_path, pki=make_ca(tmp_path / "pki", "hall"), ca=other["ca"])
    try:
        agent = hall.start_agent(state="unreachable")
        hall.agent = None
        agent.stop()
        # The right CA, the wrong password: the broker refuses the agent's account.
        text = hall.config_path.read_text().replace(other["ca"], hall.pki["ca"])  # type: ignore[index]
        hall.config_path.write_text(text)
        (hall.tmp / "agent-mqtt.secret").write_text("not-the-password\n")
        agent = hall.start_agent(state="refused")
        health = agent.http("GET", "/healthz").json()
        assert health["brokers"]["mqtt"]["state"] == "refused"
        assert health["brokers"]["mqtt"]["refused"]["mqtt.connect_refused"] >= 1
    finally:
        hall.close()


def test_quarantine_cuts_off_a_live_link(hall: Hall) -> None:
    agent = hall.start_agent()
    peer = hall.up()
    peer.press(level=5)
    peer.run_until(lambda: peer.acked == 1)
    link = hall.link(EV1)
    agent.db(registry.set_quarantine, device_id=EV1, reason="admin", now_ms=now_ms())
    peer.run_until(lambda: link.snapshot()["state"] == "quarantined", timeout=15)
    assert hall.sql("SELECT online FROM devices WHERE device_id = ?", EV1) == [(0,)]
    peer.press(level=1)
    peer.run_for(1.5)
    assert peer.acked == 1 and link.refused["quarantined"] > 0  # nothing more is accepted
    assert hall.sql("SELECT count(*) FROM ratings") == [(1,)]
    agent.db(registry.set_quarantine, device_id=EV1, reason=None, now_ms=now_ms())
    peer.run_until(lambda: peer.acked == 2, timeout=30)  # released: it resends and is stored
