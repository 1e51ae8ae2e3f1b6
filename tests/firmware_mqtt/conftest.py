"""Real things for the MQTT transport tests: a mosquitto broker, a paho agent, the device.

- Broker: mosquitto on a free port with its own config (no anonymous access, a
  password_file made with mosquitto_passwd -b, an acl_file from protocol.topics'
  acl_rules()/agent_acl_rules(), persistence off); stop() and start() keep the port, which
  is what a broker restart looks like to a device.
- Agent: a CPython paho-mqtt 2.x client with the agent's account and subscriptions; it
  resubscribes after its own reconnects and records every message it receives.
- Device: firmware/net, firmware/transport/mqtt.py and protocol/ compiled with mpy-cross
  and run by the real MicroPython unix port (mp/mqtt_device.py, steered over stdin).
- Relay: a TCP relay between device and broker that can freeze (forward nothing) and cut
  every connection, for dead peers and connections lost mid-packet.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocol.topics import acl_rules, agent_acl_rules, agent_subscriptions, broker_password
from tests.mpy import compile_to, tool

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
HALL = "h1"
DEVICES = {"d1": bytes(range(32)), "d2": bytes(range(1, 33))}
AGENT_USER, AGENT_PASSWORD = "agent-h1", "agent-secret"
HEAP = "96k"  # the budget for the whole app; the client's own share: test_heap


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Broker:
    def __init__(
        self,
        work: Path,
        tls: dict[str, str] | None = None,
        hall: str = HALL,
        devices: dict[str, bytes] = DEVICES,
    ) -> None:
        self.work = work
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        pw = work / "passwd"
        pw.write_text("")
        users = {AGENT_USER: AGENT_PASSWORD} | {d: broker_password(k) for d, k in devices.items()}
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True)
        acl = [f"user {AGENT_USER}"] + [f"topic {a} {t}" for a, t in agent_acl_rules(hall)]
        for d in devices:
            acl += ["", f"user {d}"] + [f"topic {a} {t}" for a, t in acl_rules(hall, d)]
        (work / "acl").write_text("\n".join(acl) + "\n")
        conf = [
            "per_listener_settings false",
            # Run as whoever runs the tests (as root, mosquitto would switch to its own
            # user and could not read this test's files).
            f"user {getpass.getuser()}",
            "allow_anonymous false",
            f"password_file {pw}",
            f"acl_file {work / 'acl'}",
            "persistence false",
            f"listener {self.port} 127.0.0.1",
            f"log_dest file {work / 'mosquitto.log'}",
            "log_type all",
        ]
        if tls:
            conf += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        (work / "mosquitto.conf").write_text("\n".join(conf) + "\n")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.work / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                assert self.proc is not None and self.proc.poll() is None, self.log()
                return False

        wait_until(listening, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self, tail: int = 4000) -> str:
        p = self.work / "mosquitto.log"
        return p.read_text(errors="replace")[-tail:] if p.exists() else ""


class Agent:
    """The hall side: paho-mqtt 2.x with the agent's account."""

    def __init__(self, port: int, **tls: str) -> None:
        self.got: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="agent-h1")
        self.c.username_pw_set(AGENT_USER, AGENT_PASSWORD)
        if tls:
            self.c.tls_set(ca_certs=tls["ca"])
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.got.put(m)
        self.c.reconnect_delay_set(1, 2)
        self.subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()
        assert self.subscribed.wait(10), "the agent could not subscribe"

    def _on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        c.subscribe([(t, 1) for t in agent_subscriptions(HALL)])

    def down(self, device: str, data: bytes) -> None:
        self.c.publish(f"hcp/v1/{HALL}/{device}/down", data, qos=1).wait_for_publish(10)

    def take(self, timeout: float = 10) -> paho.MQTTMessage:
        return self.got.get(timeout=timeout)

    def until(
        self, pred: Callable[[paho.MQTTMessage], bool], timeout: float = 15
    ) -> list[paho.MQTTMessage]:
        """Every message up to and including the first for which pred holds."""
        seen: list[paho.MQTTMessage] = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                m = self.got.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"not received within {timeout} s; got {[(m.topic, m.payload) for m in seen]}"
                ) from None
            seen.append(m)
            if pred(m):
                return seen

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Device:
    """mp/mqtt_device.py under the real MicroPython, one JSON event per output line."""

    def __init__(self, build: Path, cfg: dict[str, Any], heap: str = HEAP) -> None:
        # .frozen: asyncio is frozen into the unix port
        env = dict(os.environ, MICROPYPATH=f".frozen:{build}", HCP_MQTT_CFG=json.dumps(cfg))
        self.proc = subprocess.Popen(
            [tool("micropython"), "-X", f"heapsize={heap}", "-m", "mqtt_device"],
            cwd=build,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self.expect("ready")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"ev": "output", "line": line})
        self.events.put({"ev": "exit"})

    def cmd(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, *evs: str, timeout: float = 20) -> dict[str, Any]:
        """The next event of one of the kinds evs (others are skipped); fails on exit."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                e = self.events.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no {evs} within {timeout} s; output:\n{''.join(self.lines)}"
                ) from None
            if e["ev"] in evs:
                return e
            if e["ev"] in ("exit", "output") and "exit" not in evs:
                time.sleep(0.5)  # the rest of a traceback
                raise AssertionError(
                    f"device ended while waiting for {evs}:\n{''.join(self.lines)}"
                )

    def stats(self) -> dict[str, Any]:
        self.cmd("stats")
        return self.expect("stats")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Relay:
    """A TCP relay (threads) that can freeze its connections or cut them."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.srv.getsockname()[1])
        self.frozen = threading.Event()  # forward nothing, either way
        self.hold_down = threading.Event()  # forward nothing from the broker
        self.socks: list[socket.socket] = []
        self.cut_after: int | None = None  # cut after this many bytes broker -> device
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target), 5)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while True:
                while self.frozen.is_set() or (down and self.hold_down.is_set()):
                    time.sleep(0.02)
                data = src.recv(4096)
                while self.frozen.is_set() or (down and self.hold_down.is_set()):
                    time.sleep(0.02)  # a frozen link passes no close either
                if not data:
                    break
                if down and self.cut_after is not None:
                    n = self.cut_after
                    if len(data) >= n:
                        dst.sendall(data[:n])
                        break
                    self.cut_after = n - len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.srv.close()
        self.cut()


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mqtt-mpy")
    for pattern in (
        "firmware/__init__.py",
        "firmware/net/*.py",
        "firmware/transport/*.py",
        "protocol/*.py",
    ):
        for src in sorted(ROOT.glob(pattern)):
            compile_to(src, out / src.relative_to(ROOT).with_suffix(".mpy"))
    for script in ("mqtt_device", "heap"):
        compile_to(HERE / "mp" / f"{script}.py", out / f"{script}.mpy")
    return out


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is missing (apt install mosquitto)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def relay(broker: Broker) -> Iterator[Relay]:
    r = Relay(broker.port)
    yield r
    r.close()


@pytest.fixture
def agent(broker: Broker) -> Iterator[Agent]:
    a = Agent(broker.port)
    yield a
    a.close()


def device_cfg(port: int, device: str = "d1", **kw: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "type": "mqtt",
        "host": "127.0.0.1",
        "port": port,
        "tls": False,
        "keepalive_s": 10,
        "hall": HALL,
        "device": device,
        "key": DEVICES[device].hex(),
        "boot": 7,
        "retry_ms": 2000,
        "backoff_base_ms": 200,
        "backoff_cap_ms": 2000,
        "timeout_ms": 5000,
        "tick_ms": 200,
    }
    cfg.update(kw)
    return cfg


@pytest.fixture
def devices(build: Path) -> Iterator[Callable[..., Device]]:
    made: list[Device] = []

    def make(cfg: dict[str, Any], heap: str = HEAP) -> Device:
        d = Device(build, cfg, heap)
        made.append(d)
        return d

    yield make
    for d in made:
        d.kill()
