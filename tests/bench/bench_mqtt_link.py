"""MQTT device links: press-to-ack through a real mosquitto, against serial in the same run.

    .venv/bin/python -m tests.bench.bench_mqtt_link            # print the figures
    .venv/bin/python -m tests.bench.bench_mqtt_link --write    # also update docs/performance.md

Everything real: the Agent in-process (store WAL + synchronous=FULL, acknowledge after
commit), mosquitto with the generated password/ACL files (tests/agent/test_mqtt.Hall), CPython
device peers over paho (tests/agent/mqtt_peer.py). A press is timed from the device
queueing it to the device seeing the agent's ACK for it. Baseline: the same device peer
and agent over a real pty (tests/agent/test_link.Hall), so the ratio is what the broker hop
costs. Also: one device keeping its send window (8) full, and N devices pressing at once.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.agent import test_link, test_mqtt
from tests.agent.helpers import KEY
from tests.agent.mqtt_peer import MqttPeer
from tests.bench.report import write_block


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def sequential(peer: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        seq = peer.press(level=5)
        while peer.acked < seq:
            peer.step(0.0005)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def burst(peer: Any, n: int) -> float:
    t0 = time.perf_counter()
    seqs = [peer.press(level=4) for _ in range(n)]
    while peer.acked < seqs[-1]:
        peer.step(0.0005)
    return n / (time.perf_counter() - t0)


def many(hall: test_mqtt.Hall, devices: int, presses: int) -> tuple[list[float], float]:
    """devices peers on one thread, each pressing presses times; press-to-ack of each."""
    from edge_agent import registry
    from protocol import messages as M

    peers: list[MqttPeer] = []
    for i in range(devices):
        device, key = f"EVB-{i:04d}", bytes([i % 256]) * 16 + KEY[:16]
        assert hall.agent is not None
        hall.agent.db(registry.add_device, device_id=device, key=key, kind=M.KIND_EVALUATOR,
                      now_ms=int(time.time() * 1000))  # fmt: skip
        peers.append(hall.peer(device, key))
    hall.broker_files("--reload-pid", str(hall.broker.pid_file))
    hall.broker.reload()
    for p in peers:
        p.mqtt_connect()
        p.connect()
    end = time.monotonic() + 60
    while not all(p.session.is_open() for p in peers):
        for p in peers:
            p.step(0)
        assert time.monotonic() < end, "devices did not link"
    pressed: dict[tuple[int, int], float] = {}
    lat: list[float] = []
    t0 = time.perf_counter()
    for i, p in enumerate(peers):
        for _ in range(presses):
            pressed[(i, p.press(level=5))] = time.perf_counter()
    while pressed:
        for i, p in enumerate(peers):
            p.step(0)
            now = time.perf_counter()
            for key in [k for k in pressed if k[0] == i and k[1] <= p.acked]:
                lat.append((now - pressed.pop(key)) * 1000)
    return lat, devices * presses / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 100 if args.quick else 500
    os.chdir(Path(__file__).resolve().parents[2])

    serial = test_link.Hall(Path(tempfile.mkdtemp()))
    try:
        speer = serial.up()
        sequential(speer, 20)  # warm up
        s_lat = sequential(speer, n)
        s_burst = burst(speer, 4 * n)
    finally:
        serial.close()

    hall = test_mqtt.Hall(Path(tempfile.mkdtemp()))
    try:
        hall.start_agent()
        peer = hall.up()
        sequential(peer, 20)
        m_lat = sequential(peer, n)
        m_burst = burst(peer, 4 * n)
        devices = 20 if args.quick else 50
        many_lat, many_rate = many(hall, devices, 10 if args.quick else 20)
    finally:
        hall.close()

    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, mosquitto 2.0.",
        "",
        "| | p50 ms | p99 ms | vs serial (p50) |",
        "|---|---|---|---|",
        f"| serial (pty), one device, press by press (baseline) | {pct(s_lat, 0.5):.1f} "
        f"| {pct(s_lat, 0.99):.1f} | 1.0 |",
        f"| MQTT via mosquitto, one device, press by press | {pct(m_lat, 0.5):.1f} "
        f"| {pct(m_lat, 0.99):.1f} | {pct(m_lat, 0.5) / pct(s_lat, 0.5):.1f} |",
        f"| MQTT, {devices} devices pressing at once | {pct(many_lat, 0.5):.1f} "
        f"| {pct(many_lat, 0.99):.1f} | |",
        "",
        f"One device with its send window full: serial {s_burst:.0f} ratings/s, "
        f"MQTT {m_burst:.0f} ratings/s ({m_burst / s_burst:.2f}× serial); "
        f"{devices} MQTT devices at once: {many_rate:.0f} ratings/s in total.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_block("mqtt_link", text)


if __name__ == "__main__":
    main()
