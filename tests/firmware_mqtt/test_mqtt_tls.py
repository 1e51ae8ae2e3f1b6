"""TLS to the broker under the real MicroPython: mosquitto with a certificate from a CA
made here (openssl); the device verifies it with the CA file from its config, and refuses
a broker whose certificate another CA signed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.topics import topic
from tests.firmware_mqtt.conftest import HALL, Agent, Broker, Device, device_cfg

UP = topic(HALL, "d1", "up")
TLS_HEAP = "160k"  # mbedtls takes ~128 KB of the unix port's GC heap (on an ESP32, IDF's heap)


def make_ca(work: Path, name: str) -> dict[str, str]:
    """A self-signed CA and a server certificate for localhost that it signed."""
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
    return {
        "ca": str(work / "ca.pem"),
        "cert": str(work / "server.pem"),
        "key": str(work / "server.key"),
    }


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, dict[str, str]]]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing")
    pki = make_ca(tmp_path / "pki", "hcp")
    b = Broker(tmp_path, tls=pki)
    b.start()
    yield b, pki
    b.stop()


def test_tls_with_the_ca_from_config(
    tls_broker: tuple[Broker, dict[str, str]], devices: Callable[..., Device], tmp_path: Path
) -> None:
    broker, pki = tls_broker
    agent = Agent(broker.port, ca=pki["ca"])
    try:
        d = devices(device_cfg(broker.port, host="localhost", tls=True, ca=pki["ca"]), TLS_HEAP)
        d.cmd("connect")
        d.expect("connected")
        d.cmd("send over-tls")
        d.expect("sent")
        got = agent.until(lambda m: m.topic == UP)
        assert got[-1].payload == b"over-tls", [(m.topic, m.payload) for m in got]
        agent.down("d1", b"down over tls")
        d.cmd("run")
        assert d.expect("down")["data"] == "down over tls"
    finally:
        agent.close()
    d.kill()  # (the next d1 would take its session over)
    # By IP address: checked against the certificate's IP subjectAltName.
    d = devices(device_cfg(broker.port, host="127.0.0.1", tls=True, ca=pki["ca"]), TLS_HEAP)
    d.cmd("connect")
    assert d.expect("connected", "connect_error")["ev"] == "connected"
    d.kill()
    accepted = broker.log(tail=1 << 20).count("Sending CONNACK to d1")
    # A broker certificate from another CA is refused: no connection, a clear error.
    other = make_ca(tmp_path / "other", "rogue")
    d = devices(device_cfg(broker.port, host="localhost", tls=True, ca=other["ca"]), TLS_HEAP)
    d.cmd("connect")
    e = d.expect("connect_error")
    assert e["code"] == "mqtt.tls" and "not correctly signed" in e["msg"], e
    assert broker.log(tail=1 << 20).count("Sending CONNACK to d1") == accepted == 2
