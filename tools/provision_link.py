"""The bench link: the agent end of one device link, driven by a tool instead of the agent.

Strategy: ``hcp provision`` and ``hcp factory-test`` talk to one device on the bench over a
serial port (a USB adapter, or a pty for a simulated device). They need the same thing the
agent's serial links do, a ``protocol.session.LinkSession`` in the agent role fed with COBS
frames, but synchronously and for a few seconds, so this is a small blocking loop around
the sans-IO session: read what arrived, feed it, run timers, write what the session wants
sent, hand the events to the caller. Nothing here knows about the store.

Errors the technician reads are ``tools.cli.HcpError`` and name the port and what was
(not) heard: silence, packets that do not verify (wrong mode or key), an ERROR from the
device.

protocol/ carries no annotations (it runs on MicroPython), so, like edge_agent.wire, this
module is the tools' one typed face for it: messages are ``Any``, calls are allowed here.
"""
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import NORMAL
from protocol.messages import Message as _Message
from protocol.packet import equal, key_check
from protocol.session import AGENT, LinkSession, LinkUp, Refused
from tools.cli import HcpError
from tools.i18n import Text

READ_CHUNK = 4096
POLL_S = 0.02  # select granularity; a serial round trip is ~10 ms

T = {
    "open": Text("无法打开串口 {p}：{e}", "cannot open the serial port {p}: {e}"),
    "silent": Text(
        "{p} 上 {s} 秒内没有设备应答：检查连线和电源",
        "no device answered on {p} within {s} s: check the cable and power",
    ),
    "garbled": Text(
        "{p} 上收到的数据不是协议帧（{c}）：检查波特率和接线，或设备是否运行了 hcp 固件",
        "what arrives on {p} is not protocol frames ({c}): check the baud rate and wiring, "
        "and that the device runs the hcp firmware",
    ),
    "refused": Text(
        "{p} 上的设备发来的数据包无法验证（{c}）：{hint}",
        "the device on {p} sends packets that do not verify ({c}): {hint}",
    ),
    "hint_prov": Text(
        "设备可能已配网（正常模式）；开机时按住安全启动键使其进入配网模式",
        "it is probably provisioned already (normal mode); hold the safe-boot button at "
        "power-on to enter provisioning mode",
    ),
    "hint_normal": Text(
        "设备可能未配网，或其密钥与代理存储中的不同；先运行 hcp provision",
        "it is probably not provisioned, or holds another key than the agent's store; "
        "run hcp provision first",
    ),
    "device_error": Text("设备报告错误 {c}：{d}", "the device reports error {c}: {d}"),
}


Message = Any  # catalogue fields are attributes set at run time (see edge_agent.wire)


def message(mtype: int, **fields: Any) -> Message:
    return _Message(mtype, **fields)


def check_matches(check: bytes, key: bytes) -> bool:
    """PROVISIONED.check proves the device holds key (protocol §10), compared in constant time."""
    return bool(equal(check, key_check(key)))


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class BenchLink:
    """The agent end of a link to one device on `port` (a device path or pyserial URL)."""

    def __init__(
        self,
        port: str,
        *,
        key: bytes,
        session: int,
        mode: int = NORMAL,
        baud: int = 115200,
        device_id: str | None = None,
    ) -> None:
        import serial  # pyserial; imported here so `hcp --help` stays fast

        self.port_name = port
        self.mode = mode
        try:
            self.port: Any = serial.serial_for_url(port, baudrate=baud, timeout=POLL_S)
        except (OSError, ValueError, serial.SerialException) as e:
            raise HcpError(T["open"].fill(p=port, e=e)) from e
        self.session = LinkSession(
            AGENT,
            key,
            session,
            mode=mode,
            device_id=device_id,
            clock_ms=lambda: time.time_ns() // 1_000_000,
        )
        self.session.accept_hellos(0)
        self.decoder = FrameDecoder()
        self.hello: Message | None = None
        self.refused: dict[str, int] = {}
        self.messages: list[Message] = []

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> BenchLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_committed(self, seq: int) -> None:
        """The highest rating seq the agent holds for this device (HELLOs below it fail)."""
        self.session.accept_hellos(seq)

    def _step(self) -> None:
        data = self.port.read(READ_CHUNK)
        now = _now_ms()
        if data:
            self.decoder.feed(data)
            while (p := self.decoder.next_packet()) is not None:
                self.session.receive(p, now)
        self.session.poll(now)
        while (e := self.session.next_event()) is not None:
            if isinstance(e, LinkUp):
                self.hello = e.peer
            elif isinstance(e, Refused):
                self.refused[e.code] = self.refused.get(e.code, 0) + 1
            elif isinstance(e, _Message):
                self.messages.append(e)
                seq = getattr(e, "seq", None)
                if seq is not None:
                    self.session.acknowledge(seq)
        self.flush()

    def flush(self) -> None:
        for p in self.session.packets_to_send():
            self.port.write(encode_frame(p))

    def send(self, msg: Message) -> None:
        self.session.send(msg, _now_ms())
        self.flush()

    def wait(self, pred: Callable[[], Any], timeout_s: float) -> Any:
        """Run the link until pred() is true (returns its value) or timeout (None)."""
        end = time.monotonic() + timeout_s
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() > end:
                return None
            self._step()

    def wait_hello(self, timeout_s: float) -> Message:
        """The device's HELLO (LinkUp); a clear error when it stays silent or unverifiable."""
        hello = self.wait(lambda: self.hello, timeout_s)
        if hello is not None:
            return hello
        if self.refused:
            code = ",".join(sorted(self.refused))
            hint = T["hint_prov"] if self.mode != NORMAL else T["hint_normal"]
            raise HcpError(
                Text(
                    T["refused"].zh.format(p=self.port_name, c=code, hint=hint.zh),
                    T["refused"].en.format(p=self.port_name, c=code, hint=hint.en),
                )
            )
        dropped = {k: v for k, v in self.decoder.dropped.items() if v}
        if dropped:
            code = ",".join(sorted(dropped))
            raise HcpError(T["garbled"].fill(p=self.port_name, c=code))
        raise HcpError(T["silent"].fill(p=self.port_name, s=timeout_s))

    def take(self, mtype: int) -> Message | None:
        """The first received message of a type (removed), else None; raises on a device ERROR."""
        for i, m in enumerate(self.messages):
            if m.type == mtype:
                return self.messages.pop(i)
            if m.name == "error":
                self.messages.pop(i)
                raise HcpError(T["device_error"].fill(c=m.code, d=m.detail))
        return None
