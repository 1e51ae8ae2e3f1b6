"""Serial framing: CRC-16/XMODEM, COBS, frames and the stream decoder."""

# Compact on purpose: MicroPython compiles this file inside the 64k test heap at
# roughly 6 bytes of heap per source byte, so cases are tables and comments.
# protocol.framing is imported first so that it compiles while the least is resident.
from protocol.framing import (
    MAX_ENCODED,
    MAX_PACKET,
    FrameDecoder,
    decode_frame,
    encode_frame,
    encode_frame_into,
    frame_room,
)

# isort: split
from check import raises, unhex

from protocol import cobs
from protocol.crc import crc16_xmodem as crc
from protocol.crc import crc16_xmodem_table
from protocol.errors import FrameError as FE


def _rand(n, seed):
    # deterministic pseudo-random bytes (an LCG: no random module needed)
    out = bytearray(n)
    for i in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = seed >> 16 & 0xFF
    return bytes(out)


def _crc_ref(data):
    # bit-by-bit CRC-16/XMODEM, independent of protocol.crc
    c = 0
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = (c << 1 ^ (0x1021 if c & 0x8000 else 0)) & 0xFFFF
    return c


def _crc(p):
    c = crc(p)
    return bytes(p) + bytes((c >> 8, c & 0xFF))


def _dec(parts, size, d=None):
    # feed a stream (bytes, or a tuple of parts) in chunks of size: (packets, decoder)
    d = d or FrameDecoder()
    out = []
    for s in parts if isinstance(parts, tuple) else (parts,):
        for i in range(0, len(s), size):
            d.feed(s[i : i + size])
            p = 1
            while p:
                p = d.next_packet()
                assert d.buffered() <= d.max_encoded
                if p:
                    out.append(p)
    assert d.pending() == 0
    return out, d


def _drops(d):
    x = d.dropped
    return (x["frame.cobs"], x["frame.crc"], x["frame.oversize"], x["frame.short"])


def test_crc():
    for f in (crc, crc16_xmodem_table, _crc_ref):
        assert f(b"123456789") == 0x31C3  # the catalogue check value
    assert crc(b"") == 0 and crc(b"A") == 0x58E5
    assert crc(bytearray(b"6789"), crc(memoryview(b"x12345")[1:])) == 0x31C3
    for n in (1, 2, 31, 256, 1000):  # the table and binascii.crc_hqx agree
        d = _rand(n, n)
        assert crc(d) == crc16_xmodem_table(d) == _crc_ref(d)
        assert crc(d, 0x1234) == crc16_xmodem_table(d, 0x1234)
        assert crc(_crc(d)) == 0  # over data || CRC: zero


def test_cobs_vectors():
    # decoded, encoded: the COBS examples of the Wikipedia article
    for dec, enc in (
        ("", "01"),
        ("00", "0101"),
        ("0000", "010101"),
        ("001100", "01021101"),
        ("11220033", "0311220233"),
        ("11223344", "0511223344"),
        ("11000000", "0211010101"),
    ):
        assert cobs.encode(unhex(dec)) == unhex(enc) and cobs.decode(unhex(enc)) == unhex(dec)
    r1 = bytes(range(1, 255))  # 254 non-zero bytes
    r2 = r1[1:] + b"\xff"
    r3 = r2[1:]
    for dec, enc in (
        (r1, b"\xff" + r1),  # no trailing 01
        (b"\x00" + r1, b"\x01\xff" + r1),
        (r1 + b"\xff", b"\xff" + r1 + b"\x02\xff"),  # 255 non-zero bytes
        (r2 + b"\x00", b"\xff" + r2 + b"\x01\x01"),
        (r3 + b"\x00\x01", b"\xfe" + r3 + b"\x02\x01"),
        (bytes(300), b"\x01" * 301),  # all zeros
    ):
        assert cobs.encode(dec) == enc and cobs.decode(enc) == dec


