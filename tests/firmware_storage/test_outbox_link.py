"""The outbox behind the real link session (protocol/session.py), device to agent.

How the device application uses it (what these tests do, as the app will):

- HELLO reports `outbox_depth = depth()`, `oldest = oldest()`, `next = next_seq()`;
- while the link is open and the window has room, send `records(session.tx_next, 1)`
  as RATING messages (fields in RATING order);
- on `Acked(seq)` (an ACK, or the WELCOME's ack) call `ack(seq)`: whole acknowledged
  segments are deleted;
- if `records(tx_next, ...)` is empty while `tx_next < oldest()`, the ratings in between
  are gone (overflow or a damaged record): say HELLO again, and the agent reports the
  Gap. Losses are never silent.

The joined link is tests/portable/link.py's Hall, with this real outbox on a host
directory in place of its in-memory one. The agent stores by (device, seq) like the real
one: every rating reaches it exactly once, whatever the reboots.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from firmware.storage.outbox import Outbox
from protocol.messages import HELLO, RATING, Message
from protocol.session import DEVICE, LinkSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "portable"))
from link import KEY, Hall  # tests/portable's joined link (importable on both Pythons)

FIELDS = ("seq", "invite", "level", "reasons", "time", "ticks", "boot", "flags")


class _Truncate:
    """What Hall.react() calls on an Acked event."""

    def __init__(self, hall: OutboxHall) -> None:
        self.hall = hall

    def truncate(self, ack: int) -> None:
        self.hall.ob.ack(ack)


class OutboxHall(Hall):
    def __init__(self, ob: Outbox, **kw: Any) -> None:
        super().__init__(**kw)
        self.ob = ob
        self.outbox = _Truncate(self)
        self.resyncs = 0

    def hello(self) -> Message:
        return Message(
            HELLO,
            device_id=self.device_id,
            kind=1,
            board="unix-sim",
            firmware="0.1.0",
            mode=self.mode,
            config_version=0,
            outbox_depth=self.ob.depth(),
            oldest=self.ob.oldest(),
            next=self.ob.next_seq(),
            ticks=self.now,
        )

    def feed(self) -> None:
        d = self.device
        while d.is_open() and d.window_free() > 0:
            got = self.ob.records(d.tx_next, 1)
            if not got:
                if d.tx_next < self.ob.oldest():  # a gap: the agent must hear of it
                    self.resyncs += 1
                    d.connect(self.now, self.hello)
                return
            d.send(Message(RATING, **dict(zip(FIELDS, got[0], strict=True))), self.now)

    def reboot_device(self, session: int, segments: int, records: int) -> None:
        self.ob.close()
        self.ob = Outbox(self.ob.root, segments, records)
        self.device = LinkSession(DEVICE, KEY, session)
        self.in_flight = []


def add(ob: Outbox, n: int) -> list[int]:
    return [ob.add(None, 1 + i % 5, [], None, i, 1, 0x20) for i in range(n)]


def test_offline_burst_is_delivered_once_and_the_overflow_is_a_gap(tmp_path: Path) -> None:
    ob = Outbox(str(tmp_path / "outbox"), 3, 4)
    add(ob, 20)  # the link is down: 12 fit, the oldest 8 are dropped and counted
    assert ob.dropped() == 8 and ob.oldest() == 9 and ob.mark()
    hall = OutboxHall(ob)
    hall.connect()
    gaps = [(e.first, e.last) for e in hall.agent_events if type(e).__name__ == "Gap"]
    assert gaps == [(1, 8)]
    assert hall.stored == list(range(9, 21))
    assert ob.depth() == 0 and ob.mark() == 0 and ob.dropped() == 8


def test_reboot_mid_stream_resends_without_duplicates(tmp_path: Path) -> None:
    hall = OutboxHall(Outbox(str(tmp_path / "outbox"), 4, 4))
    add(hall.ob, 6)
    hall.connect()
    assert hall.stored == list(range(1, 7))
    add(hall.ob, 10)
    # Power cut while those are on the wire: nothing of them reaches the agent.
    hall.device.send(Message(RATING, **dict(zip(FIELDS, hall.ob.records(7, 1)[0], strict=True))), 0)
    hall.reboot_device(session=2, segments=4, records=4)
    assert hall.ob.next_seq() == 17  # nothing reused
    hall.connect()
    assert hall.stored == list(range(1, 17))  # each exactly once
    add(hall.ob, 3)
    hall.feed()
    hall.pump()
    assert hall.stored == list(range(1, 20)) and hall.ob.depth() == 0


def test_damaged_record_becomes_a_reported_gap(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    hall = OutboxHall(Outbox(str(root), 4, 4))
    add(hall.ob, 8)
    seg = root / "00000005"  # seqs 5..8
    data = bytearray(seg.read_bytes())
    data[32 * 1 + 3] ^= 0x40  # seq 6 damaged on flash after it was stored
    seg.write_bytes(bytes(data))
    hall.connect()
    gaps = [(e.first, e.last) for e in hall.agent_events if type(e).__name__ == "Gap"]
    assert hall.stored == [1, 2, 3, 4, 5] and hall.resyncs == 1
    assert gaps == [(6, 8)]  # 7 and 8 followed the damage in the same segment
    assert hall.ob.flash_errors == 1
    add(hall.ob, 2)
    hall.feed()
    hall.pump()
    assert hall.stored == [1, 2, 3, 4, 5, 9, 10]
