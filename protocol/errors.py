"""Wire errors: one small hierarchy, raised by every protocol layer.

Every error carries a stable machine-readable ``code`` ("layer.fault") that the
spec (docs/protocol.md) and the test vectors (tests/vectors/) name, and a
human-readable ``detail`` that says what was wrong and which limit it hit.
Receivers convert errors to counters or ERROR messages in exactly one place
(the link session); nothing else catches them.

Runs unchanged on CPython and MicroPython: no dataclasses, no typing at runtime.
"""


class ProtocolError(Exception):
    """Base class: something on the wire (or about to go on it) is not valid."""

    def __init__(self, code, detail=""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self):
        if self.detail:
            return self.code + ": " + self.detail
        return self.code


class CborError(ProtocolError):
    """The body is not CBOR in the project profile (codes "cbor.*")."""


class FrameError(ProtocolError):
    """A serial frame is damaged: COBS, CRC, size (codes "frame.*")."""


class AuthError(ProtocolError):
    """A packet's signature is missing, truncated or wrong (codes "auth.*")."""


class ReplayError(ProtocolError):
    """A packet was seen before or is outside the replay window (codes "replay.*")."""


class MessageError(ProtocolError):
    """A decoded message breaks the catalogue: type, field, limit (codes "msg.*")."""


class StateError(ProtocolError):
    """An event is not legal in the link session's current state (codes "state.*")."""


class TopicError(ProtocolError):
    """An MQTT topic or identifier is not in the topic tree (codes "topic.*")."""
