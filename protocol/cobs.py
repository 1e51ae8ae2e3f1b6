"""COBS (Consistent Overhead Byte Stuffing): byte strings with no 0x00 in them.

encode/decode whole strings; decode_into decodes in place so the stream
decoder needs no second buffer. Output matches Cheshire & Baker (1999) and the
Wikipedia examples (254 non-zero bytes encode as FF + data, no trailing 01).
"""

# Format: a chain of blocks, each a code byte c (1..255) and c-1 non-zero data
# bytes. A block with c < 0xFF stands for its data and one 0x00, except the
# last block, whose zero is implied by the end; a 0xFF block is 254 data bytes
# and no zero. Overhead: at most ceil(n/254) bytes, at least 1 (max_encoded_len).
# Strategy, for speed on both Pythons: zeros are found with bytes.find (C
# speed) and each run moves with one memoryview slice assignment, so Python
# work is per block, not per byte. In-place decoding is safe because each code
# byte is dropped or replaced by the one 0x00 it stands for, so the write
# index never passes the read index; overlapping slice assignment within one
# buffer is a memmove on both Pythons (MicroPython: mp_seq_replace_slice_no_grow).
# Docstrings stay short: compiling from source, MicroPython keeps them in its parse tree.

from protocol.errors import FrameError

BLOCK = 254  # data bytes in a full block (code 0xFF): fixed by the COBS definition
_ZERO = b"\x00"
_E_ZERO = -1  # _decode_into: a 0x00 inside the encoded data
# _decode_into: a code byte runs past the end; returned as _E_RUN - offset of that code byte
_E_RUN = -2


def max_encoded_len(n):
    """Longest COBS encoding of n input bytes (without any frame delimiter)."""
    if n <= 0:
        return 1
    return n + (n + BLOCK - 1) // BLOCK


def _encode_into(buf, k, n):
    # Encode buf[k:k+n] in place to buf[0:m]; return m. Needs k >= the
    # overhead, max_encoded_len(n) - n: output byte for input byte i lands at
    # most 1 + i // 254 places after i, so writes never pass unread input.
    v = memoryview(buf)
    end = k + n
    r = k
    w = 0
    while True:
        z = buf.find(_ZERO, r, end)
        stop = end if z < 0 else z
        full = False
        while stop - r >= BLOCK:
            buf[w] = 0xFF
            v[w + 1 : w + 1 + BLOCK] = v[r : r + BLOCK]
            w += 1 + BLOCK
            r += BLOCK
            full = True
        run = stop - r
        if z < 0 and run == 0 and full:
            return w  # input ended exactly on a full block: no trailing 01
        buf[w] = run + 1
        if run:
            v[w + 1 : w + 1 + run] = v[r:stop]
        w += run + 1
        if z < 0:
            return w
        r = z + 1


def encode(data):
    """COBS-encode data (bytes, bytearray or memoryview); returns bytes with no 0x00."""
    n = len(data)
    size = max_encoded_len(n)
    buf = bytearray(size)
    buf[size - n :] = data  # encoded in place from the tail of buf
    m = _encode_into(buf, size - n, n)
    if m == size:
        return bytes(buf)
    return bytes(memoryview(buf)[:m])


def _decode_into(buf, n):
    # Decode buf[:n] in place; return the decoded length, or _E_ZERO, or
    # _E_RUN - offset of a code byte whose block runs past n. Never raises: the
    # stream decoder counts bad frames without paying for an exception.
    if buf.find(_ZERO, 0, n) >= 0:
        return _E_ZERO
    v = memoryview(buf)
    r = 0
    w = 0
    while r < n:
        code = buf[r]
        end = r + code
        if end > n:
            return _E_RUN - r
        run = code - 1
        if run:
            v[w : w + run] = v[r + 1 : end]
            w += run
        r = end
        if code != 0xFF and r < n:
            buf[w] = 0
            w += 1
    return w


def _error(buf, n, rc):
    if rc == _E_ZERO:
        return FrameError(
            "frame.cobs", "0x00 at offset %d inside a COBS body" % buf.find(_ZERO, 0, n)
        )
    return FrameError(
        "frame.cobs",
        "code byte at offset %d runs past the end of the %d-byte body" % (_E_RUN - rc, n),
    )


def decode_into(buf, n):
    """Decode buf[:n] (a bytearray) in place; return m, the result is buf[:m].

    FrameError "frame.cobs" on a 0x00 inside or a code byte running past n.
    """
    # buf[:n] is partly overwritten after an error. An empty body decodes to
    # empty (the framing layer counts empty bodies as idle fill).
    if n < 0 or n > len(buf):
        raise ValueError("n out of range")
    m = _decode_into(buf, n)
    if m < 0:
        raise _error(buf, n, m)
    return m


def decode(data):
    """Decode a COBS body (no delimiter) to bytes; FrameError("frame.cobs") if invalid."""
    buf = bytearray(data)
    m = decode_into(buf, len(buf))
    if m == len(buf):
        return bytes(buf)
    return bytes(memoryview(buf)[:m])
