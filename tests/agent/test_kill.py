"""kill -9 of the agent process, again and again, during a rating storm, with the hub running.

The real hub runs as ``hcp hub serve`` (SQLite, a throwaway directory); the agent runs as
``hcp agent run`` in a subprocess, syncing to it; three CPython device peers in this process
press ratings continuously on the masters of three ptys. The agent is killed with SIGKILL at
a random moment (during start-up, migration, handshakes, commits, acks, batches in flight to
the hub, settling the hub's answers) HCP_AGENT_KILLS times (default 100; 300 in the long
profile), and restarted each time on the same store. Finally it runs once more until every
device's outbox and its own hub outbox are empty, and is stopped with SIGTERM.

What must hold (issue 4, DESIGN.md "The path of one rating"): **the hub** holds every rating
a device saw acknowledged at any moment, exactly once and as pressed; every rating a device
ever pressed reached the hub once the last agent drained them; the agent's store holds each
of them once and its outbox is empty.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent import registry
from edge_agent.store import Store, now_ms
from protocol import messages as M
from protocol import session
from simulator.peer import DevicePeer
from tests.agent.helpers import HALL, KEY, Pty
from tests.agent.hubproc import Hub
from tests.conftest import PROFILE

HCP = Path(sys.executable).parent / "hcp"
DEVICES = ("EV-K1", "EV-K2", "EV-K3")
KILLS = int(os.environ.get("HCP_AGENT_KILLS", "300" if PROFILE == "long" else "100"))
PRESS_EVERY_S = 0.03  # per device: ~30 presses/s each, ~100/s into the agent
LONG_LIFE_EVERY = 10  # every 10th agent lives 2-3.5 s: many batches reach the hub


def _write_config(tmp_path: Path, ptys: dict[str, Pty], hub: Hub) -> Path:
    links = "\n".join(f'[[serial]]\ndevice = "{d}"\nport = "{p.path}"\n' for d, p in ptys.items())
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[agent]
hall_id = "{HALL}"
data_dir = "data"
listen = "127.0.0.1:0"
heartbeat_s = 1
log_level = "warning"

[policy]
invite_s = 60

[hub]
url = "{hub.base}"
token_file = "{hub.token_file}"
batch = 100
health_s = 0

{links}
""",
        encoding="utf-8",
    )
    return path


def _spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(HCP), "agent", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


