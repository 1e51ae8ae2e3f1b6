"""A typed face for the parts of protocol/ the agent drives.

protocol/ runs on MicroPython too, so it carries no annotations; mypy --strict would flag
every call into it. Rather than scattering ``type: ignore`` through the agent, this one
module wraps what the agent uses (the agent's end of a link session, the frame decoder, the
message constructors) with typed signatures, and is the only place allowed to call untyped
code. Nothing here adds behaviour.
"""
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from protocol import messages as M
from protocol import session as S
from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import Message as _Message

__all__ = [
    "AgentSession",
    "Decoder",
    "M",
    "Message",
    "S",
    "encode",
    "frame",
    "is_message",
    "message",
]

# A protocol message carries its catalogue fields as attributes set at run time (the
# catalogue is a table, MicroPython has no dataclasses), which no static type describes.
Message: TypeAlias = Any
Event: TypeAlias = Any  # S.LinkUp | S.LinkDown | S.Acked | S.Gap | S.Refused | a message


def is_message(event: object) -> bool:
    return isinstance(event, _Message)


def message(mtype: int, **fields: Any) -> Message:
    """A catalogue message (validated when sealed)."""
    return _Message(mtype, **fields)


def frame(packet: bytes) -> bytes:
    """The serial frame for one packet, delimiter included."""
    out: bytes = encode_frame(packet)
    return out


def encode(msg: Message) -> list[Any]:
    """The message's validated wire body (raises protocol MessageError if a field is bad)."""
    body: list[Any] = M.to_body(msg)
    return body


class Decoder:
    """protocol.framing.FrameDecoder with types."""

    def __init__(self) -> None:
        self._d = FrameDecoder()

    def feed(self, data: bytes) -> None:
        self._d.feed(data)

    def packets(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            p = self._d.next_packet()
            if p is None:
                return out
            out.append(p)

    @property
    def dropped(self) -> dict[str, int]:
        d: dict[str, int] = self._d.dropped
        return d


class AgentSession:
    """The agent's end of one link (protocol.session.LinkSession, role agent)."""

    def __init__(
        self,
        key: bytes,
        session: int,
        *,
        device_id: str,
        min_peer_session: int,
        committed: int,
        heartbeat_s: int,
        clock_ms: Callable[[], int],
    ) -> None:
        self._s = S.LinkSession(
            S.AGENT,
            key,
            session,
            device_id=device_id,
            min_peer_session=min_peer_session,
            heartbeat_s=heartbeat_s,
            clock_ms=clock_ms,
        )
        self._s.accept_hellos(committed)

    def receive(self, packet: bytes, now_ms: int) -> None:
        self._s.receive(packet, now_ms)

    def poll(self, now_ms: int) -> None:
        self._s.poll(now_ms)

    def next_event(self) -> Event:
        return self._s.next_event()

    def packets_to_send(self) -> list[bytes]:
        out: list[bytes] = self._s.packets_to_send()
        return out

    def next_deadline(self) -> int | None:
        t: int | None = self._s.next_deadline()
        return t

    def send(self, msg: Message, now_ms: int) -> None:
        self._s.send(msg, now_ms)

    def acknowledge(self, seq: int) -> None:
        self._s.acknowledge(seq)

    def close(self, now_ms: int) -> None:
        self._s.close(now_ms)

    def is_open(self) -> bool:
        return bool(self._s.is_open())

    def window_free(self) -> int:
        n: int = self._s.window_free()
        return n

    @property
    def counters(self) -> dict[str, int]:
        c: dict[str, int] = self._s.counters
        return c

    @property
    def peer_session(self) -> int | None:
        s: int | None = self._s.window.session
        return s