def test_cobs_round_trips():
    for n in (0, 1, 100, 253, 254, 255, 508, 509, 600):
        for k in (0, 1, 2):
            d = bytearray(_rand(n, n + k))
            for i in range(n):
                if k == 1 and i % 3 == 0:
                    d[i] = 0  # dense zeros
                elif k == 2 and not d[i]:
                    d[i] = 1  # no zeros: worst-case overhead, exactly
            e = cobs.encode(memoryview(d) if k else d)
            assert b"\x00" not in e and cobs.decode(e) == d
            m = cobs.max_encoded_len(n)
            assert len(e) == m if k == 2 else len(e) <= m


def test_cobs_errors_and_in_place():
    e = raises(FE, "frame.cobs", cobs.decode, unhex("0311002201"))
    assert "0x00 at offset 2" in e.detail
    e = raises(FE, "frame.cobs", cobs.decode, unhex("05112233"))
    assert "offset 0 runs past" in e.detail
    raises(FE, "frame.cobs", cobs.decode, unhex("02110422"))
    raises(FE, "frame.cobs", cobs.decode_into, bytearray(b"\x04ab"), 3)
    d = _rand(600, 3)
    enc = cobs.encode(d)
    buf = bytearray(enc + b"\xee")
    assert cobs.decode_into(buf, len(enc)) == 600 and buf[:600] == d and buf[-1] == 0xEE


def test_encode_frame():
    assert MAX_PACKET == 1280 and MAX_ENCODED == cobs.max_encoded_len(1282) == 1288
    f = encode_frame(b"hello\x00world")
    assert f.find(b"\x00") == len(f) - 1 and cobs.decode(f[:-1]) == _crc(b"hello\x00world")
    assert encode_frame(bytearray(b"ab")) == encode_frame(memoryview(b"xab")[1:])
    buf = bytearray(frame_room(30) + 5)
    assert buf[: encode_frame_into(_rand(30, 1), buf)] == encode_frame(_rand(30, 1))
    raises(FE, "frame.empty", encode_frame, b"")
    e = raises(FE, "frame.oversize", encode_frame, bytes(MAX_PACKET + 1))
    assert "MAX_PACKET is 1280" in e.detail
    for n in (1, 30, 600):
        assert decode_frame(encode_frame(_rand(n, n))[:-1]) == _rand(n, n)
    z = bytes(MAX_PACKET)  # all zeros: the least COBS overhead
    assert decode_frame(memoryview(encode_frame(z))[:-1]) == z


def _big():
    # a max-size packet with no zero in it or its CRC: the body is exactly MAX_ENCODED
    p = bytearray(MAX_PACKET)
    for i in range(MAX_PACKET):
        p[i] = i % 255 + 1
    return p


def test_max_size_packet():
    p = _big()
    f = encode_frame(p)
    v = memoryview(f)
    assert len(f) == MAX_ENCODED + 1 and decode_frame(v[:-1]) == p
    out, d = _dec((f, b"\x01", v[1:], f), 97)  # middle frame: one byte too long
    assert out == [p, p] and _drops(d) == (0, 0, 1, 0)


def _over():
    # a body within MAX_ENCODED that decodes to a MAX_PACKET + 1 byte packet
    b = bytearray(b"A" * (MAX_PACKET + 3))
    for i in range(0, MAX_PACKET, 100):
        b[i] = 0
    c = crc(memoryview(b)[:-2])
    b[-2] = c >> 8
    b[-1] = c & 0xFF
    return cobs.encode(b)


def test_decode_frame_errors():
    good = encode_frame(b"packet")[:-1]
    raises(FE, "frame.oversize", decode_frame, b"\x01" * (MAX_ENCODED + 1))
    e = raises(FE, "frame.oversize", decode_frame, _over())
    assert "packet is 1281 bytes" in e.detail
    raises(FE, "frame.cobs", decode_frame, good[:3] + b"\x00" + good[3:])
    raises(FE, "frame.cobs", decode_frame, good[:-1])
    raises(FE, "frame.cobs", decode_frame, good + b"\x00")  # delimiter included
    for body in (b"", b"\x01", cobs.encode(b"\x12\x34")):
        raises(FE, "frame.short", decode_frame, body)
    raises(FE, "frame.crc", decode_frame, cobs.encode(b"p" + _crc(b"acket")))