@pytest.mark.timeout(KILLS * 2 + 180)
def test_kill_9_during_rating_storm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The device peers give up on a silent agent within a second and say HELLO again at
    # once: a device backing off to 16 s would sleep through the agent's short lives, and
    # this test is about the agent (heartbeat_s = 1 below: silence after 3 s).
    monkeypatch.setattr(session, "HELLO_MAX_MS", session.HELLO_MIN_MS)
    monkeypatch.setattr(session, "RTO_MAX_MS", session.RTO_MIN_MS)
    rng = random.Random(4)
    hub = Hub(tmp_path).start()
    ptys = {d: Pty(tmp_path / f"tty-{d}") for d in DEVICES}
    config = _write_config(tmp_path, ptys, hub)
    store = Store(tmp_path / "data" / "agent.sqlite3")
    # Bound devices: the hub takes a device press only with its window (docs/hub-api.md).
    for i, d in enumerate(DEVICES, 1):
        registry.add_window(store, window_id=f"W0{i}", label=f"窗口{i}", now_ms=now_ms())
        registry.add_device(
            store, device_id=d, key=KEY, kind=M.KIND_EVALUATOR, window_id=f"W0{i}", now_ms=now_ms()
        )
    store.close()
    peers = [DevicePeer(ptys[d].master, KEY, device_id=d) for d in DEVICES]
    log = tmp_path / "agent.log"
    acked_at_kill: list[dict[str, int]] = []
    levels: dict[tuple[str, int], int] = {}
    kills = 0
    next_press = time.monotonic()
    started = time.monotonic()
    proc: subprocess.Popen[bytes] | None = None
    try:
        for p in peers:
            p.connect()
        while kills < KILLS:
            proc = _spawn(config, log)
            # Start-up to first link takes ~0.5 s; kill anywhere from during imports to
            # well into a storm of commits and hub batches.
            span = (2.0, 3.5) if kills % LONG_LIFE_EVERY == LONG_LIFE_EVERY - 1 else (0.15, 1.2)
            life = time.monotonic() + rng.uniform(*span)
            while time.monotonic() < life:
                now = time.monotonic()
                if now >= next_press:
                    for p in peers:
                        level = rng.randint(1, 5)
                        levels[(p.device_id, p.press(level))] = level
                    next_press = now + PRESS_EVERY_S
                for p in peers:
                    p.step(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            acked_at_kill.append({p.device_id: p.acked for p in peers})
        storm_s = time.monotonic() - started
        on_hub_during_storm = hub.query("SELECT count(*) FROM ratings")[0][0]
        # The last agent drains everything and stops cleanly.
        link_ups_before = [p.link_ups for p in peers]
        proc = _spawn(config, log)
        drain_start = time.monotonic()
        backlog = sum(len(p.outbox) for p in peers)
        drain_end = time.monotonic() + 60
        while any(p.outbox for p in peers):
            assert time.monotonic() < drain_end, (
                f"not drained: {[(p.device_id, len(p.outbox), p.acked) for p in peers]}"
            )
            for p in peers:
                p.step(0.005)
        drain_s = time.monotonic() - drain_start
        # The outboxes may have been empty already: SIGTERM must find a running agent.
        while any(p.link_ups == n for p, n in zip(peers, link_ups_before, strict=True)):
            assert time.monotonic() < drain_end, "the last agent never linked up"
            for p in peers:
                p.step(0.005)
        # ... and drains its own outbox to the hub.
        agent_db = tmp_path / "data" / "agent.sqlite3"
        while _queued(agent_db):
            assert time.monotonic() < drain_end + 60, "the agent never drained to the hub"
            for p in peers:
                p.step(0.05)
        sync_s = time.monotonic() - drain_start
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        on_hub = {
            (d, seq): (level, n)
            for d, seq, level, n in hub.query(
                "SELECT device_id, seq, level, count(*) FROM ratings GROUP BY device_id, seq"
            )
        }
    finally:
        if proc is not None and proc.poll() is None:  # a failed assertion: leave nothing behind
            proc.kill()
            proc.wait()
        for pty in ptys.values():
            pty.close()
        hub.stop()

    assert kills >= KILLS
    # The kills hit a working agent: devices saw acks, and batches reached the hub.
    assert sum(acked_at_kill[-1].values()) > 0 and on_hub_during_storm > 0
    # The hub: every pressed rating (so every acknowledged one) once, with its level.
    assert on_hub == {key: (level, 1) for key, level in levels.items()}
    for snapshot in acked_at_kill:
        for d, acked in snapshot.items():
            assert all((d, seq) in on_hub for seq in range(1, acked + 1))
    assert not _rows(tmp_path / "data" / "agent.sqlite3", "outbox_rejected")
    c = sqlite3.connect(tmp_path / "data" / "agent.sqlite3")
    try:
        for p in peers:
            seqs = [
                r[0]
                for r in c.execute(
                    "SELECT seq FROM ratings WHERE device_id = ? ORDER BY seq", (p.device_id,)
                )
            ]
            pressed = p.next_seq - 1
            assert seqs == list(range(1, pressed + 1)), (
                f"{p.device_id}: stored {len(seqs)} of {pressed} pressed"
            )
            for snapshot in acked_at_kill:
                assert snapshot[p.device_id] <= len(seqs)
            assert c.execute(
                "SELECT committed_seq FROM devices WHERE device_id = ?", (p.device_id,)
            ).fetchone() == (pressed,)
        total = sum(p.next_seq - 1 for p in peers)
    finally:
        c.close()
    acked = sum(acked_at_kill[-1].values())
    print(
        f"\n{kills} kills in {storm_s:.0f} s; {total} ratings, all on the hub exactly once;"
        f" {acked} acknowledged by the last kill; final device backlog {backlog} drained"
        f" in {drain_s:.1f} s, hub outbox in {sync_s:.1f} s;"
        f" {on_hub_during_storm} reached the hub during the storm"
    )


def _rows(path: Path, table: str) -> int:
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(c.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        c.close()


def _queued(path: Path) -> int:
    return _rows(path, "outbox")
