"""Serial device links over REAL ptys: the agent in-process, a CPython device peer on the master.

Handshake and state on LinkUp, the case API driving INVITE/CANCEL/PAUSE, ratings stored and
acknowledged only after the commit, deduplication, refused frames of every kind counted
without stopping the link, a port that vanishes and comes back, quarantine of a device
without a key.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent import registry
from edge_agent.store import Store, now_ms
from protocol import messages as M
from protocol.framing import encode_frame
from protocol.messages import Message
from protocol.packet import Signer, seal
from simulator.peer import DevicePeer
from tests.agent.helpers import KEY, AgentThread, Pty, make_config, wait_for

DEVICE = "EV-0001"


class Hall:
    def __init__(self, tmp_path: Path, *, key: bytes | None = KEY, **sections: Any) -> None:
        self.pty = Pty(tmp_path / "tty-ev1")
        self.cfg = make_config(
            tmp_path / "data",
            serial=[{"device": DEVICE, "port": str(self.pty.path)}],
            **sections,
        )
        store = Store(self.cfg.store_path)
        registry.add_window(store, window_id="W01", label="综合窗口 01", now_ms=now_ms())
        if key is not None:
            registry.add_device(
                store,
                device_id=DEVICE,
                key=key,
                kind=M.KIND_COMBINED,
                window_id="W01",
                now_ms=now_ms(),
            )
        store.close()
        self.agent = AgentThread(self.cfg).start()
        self.peer = DevicePeer(self.pty.master, KEY, device_id=DEVICE)

    def up(self) -> DevicePeer:
        self.peer.connect()
        self.peer.run_until(lambda: self.peer.link_ups >= 1 and self.peer.last(M.CONFIG))
        return self.peer

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.agent.http("POST", path, json=body)
        assert r.status_code < 300, r.text
        return r.json()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        c = sqlite3.connect(self.cfg.store_path)
        try:
            return c.execute(query, args).fetchall()
        finally:
            c.close()

    def close(self) -> None:
        self.agent.stop()
        self.pty.close()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[Hall]:
    h = Hall(tmp_path)
    yield h
    h.close()


def test_handshake_sends_the_window_state(hall: Hall) -> None:
    peer = hall.up()
    config = peer.last(M.CONFIG)
    assert config is not None
    assert config.window == "综合窗口 01" and config.staff is None
    assert config.policy["invite_s"] == 60 and config.policy["heartbeat_s"] == 2
    assert [r["code"] for r in config.reasons] == [501, 502, 503, 504]
    wait_for(
        lambda: hall.sql("SELECT online, board, kind FROM devices")[0] == (1, "cpython-peer", 3)
    )
    health = hall.agent.http("GET", "/healthz").json()
    assert health["links"][0]["state"] == "open"

    hall.post(
        "/api/v1/windows/W01/sign-in", {"staff_id": "S001", "name": "王小明", "number": "A0123"}
    )
    peer.run_until(lambda: (c := peer.last(M.CONFIG)) is not None and c.staff is not None)
    config = peer.last(M.CONFIG)
    assert config.staff == {"name": "王小明", "number": "A0123", "title": None}
    assert config.qr is not None and config.qr["size"] >= 21  # the static staff code

    hall.post(
        "/api/v1/cases",
        {"case_no": "C-1", "window_id": "W01", "item_name": "居民身份证换领"},
    )
    invite = hall.post("/api/v1/cases/finish", {"case_no": "C-1"})
    peer.run_until(lambda: peer.invites())
    sent = peer.invites()[-1]
    assert sent.invite == invite["invite_id"] and sent.item == "居民身份证换领"
    assert sent.staff["name"] == "王小明" and sent.qr is not None and 55 <= sent.timeout_s <= 60
    # The device acknowledged the INVITE: the agent records it as delivered.
    wait_for(lambda: hall.sql("SELECT delivered_ms FROM invites")[0][0] is not None)

    seq = peer.press(1, invite=sent.invite)
    peer.run_until(lambda: peer.acked >= seq)
    assert hall.sql("SELECT binding, case_no, staff_id, time_source FROM ratings") == [
        ("counted", "C-1", "S001", "ticks")
    ]
    assert hall.sql("SELECT state FROM cases") == [("rated",)]

    hall.post("/api/v1/windows/W01/pause", {"reason": "午休"})
    peer.run_until(lambda: peer.last(M.PAUSE))
    assert peer.last(M.PAUSE).reason == "午休"
    hall.post("/api/v1/windows/W01/resume")
    peer.run_until(lambda: peer.last(M.RESUME))


def test_state_is_resent_after_reconnect(hall: Hall) -> None:
    peer = hall.up()
    hall.post("/api/v1/windows/W01/sign-in", {"staff_id": "S001", "name": "王小明", "number": "A1"})
    hall.post("/api/v1/cases", {"case_no": "C-2", "window_id": "W01"})
    hall.post("/api/v1/cases/finish", {"case_no": "C-2"})
    hall.post("/api/v1/windows/W01/pause")
    peer.run_until(lambda: peer.last(M.PAUSE))
    # The device reboots: a new boot session, a new HELLO, the whole state again.
    fresh = DevicePeer(hall.pty.master, KEY, device_id=DEVICE, boot=2, next_seq=peer.next_seq)
    fresh.connect()
    fresh.run_until(lambda: fresh.invites())
    kinds = [m.type for m in fresh.down]
    assert kinds[:3] == [M.CONFIG, M.PAUSE, M.INVITE]
    assert fresh.down[0].staff["name"] == "王小明"


def test_ratings_are_acknowledged_only_after_commit(hall: Hall) -> None:
    peer = hall.up()
    # Hold the store's write lock from outside: the agent cannot commit.
    blocker = sqlite3.connect(hall.cfg.store_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    seqs = [peer.press(3) for _ in range(5)]
    peer.run_for(1.5)
    assert peer.acked == 0, "acknowledged before the commit"
    blocker.execute("COMMIT")
    blocker.close()
    peer.run_until(lambda: peer.acked >= seqs[-1])
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings ORDER BY seq")] == seqs
    assert hall.sql("SELECT DISTINCT binding FROM ratings") == [("unsolicited",)]
    assert hall.sql("SELECT committed_seq FROM devices") == [(5,)]


def test_quarantine_cuts_off_a_live_serial_link(hall: Hall) -> None:
    peer = hall.up()
    peer.press(level=5)
    peer.run_until(lambda: peer.acked == 1)
    link = hall.agent.link(DEVICE)
    hall.agent.db(registry.set_quarantine, device_id=DEVICE, reason="admin", now_ms=now_ms())
    peer.run_until(lambda: link.snapshot()["state"] == "quarantined", timeout=15)
    peer.press(level=1)
    peer.run_for(1.5)
    assert peer.acked == 1  # nothing more is accepted while quarantined
    assert hall.sql("SELECT count(*) FROM ratings") == [(1,)]
    hall.agent.db(registry.set_quarantine, device_id=DEVICE, reason=None, now_ms=now_ms())
    peer.run_until(lambda: peer.acked == 2, timeout=30)  # released: it resends, stored once
    assert hall.sql("SELECT count(*) FROM ratings") == [(2,)]


def test_replayed_ratings_are_stored_once(hall: Hall) -> None:
    peer = hall.up()
    for _ in range(3):
        peer.press(2)
    peer.run_until(lambda: peer.acked >= 3)
    # The device lost its ACKs (say, a flash write failed) and offers 1..3 again after a
    # reboot: the WELCOME tells it they are stored; nothing is stored twice.
    again = DevicePeer(hall.pty.master, KEY, device_id=DEVICE, boot=2, next_seq=1)
    for _ in range(3):
        again.press(2)
    again.next_seq = 4
    again.connect()
    again.run_until(lambda: again.link_ups >= 1)
    again.run_until(lambda: again.acked >= 3 and not again.outbox)
    again.press(4)
    again.run_until(lambda: again.acked >= 4)
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings ORDER BY seq")] == [1, 2, 3, 4]
    assert hall.sql("SELECT count(*) FROM outbox WHERE kind = 'rating'") == [(4,)]


def test_bad_frames_are_counted_and_refused(hall: Hall) -> None:
    peer = hall.up()
    seq = peer.press(2)
    peer.run_until(lambda: peer.acked >= seq)
    rating_packet = next(p for p in reversed(peer.sent_packets) if p[1] == M.RATING)

    peer.write(b"\x00\x13\x37garbage without a delimiter... and then one\x00")  # frame.cobs/crc
    peer.write(encode_frame(rating_packet)[:-6] + b"\x00")  # truncated: frame.crc
    peer.write(b"\x01\x01\x00")  # frame.short
    forged = seal(
        Message(
            M.RATING, seq=99, invite=None, level=5, reasons=[], time=None, ticks=1, boot=1, flags=0
        ),
        Signer(b"x" * 32),
        M.UP,
        peer.boot,
        10_000,
    )
    peer.write(encode_frame(forged))  # auth.mac
    peer.write(encode_frame(rating_packet))  # replay of an accepted packet: replay.seen
    peer.write(b"\xff" * 3000 + b"\x00")  # frame.oversize
    peer.run_for(0.5)

    refused = wait_for(
        lambda: (r := hall.agent.link(DEVICE).snapshot()["refused"]).get("replay.seen") and r
    )
    assert refused.get("auth.mac") == 1
    assert refused.get("frame.crc", 0) + refused.get("frame.cobs", 0) >= 2
    assert refused.get("frame.short") == 1 and refused.get("frame.oversize") == 1
    metrics = hall.agent.http("GET", "/metrics").text
    assert f'hcp_agent_frames_refused_total{{code="auth.mac",device="{DEVICE}"}} 1' in metrics
    # The link still works and nothing forged or replayed was stored.
    seq = peer.press(4)
    peer.run_until(lambda: peer.acked >= seq)
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings ORDER BY seq")] == [1, 2]
    assert hall.agent.link(DEVICE).state == "open"


def test_port_vanishes_and_comes_back(hall: Hall) -> None:
    peer = hall.up()
    peer.press(2)
    peer.run_until(lambda: peer.acked >= 1)
    link = hall.agent.link(DEVICE)
    assert link.attachments == 1
    hall.pty.unplug()
    wait_for(lambda: link.state == "waiting_port")
    wait_for(lambda: hall.sql("SELECT online FROM devices") == [(0,)])
    # Presses while unplugged stay on the device.
    peer.press(3)
    peer.press(4)
    time.sleep(0.5)
    hall.pty.plug()  # a new pty at the same path, as a replugged adapter
    peer2 = DevicePeer(hall.pty.master, KEY, device_id=DEVICE, boot=2, next_seq=2)
    peer2.outbox = [(s, m) for s, m in peer.outbox]
    peer2.next_seq = peer.next_seq
    peer2.connect()
    peer2.run_until(lambda: peer2.acked >= 3, timeout=15)
    assert link.attachments == 2
    assert [r[0] for r in hall.sql("SELECT seq FROM ratings ORDER BY seq")] == [1, 2, 3]


def test_device_without_key_is_quarantined_until_added(tmp_path: Path) -> None:
    h = Hall(tmp_path, key=None)
    try:
        link = h.agent.link(DEVICE)
        wait_for(lambda: link.state == "quarantined")
        health = h.agent.http("GET", "/healthz").json()
        assert health["quarantined"] == [DEVICE]
        assert "hcp_agent_devices_quarantined 1" in h.agent.http("GET", "/metrics").text
        store = Store(h.cfg.store_path)  # as `hcp agent add-device` does, while the agent runs
        registry.add_device(store, device_id=DEVICE, key=KEY, window_id="W01", now_ms=now_ms())
        store.close()
        peer = h.up()
        assert peer.link_ups == 1
        assert h.agent.http("GET", "/healthz").json()["quarantined"] == []
    finally:
        h.close()


def test_agent_stop_and_restart_keeps_replay_floor(tmp_path: Path) -> None:
    h = Hall(tmp_path)
    try:
        peer = h.up()
        peer.press(2)
        peer.run_until(lambda: peer.acked >= 1)
    finally:
        h.agent.stop()
    assert [r[0] for r in h.sql("SELECT min_session FROM devices")] == [1]
    sessions = int(h.sql("SELECT value FROM meta WHERE name = 'agent_session'")[0][0])
    assert sessions >= 1
    h.agent = AgentThread(h.cfg).start()
    try:
        peer.press(3)
        peer.run_until(lambda: peer.acked >= 2, timeout=15)
        assert int(h.sql("SELECT value FROM meta WHERE name = 'agent_session'")[0][0]) > sessions
    finally:
        h.close()


def test_full_outbox_blocks_acks_until_there_is_room(tmp_path: Path) -> None:
    h = Hall(tmp_path, outbox={"max_rows": 100, "overflow": "block"})
    try:
        c = sqlite3.connect(h.cfg.store_path, isolation_level=None)
        c.executemany(
            "INSERT INTO outbox (key, kind, body, created_ms) VALUES (?, 'test', '{}', ?)",
            [(f"filler:{i}", now_ms()) for i in range(100)],
        )
        c.execute("INSERT INTO counters VALUES ('gauge.outbox_rows', 100)")
        peer = h.up()
        seqs = [peer.press(2) for _ in range(3)]
        peer.run_for(1.5)
        assert peer.acked == 0 and h.sql("SELECT count(*) FROM ratings") == [(0,)]
        assert h.sql("SELECT value FROM counters WHERE name = 'outbox_blocked'")[0][0] >= 3
        # The hub took the queue (what sync will do): the held ratings go through, without
        # the device having to reconnect.
        c.execute("DELETE FROM outbox WHERE kind = 'test'")
        c.execute("UPDATE counters SET value = 0 WHERE name = 'gauge.outbox_rows'")
        c.close()
        link_ups = peer.link_ups
        peer.run_until(lambda: peer.acked >= seqs[-1], timeout=5)
        assert peer.link_ups == link_ups
        assert [r[0] for r in h.sql("SELECT seq FROM ratings ORDER BY seq")] == seqs
    finally:
        h.close()


def test_serial_device_server_over_socket_url(tmp_path: Path) -> None:
    """A device behind a serial device server (pyserial socket://), which drops the TCP
    connection once: the agent reconnects by itself."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    cfg = make_config(tmp_path / "data", serial=[{"device": DEVICE, "port": url}])
    store = Store(cfg.store_path)
    registry.add_window(store, window_id="W01", label="W", now_ms=now_ms())
    registry.add_device(store, device_id=DEVICE, key=KEY, window_id="W01", now_ms=now_ms())
    store.close()
    agent = AgentThread(cfg).start()
    try:
        conn, _ = server.accept()
        conn.setblocking(False)
        peer = DevicePeer(conn.fileno(), KEY, device_id=DEVICE)
        peer.connect()
        peer.run_until(lambda: peer.link_ups and peer.last(M.CONFIG))
        seq = peer.press(1)
        peer.run_until(lambda: peer.acked >= seq)
        conn.close()  # the device server drops the connection
        peer.press(2)
        conn, _ = server.accept()  # the agent dialled again
        conn.setblocking(False)
        again = DevicePeer(conn.fileno(), KEY, device_id=DEVICE, boot=2, next_seq=2)
        again.outbox = list(peer.outbox)
        again.next_seq = peer.next_seq
        again.connect()
        again.run_until(lambda: again.acked >= 2)
        assert agent.link(DEVICE).attachments == 2
        conn.close()
    finally:
        agent.stop()
        server.close()
