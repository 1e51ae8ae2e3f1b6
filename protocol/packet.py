"""Signed packets: header ‖ CBOR body ‖ tag.

    header = version u8 ‖ type u8 ‖ session u32 BE ‖ ctr u32 BE     (HEADER_LEN = 10)
    tag    = HMAC-SHA256(key, direction ‖ header ‖ body)[:TAG_LEN]

A packet is what the serial framing (framing.py) wraps in COBS and CRC, and
what an MQTT message carries as its payload unchanged.

session is the sender's boot counter, persisted on its flash or disk, so it
never repeats; ctr counts the sender's packets within that session from 1. The
pair (session, ctr) is the sender's sequence number that the replay window
(replay.py) checks; persisting only the session costs one flash write per boot
rather than one per packet.

TAG_LEN = 8 (64 bits). RFC 2104 suggests at least 80 bits against offline
birthday attacks, but a frame tag is only ever checked online: a forger gets
one guess per frame, at most ~300 frames/s on a 115200-baud line, and every
failure is counted and reported (2^63 guesses ≈ 10^9 years). 64-bit tags are
what CCM-8 in IEEE 802.15.4 and OSCORE use for the same reason, and they keep
a typical rating frame within 48 bytes. The direction byte in the MAC input
stops a frame being reflected back to its sender, because both directions
share the per-device key.

Errors are distinct, as the spec requires: "auth.truncated" (too short to hold
a header and a tag), "auth.mac" (forged or damaged), "msg.version",
"msg.type", "msg.direction", then the body's own CBOR and field errors.

Runs unchanged on CPython and MicroPython (hashlib.sha256 is on both).
"""

import hashlib
import struct

from protocol import cbor
from protocol.errors import AuthError, MessageError
from protocol.messages import (
    BOTH,
    CATALOGUE,
    DOWN,
    PROTOCOL_VERSION,
    UP,
    from_body,
    spec,
    to_body,
)

HEADER_LEN = 10
TAG_LEN = 8
_HEADER = ">BBII"
_BLOCK = 64  # SHA-256 block size, for HMAC's pads

# Devices in provisioning mode have no key of their own yet. Their frames are
# "signed" with this public value: integrity, not authenticity. The agent
# accepts them only on a link an operator opened for provisioning.
PROVISIONING_KEY = b"hcp provisioning, not a secret!!"
_DIRECTION_BYTE = {UP: b"U", DOWN: b"D"}


class Signer:
    """HMAC-SHA256 with one key, pads computed once (RFC 2104)."""

    def __init__(self, key):
        key = bytes(key)
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key + b"\x00" * (_BLOCK - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)

    def mac(self, *parts):
        """The full 32-byte HMAC of the concatenated parts."""
        inner = hashlib.sha256(self._ipad)
        for p in parts:
            inner.update(p)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()

    def _packet_mac(self, direction, header, body):
        # The per-frame path: no argument tuple, no one-byte bytes object.
        inner = hashlib.sha256(self._ipad)
        inner.update(_DIRECTION_BYTE[direction])
        inner.update(header)
        inner.update(body)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()

    def tag(self, direction, header, body):
        return self._packet_mac(direction, header, body)[:TAG_LEN]

    def verify(self, direction, header, body, tag):
        """Whether tag is this key's tag for the packet; constant time, no copies."""
        return equal(self._packet_mac(direction, header, body), tag, TAG_LEN)


def key_check(key):
    """A short value that proves knowledge of key without revealing it (PROVISIONED)."""
    return Signer(key).mac(b"hcp key check")[:TAG_LEN]


def equal(a, b, n=None):
    """Constant-time comparison of a and b (of their first n bytes when n is given):
    the time taken does not depend on where they differ."""
    if n is None:
        if len(a) != len(b):
            return False
        n = len(a)
    elif len(a) < n or len(b) != n:
        return False
    diff = 0
    for i in range(n):
        diff |= a[i] ^ b[i]
    return diff == 0


def _direction_of(mtype):
    d = spec(mtype)[1]
    return d


def seal(msg, signer, direction, session, ctr):
    """Encode and sign a message into a packet. Validates every field."""
    d = _direction_of(msg.type)
    if d != BOTH and d != direction:
        raise MessageError("msg.direction", "%s cannot be sent in this direction" % msg.name)
    header = struct.pack(_HEADER, PROTOCOL_VERSION, msg.type, session, ctr)
    body = cbor.encode(to_body(msg))
    return header + body + signer.tag(direction, header, body)


def read_header(packet):
    """(version, type, session, ctr) of a packet, without verifying anything."""
    if len(packet) < HEADER_LEN + TAG_LEN:
        raise AuthError(
            "auth.truncated",
            "%d bytes cannot hold a %d-byte header and a %d-byte tag"
            % (len(packet), HEADER_LEN, TAG_LEN),
        )
    return struct.unpack_from(_HEADER, packet, 0)


def open_packet(packet, signer, direction):
    """Verify and decode a packet travelling in `direction`; returns a Message.

    The tag is checked before anything in the packet is believed. The returned
    message has .session and .ctr from the header; the replay check is the
    caller's (replay.py), because it needs the receiver's state.
    """
    version, mtype, session, ctr = read_header(packet)
    mv = memoryview(packet)
    end = len(packet) - TAG_LEN
    if not signer.verify(direction, mv[:HEADER_LEN], mv[HEADER_LEN:end], mv[end:]):
        raise AuthError("auth.mac", "tag does not match the key for this device and direction")
    if version != PROTOCOL_VERSION:
        raise MessageError(
            "msg.version", "protocol version %d, this side speaks %d" % (version, PROTOCOL_VERSION)
        )
    row = CATALOGUE.get(mtype)
    if row is None:
        raise MessageError("msg.type", "unknown message type 0x%02x" % mtype)
    if row[1] != BOTH and row[1] != direction:
        raise MessageError("msg.direction", "%s received in the wrong direction" % row[0])
    msg = from_body(mtype, cbor.decode(mv[HEADER_LEN:end]))
    msg.session = session
    msg.ctr = ctr
    return msg
