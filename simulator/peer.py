"""A CPython device peer (the simulator's CPython devices and the agent tests):
protocol.session (role device) over a real pty.

It behaves like the firmware as far as the link is concerned: a persisted boot session and
rating seq (kept in memory here, the device is never killed in these tests), an outbox of
unacknowledged ratings sent from ``tx_next`` while the session's window has room, outbox
records dropped only when the agent's ACK covers them, down messages applied and
acknowledged, STATUS heartbeats. ``acked`` is what the device would have shown as
accepted: every rating up to it must be in the agent's store exactly once.

Single-threaded and non-blocking: ``step()`` does one select/read/react/write round;
``run_until`` repeats it.
"""

# The protocol package is MicroPython code without annotations (as edge_agent/wire.py).
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable
from typing import Any

from protocol import messages as M
from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import Message
from protocol.session import DEVICE, Acked, LinkSession, LinkUp


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class DevicePeer:
    def __init__(
        self,
        fd: int,
        key: bytes,
        *,
        device_id: str = "EV-0001",
        boot: int = 1,
        next_seq: int = 1,
        kind: int = M.KIND_COMBINED,
        status_every_ms: int = 500,
    ) -> None:
        self.fd = fd
        self.key = key
        self.device_id = device_id
        self.kind = kind
        self.boot = boot
        self.session = LinkSession(DEVICE, key, boot)
        self.decoder = FrameDecoder()
        self.outbox: list[tuple[int, Message]] = []
        self.next_seq = next_seq
        self.acked = next_seq - 1
        self.down: list[Message] = []  # delivered down messages, in order
        self.errors: list[Message] = []
        self.link_ups = 0
        self.status_every_ms = status_every_ms
        self._status_at = 0
        self.tx_bytes = 0
        self.write_drops = 0
        self.sent_packets: list[bytes] = []  # every packet written, for replay tests

    # ---- the device application ----
    def hello(self) -> Message:
        return Message(
            M.HELLO,
            device_id=self.device_id,
            kind=self.kind,
            board="cpython-peer",
            firmware="test-0.1",
            mode=M.NORMAL,
            config_version=0,
            outbox_depth=len(self.outbox),
            oldest=self.outbox[0][0] if self.outbox else self.next_seq,
            next=self.next_seq,
            ticks=mono_ms() & 0xFFFFFFFF,
        )

    def connect(self) -> None:
        self.session.connect(mono_ms(), self.hello)
        self.flush()

    def press(
        self,
        level: int = 2,
        *,
        invite: int | None = None,
        flags: int = 0,
        reasons: list[int] | None = None,
    ) -> int:
        seq = self.next_seq
        self.next_seq += 1
        m = Message(
            M.RATING,
            seq=seq,
            invite=invite,
            level=level,
            reasons=list(reasons or []),
            time=None,
            ticks=mono_ms() & 0xFFFFFFFF,
            boot=self.boot,
            flags=flags,
        )
        self.outbox.append((seq, m))
        return seq

    def invites(self) -> list[Message]:
        return [m for m in self.down if m.type == M.INVITE]

    def last(self, mtype: int) -> Message | None:
        for m in reversed(self.down):
            if m.type == mtype:
                return m
        return None

    # ---- I/O ----
    def write(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
            self.tx_bytes += len(data)
        except OSError as e:  # buffer full or nobody on the other end: the session resends
            if e.errno not in (errno.EAGAIN, errno.EIO):
                raise
            self.write_drops += 1

    def flush(self) -> None:
        for p in self.session.packets_to_send():
            self.sent_packets.append(p)
            self.write(encode_frame(p))

    def _read(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                return b""
            raise

    def step(self, timeout: float = 0.02) -> None:
        r, _, _ = select.select([self.fd], [], [], timeout)
        now = mono_ms()
        if r:
            data = self._read()
            if data:
                self.decoder.feed(data)
                while True:
                    p = self.decoder.next_packet()
                    if p is None:
                        break
                    self.session.receive(p, now)
        self._tick(now)

    def _tick(self, now: int) -> None:
        """After this step's packets were received: timers, reactions, STATUS, presses."""
        self.session.poll(now)
        self._react()
        if self.session.is_open() and now >= self._status_at:
            self._status_at = now + self.status_every_ms
            self.session.send(self._status(), now)
        self._feed(now)
        self.flush()

    def _status(self) -> Message:
        return Message(
            M.STATUS,
            uptime_s=1,
            ticks=mono_ms() & 0xFFFFFFFF,
            free_heap=40000,
            outbox_depth=len(self.outbox),
            outbox_dropped=0,
            errors=[0, 0, 0, 0, 0, 0],
            link={"rssi": None, "rx_dropped": 0},
            ui=1,
            config_version=0,
        )

    def _react(self) -> None:
        while True:
            e = self.session.next_event()
            if e is None:
                return
            if isinstance(e, LinkUp):
                self.link_ups += 1
            elif isinstance(e, Acked):
                self.acked = max(self.acked, e.seq)
                self.outbox = [r for r in self.outbox if r[0] > e.seq]
            elif isinstance(e, Message):
                if e.type == M.ERROR:
                    self.errors.append(e)
                elif (seq := getattr(e, "seq", None)) is not None:
                    self.down.append(e)
                    self.session.acknowledge(seq)

    def _feed(self, now: int) -> None:
        if not self.session.is_open():
            return
        for seq, m in self.outbox:
            if seq >= self.session.tx_next and self.session.window_free() > 0:
                self.session.send(m, now)

    def run_until(self, pred: Callable[[], Any], timeout: float = 10.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            self.step()
            value = pred()
            if value:
                return value
            if time.monotonic() > end:
                errs = [(getattr(e, "code", None), getattr(e, "detail", None)) for e in self.errors]
                raise AssertionError(
                    f"condition not met within {timeout} s (state {self.session.state},"
                    f" acked {self.acked}, outbox {len(self.outbox)}, errors {errs[-3:]})"
                )

    def run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step()
