"""MQTT things for the agent tests: a real mosquitto, and the CPython device peer over MQTT.

- ``Mosquitto``: the real broker on a free port with its own config (no anonymous access,
  the password_file and acl_file that ``hcp agent broker-files`` wrote, persistence off);
  stop() and start() keep the port, which is what a broker restart looks like; reload()
  sends SIGHUP, as an admin does after regenerating the files.
- ``MqttPeer``: simulator/peer.py's DevicePeer (the same session, outbox and reactions)
  with its packets carried by paho-mqtt instead of a pty: its own broker account
  (device id, topics.broker_password(key)), the retained signed STATE and a Last Will with
  (boot, conn), QoS 1 both ways. Single-threaded like DevicePeer: ``step()`` runs paho's
  loop once, then the session; a lost broker is reconnected from step() with a new conn.
"""

from __future__ import annotations

import getpass
import queue
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from protocol import topics
from protocol.packet import Signer
from simulator.peer import DevicePeer, mono_ms

RECONNECT_EVERY_MS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(
        self, work: Path, password_file: Path, acl_file: Path, tls: dict[str, str] | None = None
    ) -> None:
        self.work = work
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid_file = work / "mosquitto.pid"
        conf = [
            "per_listener_settings false",
            # As root, mosquitto would switch to its own user and could not read these files.
            f"user {getpass.getuser()}",
            "allow_anonymous false",
            "set_tcp_nodelay true",  # as docs/hall-admin.md recommends: no Nagle delay per hop
            f"password_file {password_file}",
            f"acl_file {acl_file}",
            "persistence false",
            f"pid_file {self.pid_file}",
            f"listener {self.port} 127.0.0.1",
            f"log_dest file {work / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type subscribe",
        ]
        if tls:
            conf += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        (work / "mosquitto.conf").write_text("\n".join(conf) + "\n")

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.work / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None, self.log()
                assert time.monotonic() < end, "mosquitto did not listen within 10 s"
                time.sleep(0.05)

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)  # mosquitto rereads the files on its next loop

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        p = self.work / "mosquitto.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""


def make_ca(work: Path, name: str) -> dict[str, str]:
    """A self-signed CA (openssl) and a server certificate for localhost that it signed."""
    work.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        f"/CN={name} test CA", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (work / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "server.pem")  # fmt: skip
    return {"ca": str(work / "ca.pem"), "cert": str(work / "server.pem"),
            "key": str(work / "server.key")}  # fmt: skip


def try_connect(port: int, user: str, password: str | None, timeout: float = 5.0) -> str:
    """Connect once and report the broker's answer: "Success" or its refusal reason."""
    result: queue.Queue[str] = queue.Queue()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"probe-{user}-{time.time_ns()}")
    c.username_pw_set(user, password)
    c.on_connect = lambda c, u, f, rc, p: result.put(str(rc))
    c.connect("127.0.0.1", port, keepalive=10)
    end = time.monotonic() + timeout
    try:
        while result.empty() and time.monotonic() < end:
            c.loop(0.05)
        return result.get_nowait() if not result.empty() else "timeout"
    finally:
        c.disconnect()


class MqttPeer(DevicePeer):
    """A device on the hall broker; the rest of DevicePeer works unchanged."""

    def __init__(
        self,
        port: int,
        key: bytes,
        *,
        hall: str,
        device_id: str,
        ca: str | None = None,
        host: str = "127.0.0.1",
        **kw: Any,
    ) -> None:
        super().__init__(-1, key, device_id=device_id, **kw)
        self.ca = ca
        self.host = host
        self.port = port
        self.hall = hall
        self.signer = Signer(key)
        self.conn = 0
        self.state_ctr = 0
        self.published = 0
        self.connected = False
        self._rx: list[bytes] = []
        self._retry_at = 0
        self.up_topic = topics.topic(hall, device_id, topics.UP_TOPIC)
        self.state_topic = topics.topic(hall, device_id, topics.STATE_TOPIC)
        self.down_topic = topics.topic(hall, device_id, topics.DOWN_TOPIC)
        self.client: paho.Client | None = None

    # ---- broker connection ----
    def state(self, online: bool, conn: int | None = None) -> bytes:
        self.state_ctr += 1
        return topics.state_payload(
            self.signer, online, self.boot, self.conn if conn is None else conn, self.state_ctr
        )

    def mqtt_connect(self) -> None:
        self.conn += 1
        c = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"{self.device_id}",
            clean_session=True,
        )
        c.username_pw_set(self.device_id, topics.broker_password(self.key))
        c.will_set(self.state_topic, self.state(False), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = lambda c, u, m: self._rx.append(bytes(m.payload))
        c.on_disconnect = self._on_disconnect
        c.on_socket_open = lambda c, u, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )  # as the agent does (mqtt_link): no Nagle delay on small packets
        if self.ca is not None:
            c.tls_set(ca_certs=self.ca)
        self.client = c
        c.connect(self.host, self.port, keepalive=30)
        end = time.monotonic() + 5
        while not self.connected and time.monotonic() < end:
            c.loop(0.02)
        assert self.connected, f"{self.device_id} could not connect to the broker"

    def _on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            return
        self.connected = True
        c.subscribe(self.down_topic, qos=1)
        c.publish(self.state_topic, self.state(True), qos=1, retain=True)

    def _on_disconnect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False

    def vanish(self) -> None:
        """Power cut: the TCP connection dies without DISCONNECT; the broker sends the will."""
        assert self.client is not None
        sock = self.client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        self.client = None
        self.connected = False

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop(0.05)
        self.client = None
        self.connected = False

    def publish_raw(self, topic: str, payload: bytes) -> None:
        assert self.client is not None
        self.client.publish(topic, payload, qos=1)
        self.client.loop(0.02)

    # ---- DevicePeer's I/O, over MQTT ----
    def flush(self) -> None:
        for p in self.session.packets_to_send():
            self.sent_packets.append(p)
            if self.client is not None and self.connected:
                self.client.publish(self.up_topic, p, qos=1)
                self.published += 1
            else:
                self.write_drops += 1  # the session retransmits

    def step(self, timeout: float = 0.02) -> None:
        now = mono_ms()
        if (self.client is None or not self.connected) and now >= self._retry_at:
            self._retry_at = now + RECONNECT_EVERY_MS
            try:
                self.mqtt_connect()
            except (OSError, AssertionError):
                self.client = None
        if self.client is not None:
            try:
                self.client.loop(timeout)
            except OSError:
                self.connected = False
        else:
            time.sleep(timeout)
        now = mono_ms()
        rx, self._rx = self._rx, []
        for p in rx:
            self.session.receive(p, now)
        self._tick(now)
