"""Signed packets: layout, HMAC against known answers, distinct refusal codes."""

from check import raises, unhex
from examples import examples

from protocol import messages as M
from protocol.errors import AuthError, CborError, MessageError
from protocol.messages import Message
from protocol.packet import (
    HEADER_LEN,
    TAG_LEN,
    Signer,
    equal,
    key_check,
    open_packet,
    read_header,
    seal,
)

# The examples of every message (the largest CONFIG among them) on top of the whole
# protocol: 64 KB is the measured minimum on the 64-bit port, so no margin is left there.
MICROPYTHON_HEAP = "80k"

KEY = b"0123456789abcdef0123456789abcdef"


def test_hmac_sha256_matches_rfc4231_case_2():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    mac = Signer(b"Jefe").mac(b"what do ya want ", b"for nothing?")
    assert mac == unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_hmac_long_key_is_hashed_rfc4231_case_6():
    key = b"\xaa" * 131
    mac = Signer(key).mac(b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert mac == unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_round_trip_every_type_in_its_direction():
    s = Signer(KEY)
    for _n, m in examples():
        d = M.CATALOGUE[m.type][1]
        d = M.UP if d == M.BOTH else d
        p = seal(m, s, d, 7, 42)
        assert read_header(p) == (M.PROTOCOL_VERSION, m.type, 7, 42)
        back = open_packet(p, s, d)
        assert back == m and back.session == 7 and back.ctr == 42


def _rating_packet():
    _n, m = examples()[1]
    return seal(m, Signer(KEY), M.UP, 1, 1)


def test_refusals_are_distinct():
    s = Signer(KEY)
    p = _rating_packet()
    raises(AuthError, "auth.truncated", open_packet, p[: HEADER_LEN + TAG_LEN - 1], s, M.UP)
    raises(AuthError, "auth.mac", open_packet, p[:-1] + bytes([p[-1] ^ 1]), s, M.UP)
    raises(AuthError, "auth.mac", open_packet, p, Signer(b"k" * 32), M.UP)
    raises(AuthError, "auth.mac", open_packet, p, s, M.DOWN)  # reflected
    flipped = bytearray(p)
    flipped[HEADER_LEN] ^= 0x01  # body changed: the tag no longer matches
    raises(AuthError, "auth.mac", open_packet, bytes(flipped), s, M.UP)


def _signed(header, body, direction=M.UP):
    s = Signer(KEY)
    return header + body + s.tag(direction, header, body)


def test_authentic_but_invalid_packets():
    s = Signer(KEY)
    hdr = bytes([2, M.ACK, 0, 0, 0, 1, 0, 0, 0, 1])
    raises(MessageError, "msg.version", open_packet, _signed(hdr, b"\x81\x01"), s, M.UP)
    hdr = bytes([1, 0x7E, 0, 0, 0, 1, 0, 0, 0, 1])
    raises(MessageError, "msg.type", open_packet, _signed(hdr, b"\x81\x01"), s, M.UP)
    hdr = bytes([1, M.INVITE, 0, 0, 0, 1, 0, 0, 0, 1])
    raises(MessageError, "msg.direction", open_packet, _signed(hdr, b"\x80"), s, M.UP)
    hdr = bytes([1, M.ACK, 0, 0, 0, 1, 0, 0, 0, 1])
    raises(CborError, "cbor.tag", open_packet, _signed(hdr, b"\xc1\x01"), s, M.UP)
    raises(MessageError, "msg.arity", open_packet, _signed(hdr, b"\x82\x01\x02"), s, M.UP)
    raises(MessageError, "msg.field", open_packet, _signed(hdr, b"\x81\x20"), s, M.UP)


def test_seal_refuses_wrong_direction_and_bad_fields():
    s = Signer(KEY)
    inv = Message(M.INVITE, seq=1, invite=1, timeout_s=60, staff=None, qr=None, item=None)
    raises(MessageError, "msg.direction", seal, inv, s, M.UP, 1, 1)
    raises(MessageError, "msg.field", seal, Message(M.ACK, ack=-1), s, M.UP, 1, 1)


def test_typical_rating_packet_size():
    p = _rating_packet()
    assert len(p) == 38, len(p)  # + COBS 1 + CRC 2 + delimiter 1 = 42 on the wire


def test_equal_and_key_check():
    assert equal(b"abc", b"abc") and not equal(b"abc", b"abd") and not equal(b"a", b"ab")
    assert len(key_check(KEY)) == TAG_LEN and key_check(KEY) != key_check(b"x" * 32)
