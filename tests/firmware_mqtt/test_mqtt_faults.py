"""A scripted "broker" that answers the real client (under MicroPython) with bad bytes.

Each connection the device makes gets the next script: one reply per packet the client
sends (CONNECT, SUBSCRIBE, ...), then silence with the connection held open. Every bad
answer must end the attempt with a clear MqttError code within the client's timeout:
never a hang, never a crash of the device process.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.firmware_mqtt.conftest import Device, device_cfg, wait_until

Reply = Callable[[int, bytes], bytes]  # (first byte, body) of the client's packet
CLOSE = "close"  # in a script: close the connection now (without reading a packet)
CONNACK = b"\x20\x02\x00\x00"
ERRORS = {"mqtt.protocol", "mqtt.timeout", "mqtt.oversize", "mqtt.closed", "mqtt.refused"}


def send(data: bytes) -> Reply:
    return lambda first, body: data


def puback(first: int, body: bytes) -> bytes:
    """The PUBACK for the client's QoS 1 PUBLISH."""
    n = 2 + int.from_bytes(body[:2], "big")
    return b"\x40\x02" + body[n : n + 2]


def suback(*codes: int) -> Reply:
    """A SUBACK for the client's SUBSCRIBE (its packet id), with these return codes."""
    return lambda first, body: b"\x90" + bytes((2 + len(codes),)) + body[:2] + bytes(codes)


class FakeBroker:
    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.srv.getsockname()[1])
        self.scripts: queue.Queue[list[Reply | str]] = queue.Queue()
        self.received: list[int] = []  # first bytes of the client's packets
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            try:
                script = self.scripts.get_nowait()
            except queue.Empty:
                script = []
            threading.Thread(target=self._serve, args=(c, script), daemon=True).start()

    @staticmethod
    def _packet(c: socket.socket) -> tuple[int, bytes] | None:
        def exactly(n: int) -> bytes:
            out = b""
            while len(out) < n:
                got = c.recv(n - len(out))
                if not got:
                    raise EOFError
                out += got
            return out

        try:
            first = exactly(1)[0]
            n = shift = 0
            while True:
                b = exactly(1)[0]
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            return first, exactly(n)
        except (EOFError, OSError):
            return None

    def _serve(self, c: socket.socket, script: list[Reply | str]) -> None:
        for reply in script:
            if reply == CLOSE:
                c.close()
                return
            got = self._packet(c)
            if got is None:
                return
            self.received.append(got[0])
            assert callable(reply)
            with contextlib.suppress(OSError):
                c.sendall(reply(*got))
        while self._packet(c) is not None:  # silence: read and ignore, keep it open
            pass

    def close(self) -> None:
        self.srv.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def fake() -> Iterator[FakeBroker]:
    f = FakeBroker()
    yield f
    f.close()


@pytest.fixture
def device(fake: FakeBroker, devices: Callable[..., Device]) -> Device:
    return devices(device_cfg(fake.port, timeout_ms=1000, backoff_base_ms=50, backoff_cap_ms=200))


CASES: list[tuple[str, list[Reply | str], str]] = [
    ("silent server", [], "mqtt.timeout"),
    ("reserved packet type", [send(b"\xf0\x00")], "mqtt.protocol"),
    ("PINGRESP before CONNACK", [send(b"\xd0\x00")], "mqtt.protocol"),
    ("CONNACK too long", [send(b"\x20\x03\x00\x00\x00")], "mqtt.protocol"),
    ("CONNACK bad flags", [send(b"\x21\x02\x00\x00")], "mqtt.protocol"),
    ("CONNACK return code 9", [send(b"\x20\x02\x00\x09")], "mqtt.protocol"),
    ("CONNACK refused: not authorized", [send(b"\x20\x02\x00\x05")], "mqtt.refused"),
    ("five-byte length", [send(b"\x20\xff\xff\xff\xff\x7f")], "mqtt.protocol"),
    ("closed mid CONNACK", [send(b"\x20\x02\x00"), CLOSE], "mqtt.closed"),
    ("length longer than sent", [send(b"\x20\x7f\x00\x00")], "mqtt.timeout"),
    ("oversize PUBLISH", [send(CONNACK + b"\x30\xff\xff\x3f")], "mqtt.oversize"),
    ("PUBLISH QoS 3", [send(CONNACK + b"\x36\x05\x00\x01a\x00\x01")], "mqtt.protocol"),
    ("PUBLISH packet id 0", [send(CONNACK + b"\x32\x05\x00\x01a\x00\x00")], "mqtt.protocol"),
    ("PUBLISH topic not UTF-8", [send(CONNACK + b"\x30\x04\x00\x02\xff\xfe")], "mqtt.protocol"),
    ("PUBLISH topic truncated", [send(CONNACK + b"\x30\x02\x00\x05")], "mqtt.protocol"),
    ("second CONNACK", [send(CONNACK), send(CONNACK)], "mqtt.protocol"),
    ("SUBACK refused (0x80)", [send(CONNACK), suback(0x80)], "mqtt.suback"),
    ("SUBACK bad return code", [send(CONNACK), suback(0x03)], "mqtt.protocol"),
    ("SUBACK for two topics", [send(CONNACK), suback(1, 1)], "mqtt.protocol"),
    ("no SUBACK", [send(CONNACK)], "mqtt.timeout"),
]


def test_bad_answers_give_clear_errors(fake: FakeBroker, device: Device) -> None:
    for name, script, code in CASES:
        fake.scripts.put(script)
        device.cmd("connect")
        e = device.expect("connect_error", "connected", timeout=10)
        assert e["ev"] == "connect_error" and e["code"] == code, (name, e)
    assert not device.stats()["connected"]


def test_random_bytes_never_hang_or_crash_the_client(fake: FakeBroker, device: Device) -> None:
    rng = random.Random(20261123)
    for i in range(20):
        junk = rng.randbytes(rng.randint(1, 48))
        script: list[Reply | str] = [send(junk)] if i % 2 else [send(CONNACK + junk)]
        fake.scripts.put(script)
        device.cmd("connect")
        e = device.expect("connect_error", "connected", timeout=10)
        assert e["ev"] == "connect_error" and e["code"] in ERRORS | {"mqtt.suback"}, (junk, e)


def test_garbage_after_connecting_ends_the_link_not_the_device(
    fake: FakeBroker, device: Device
) -> None:
    bad_pingresp = b"\xd0\x01\x00"
    fake.scripts.put([send(CONNACK), suback(1), lambda f, b: puback(f, b) + bad_pingresp])
    fake.scripts.put([send(CONNACK), suback(1), puback])  # the reconnection: all well
    device.cmd("run")
    device.expect("connected")
    lost = device.expect("lost")
    assert lost["code"] == "mqtt.protocol" and "PINGRESP" in lost["msg"], lost
    assert device.expect("connected")["conn"] == 2
    wait_until(lambda: device.stats()["inflight"] == 0, 10, "the online state's PUBACK")
    assert device.stats()["connected"]