def test_stream_chunkings():
    packets = [b"\x01", b"hello\x00world", bytes(40), _rand(300, 5), b"\x00"]
    s = b"".join([encode_frame(p) for p in packets])
    for size in (len(s), 1, 2, 7, 255):
        out, d = _dec(s, size)
        assert out == packets and d.packets == 5 and d.empty == 0 == sum(_drops(d))
    assert _dec(bytearray(s), len(s))[0] == packets
    mv = memoryview(b"\x00\x00" + s * 2)  # consumed in internal pieces
    out, d = _dec(mv, len(mv))
    assert out == packets * 2 and d.empty == 2
    d = FrameDecoder()
    for i in range(0, len(s), 3):
        d.feed(s[i : i + 3])  # many chunks queued before reading
    assert list(d) == packets and d.pending() == 0


def test_stream_garbage():
    s = (
        b"\x13\x37\xff\x00"  # noise at power-up -> cobs (code 0x13 runs past)
        + encode_frame(b"first")
        + b"\x03ab\x00"  # -> short
        + cobs.encode(b"a" + _crc(b"bcd"))
        + b"\x00\x00\x00"  # -> crc, then idle fill (2 empty)
        + encode_frame(b"second")
        + b"\x05\x01\x02"  # partial frame at the end
    )
    for size in (len(s), 1, 5):
        out, d = _dec(s, size)
        assert out == [b"first", b"second"] and d.packets == 2 and d.empty == 2
        assert _drops(d) == (1, 1, 0, 1) and d.buffered() == 3


def test_stream_truncated_then_good():
    f1 = encode_frame(_rand(50, 9))
    f2 = encode_frame(b"good")
    # tail lost; f1's delimiter (or an idle 0x00 the sender put before f2) arrives
    for size in (1, 4, 100):
        out, d = _dec(f1[:20] + b"\x00" + f2, size)
        assert out == [b"good"] and sum(_drops(d)) == 1 and d.empty == 0
    out, d = _dec(f1[:20] + f2 + encode_frame(b"next"), 50)  # merged: one bad frame
    assert out == [b"next"] and sum(_drops(d)) == 1


def test_stream_oversize():
    run = b"\x55" * 1000
    for size in (1000, 1, 100, 999):  # one long run = one drop, however it is chunked
        out, d = _dec((run, run, run, b"\x00" + encode_frame(b"after")), size)
        assert out == [b"after"] and _drops(d) == (0, 0, 1, 0) and d.empty == 0
    out, d = _dec((_over(), b"\x00", encode_frame(b"ok")), 64)
    assert out == [b"ok"] and _drops(d) == (0, 0, 1, 0)
    d = FrameDecoder(max_packet=8)
    assert d.max_encoded == 11
    out, d = _dec(encode_frame(b"12345678") + encode_frame(b"123456789") + b"\x01\x00", 1, d)
    assert out == [b"12345678"] and _drops(d) == (0, 0, 1, 1)
    raises(ValueError, None, FrameDecoder, 0)


def test_idle_fill_reset_and_noise():
    out, d = _dec(b"\x00\x00\x00" + encode_frame(b"a") + b"\x00\x00", 2)
    assert out == [b"a"] and d.empty == 5 and sum(_drops(d)) == 0
    d.feed(encode_frame(b"lost")[:4])
    assert d.next_packet() is None and d.buffered() == 4
    d.feed(b"queued")
    d.reset()  # e.g. cable replugged: drop the partial frame and the queue
    assert d.buffered() == 0 == d.pending()
    out, d = _dec(encode_frame(b"fresh"), 3, d)
    assert out == [b"fresh"] and d.packets == 2 and sum(_drops(d)) == 0
    for seed in range(6):  # random noise: never raises, stays bounded
        _dec(_rand(700, seed), 100, d)
