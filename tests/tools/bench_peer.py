"""A CPython device on the bench for the tools tests: provisioning mode and selftest.

It plays the firmware's side of docs/protocol.md §10 over a real pty: HELLO (mode 1, the
factory id) signed with the provisioning key, PROVISION stored, PROVISIONED with the key
check, then "reboot" into normal mode (the session switches to the new key and identity).
In normal mode it answers SELFTEST with SELFTEST_RESULT from ``selftest_results`` (the
items a test wants to fail). Runs in a thread; ``stop()`` ends it.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
from typing import Any

from protocol import messages as M
from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import Message
from protocol.packet import PROVISIONING_KEY, key_check
from protocol.session import DEVICE, LinkSession


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class BenchPeer:
    def __init__(
        self,
        fd: int,
        *,
        factory_id: str = "F0A1B2C3",
        kind: int = M.KIND_COMBINED,
        board: str = "unix-sim",
        key: bytes | None = None,
        device_id: str | None = None,
        corrupt_check: bool = False,
        answer: bool = True,
    ) -> None:
        self.fd = fd
        self.factory_id = factory_id
        self.kind = kind
        self.board = board
        self.corrupt_check = corrupt_check
        self.answer = answer
        self.provisioned: Message | None = None
        self.key = key
        self.device_id = device_id
        self.failing: set[int] = set()
        self.selftests: list[Message] = []
        self.boot = 1
        self.next_seq = 1
        self._start_session()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _start_session(self) -> None:
        mode = M.NORMAL if self.key is not None else M.PROVISIONING
        self.mode = mode
        self.session = LinkSession(DEVICE, self.key or PROVISIONING_KEY, self.boot, mode=mode)
        self.decoder = FrameDecoder()
        self.session.connect(mono_ms(), self._hello)

    def _hello(self) -> Message:
        return Message(
            M.HELLO,
            device_id=self.device_id if self.mode == M.NORMAL else self.factory_id,
            kind=self.kind,
            board=self.board,
            firmware="bench-0.1",
            mode=self.mode,
            config_version=0,
            outbox_depth=0,
            oldest=self.next_seq,
            next=self.next_seq,
            ticks=mono_ms() & 0xFFFFFFFF,
        )

    def start(self) -> BenchPeer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)

    def __enter__(self) -> BenchPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.fd], [], [], 0.02)
            now = mono_ms()
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EIO):
                        raise
                    data = b""
                self.decoder.feed(data)
                while (p := self.decoder.next_packet()) is not None:
                    self.session.receive(p, now)
            self.session.poll(now)
            reboot = self._react(now)
            self._flush()
            if reboot:
                self._start_session()
                self._flush()

    def _flush(self) -> None:
        for p in self.session.packets_to_send():
            try:
                os.write(self.fd, encode_frame(p))
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO):
                    raise

    def _react(self, now: int) -> bool:
        reboot = False
        while (e := self.session.next_event()) is not None:
            if not isinstance(e, Message):
                continue
            if e.type == M.PROVISION and self.answer:
                self.provisioned = e
                check = key_check(e.key)
                if self.corrupt_check:
                    check = bytes(b ^ 0xFF for b in check)
                self.session.send(Message(M.PROVISIONED, device_id=e.device_id, check=check), now)
                self.key, self.device_id = bytes(e.key), e.device_id
                self.boot, self.next_seq = e.session_base, e.seq_base
                reboot = True
            elif e.type == M.SELFTEST:
                self.selftests.append(e)
                results: list[dict[str, Any]] = [
                    {
                        "item": item,
                        "ok": item not in self.failing,
                        "detail": "no press" if item in self.failing else None,
                    }
                    for item in e.items
                ]
                self.session.send(Message(M.SELFTEST_RESULT, test=e.test, results=results), now)
            elif getattr(e, "seq", None) is not None:
                self.session.acknowledge(e.seq)
        return reboot
