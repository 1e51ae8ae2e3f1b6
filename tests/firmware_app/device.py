"""The device app under test: the real MicroPython unix port running firmware/unix_rom.py
on a LittleFS image, its protocol link on a real pty and its control channel on TCP.

The device runner is the simulator's (simulator/vdevice.py: ``build_firmware``,
``seed_flash``, ``Device`` = ``DeviceProcess``, ``Control``, ``Events``), re-exported here for
the tests. Test-only here: ``AgentEnd``, a CPython agent-side LinkSession on the pty master,
storing every RATING it receives and acknowledging it (as the agent does after its commit),
and ``config_msg``.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable
from typing import Any

from protocol import messages as M
from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import Message
from protocol.session import AGENT, Acked, LinkSession, LinkUp
from simulator.vdevice import (
    DEVICE_ID,
    FONT,
    HALL,
    KEY,
    ROOT,
    Control,
    Events,
    build_firmware,
    device_json,
    free_port,
    mono_ms,
    seed_flash,
)
from simulator.vdevice import DeviceProcess as Device

__all__ = [
    "DEVICE_ID",
    "FONT",
    "HALL",
    "KEY",
    "ROOT",
    "AgentEnd",
    "Control",
    "Device",
    "Events",
    "build_firmware",
    "config_msg",
    "device_json",
    "free_port",
    "mono_ms",
    "seed_flash",
]


class AgentEnd:
    """The agent's side of the link, in CPython, on the pty master (one step at a time)."""

    def __init__(
        self,
        fd: int,
        key: bytes = KEY,
        device_id: str | None = DEVICE_ID,
        heartbeat_s: int = 2,
        mode: int = M.NORMAL,
    ):
        self.fd = fd
        self.session = LinkSession(
            AGENT,
            key,
            1,
            mode=mode,
            device_id=device_id,
            heartbeat_s=heartbeat_s,
            clock_ms=lambda: time.time_ns() // 1_000_000,
        )
        self.session.accept_hellos(0)
        self.decoder = FrameDecoder()
        self.ratings: dict[int, Message] = {}  # seq -> the RATING stored ("committed")
        self.duplicates_differ: list[tuple[Message, Message]] = []
        self.hellos: list[Message] = []
        self.received: list[Message] = []
        self.ack_ratings = True
        self.rx_bytes = 0
        self.rating_rx_ms: dict[int, int] = {}

    def step(self, timeout: float = 0.01) -> None:
        if self.fd < 0:  # unplugged
            time.sleep(timeout)
            return
        r, _, _ = select.select([self.fd], [], [], timeout)
        now = mono_ms()
        if r:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if data:
                self.rx_bytes += len(data)
                self.decoder.feed(data)
                while (p := self.decoder.next_packet()) is not None:
                    self.session.receive(p, mono_ms())
        self.session.poll(now)
        while (e := self.session.next_event()) is not None:
            if isinstance(e, LinkUp):
                self.hellos.append(e.peer)
            elif isinstance(e, Message):
                self.received.append(e)
                if e.type == M.RATING:
                    old = self.ratings.get(e.seq)
                    if old is not None and old.fields() != e.fields():
                        self.duplicates_differ.append((old, e))
                    self.ratings.setdefault(e.seq, e)
                    self.rating_rx_ms.setdefault(e.seq, now)
                    if self.ack_ratings:
                        self.session.acknowledge(e.seq)
            elif isinstance(e, Acked):
                pass
        self.flush()

    def flush(self) -> None:
        for p in self.session.packets_to_send():
            with contextlib.suppress(OSError):  # nobody there: the session resends
                os.write(self.fd, encode_frame(p))

    def send(self, msg: Message) -> None:
        self.session.send(msg, mono_ms())
        self.flush()

    def run_until(self, pred: Callable[[], Any], timeout: float = 15.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            self.step()
            v = pred()
            if v:
                return v
            if time.monotonic() > end:
                raise AssertionError(
                    f"condition not met within {timeout} s (agent link {self.session.state},"
                    f" {len(self.ratings)} ratings, hellos {len(self.hellos)})"
                )

    def last(self, mtype: int) -> Message | None:
        for m in reversed(self.received):
            if m.type == mtype:
                return m
        return None


def config_msg(**policy: Any) -> Message:
    pol = {"invite_s": 10, "reason_s": 5, "thanks_s": 1, "heartbeat_s": 2, "reason_required": False}
    pol.update(policy)
    return Message(
        M.CONFIG,
        version=7,
        window="综合窗口 01",
        staff={"name": "王小明", "number": "A0123", "title": None},
        qr=None,
        reasons=[
            {"code": 501, "zh": "等候时间长", "en": "Long wait", "levels": 0b11000},
            {"code": 502, "zh": "态度不好", "en": "Rude", "levels": 0b11000},
        ],
        policy=pol,
    )
