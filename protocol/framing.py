"""Serial framing: COBS(packet || CRC-16/XMODEM(packet), big-endian) || 0x00.

A packet is opaque bytes here. COBS leaves no 0x00 in a frame body, so 0x00
always ends a frame and a receiver resynchronises at the next one after any
damage; the CRC stops most damaged frames (see the limits below). FrameDecoder
is a sans-IO stream decoder (h11 shape): feed() chunks, then next_packet()
until None.
"""

# Strategy (comments rather than long docstrings: compiling from source,
# MicroPython keeps docstrings in the parse tree, and heaps here are 64k):
# - feed() only queues a reference to the chunk, consumed lazily, so a
#   megabyte chunk is never copied as a whole. Delimiters are found with
#   bytes.find (C speed on both Pythons), not a per-byte Python loop.
# - The frame in progress is copied into one bytearray of max_encoded bytes,
#   allocated once. COBS is decoded in place there and the CRC is checked in
#   one pass (the CRC over packet || CRC is 0). Nothing ever grows: a body
#   longer than the buffer is dropped as "frame.oversize" and the rest is
#   skipped up to the next 0x00.
# - Bad input never raises: each bad frame is counted in `dropped` under its
#   FrameError code and skipped. Empty bodies (consecutive 0x00: idle fill a
#   sender may use to force a resync) count in `empty`; they are not errors.
# - Limits of the check: CRC-16 lets ~1/65536 of randomly damaged frames
#   through. Worse, CRC-16/XMODEM (init 0, no xorout) cannot see zero bytes
#   added before a packet or after its CRC, nor two valid bodies joined, and
#   COBS turns single-byte faults into exactly these: a lost delimiter merges
#   two frames into one that passes; a 0x01 inserted at either end of a body
#   adds a 0x00 that passes. The signature layer above must (and does) reject
#   such packets; tests/test_framing_fuzz.py::explained characterises them.
# - The decoder holds fed chunks by reference until consumed: a caller that
#   reuses a receive bytearray must drain next_packet() to None before
#   refilling it.

from protocol.cobs import _decode_into, _encode_into, _error, max_encoded_len
from protocol.crc import crc16_xmodem
from protocol.errors import FrameError

# Largest packet (bytes before the CRC). The largest catalogue message, a
# config carrying a 45x45 QR matrix and a 16-entry reason catalogue, fits with
# headroom, and a device can still hold one such frame in RAM.
MAX_PACKET = 1280
CRC_LEN = 2  # CRC-16/XMODEM, big-endian, after the packet
MIN_BODY = 1 + CRC_LEN  # decoded body: at least one packet byte and the CRC
# Longest frame body on the wire (delimiter excluded): packet, CRC, worst-case COBS overhead.
MAX_ENCODED = max_encoded_len(MAX_PACKET + CRC_LEN)
DELIMITER = b"\x00"

E_OVERSIZE = "frame.oversize"
E_COBS = "frame.cobs"
E_SHORT = "frame.short"
E_CRC = "frame.crc"
E_EMPTY = "frame.empty"  # only encode_frame raises it; an empty body on the wire is idle fill

# A memoryview chunk (no .find on either Python) is consumed in bytes pieces of
# this size: bounds the temporary copy while keeping per-piece overhead small.
_PIECE = 512


def encode_frame_into(packet, out):
    """Write the frame for packet, delimiter included, into bytearray out; return its length.

    out needs frame_room(len(packet)) bytes. FrameError as for encode_frame.
    """
    # No allocation beyond memoryview slices: packet and CRC are copied to the
    # tail of out and COBS-encoded in place towards its start.
    n = len(packet)
    if n == 0:
        raise FrameError(E_EMPTY, "a frame carries at least 1 packet byte")
    if n > MAX_PACKET:
        raise FrameError(E_OVERSIZE, "packet is %d bytes, MAX_PACKET is %d" % (n, MAX_PACKET))
    body = n + CRC_LEN
    k = max_encoded_len(body) - body  # worst-case COBS overhead
    if len(out) < k + body + 1:  # a bytearray slice assignment past the end would grow it
        raise ValueError("out holds %d bytes, frame_room is %d" % (len(out), k + body + 1))
    out[k : k + n] = packet
    crc = crc16_xmodem(packet)
    out[k + n] = crc >> 8
    out[k + n + 1] = crc & 0xFF
    w = _encode_into(out, k, body)
    out[w] = 0  # delimiter
    return w + 1


def frame_room(n):
    """Bytes encode_frame_into needs for an n-byte packet (worst case, delimiter included)."""
    return max_encoded_len(n + CRC_LEN) + 1


def encode_frame(packet):
    """The wire bytes of one frame for packet (bytes-like), delimiter included.

    FrameError "frame.empty" for an empty packet, "frame.oversize" above MAX_PACKET.
    """
    out = bytearray(frame_room(len(packet)))
    w = encode_frame_into(packet, out)
    if w == len(out):
        return bytes(out)
    return bytes(memoryview(out)[:w])


def _check(buf, m, max_packet):
    """Error code for the decoded body buf[:m], or None if it is a good frame."""
    if m < MIN_BODY:
        return E_SHORT
    if m - CRC_LEN > max_packet:
        return E_OVERSIZE
    if crc16_xmodem(memoryview(buf)[:m]) != 0:  # CRC over packet || CRC is 0
        return E_CRC
    return None


def decode_frame(encoded):
    """The packet in one frame body (COBS bytes WITHOUT the 0x00 delimiter).

    Raises FrameError: "frame.oversize" (body or packet over the limits),
    "frame.cobs" (a 0x00 inside, or a code byte running past the end),
    "frame.short" (fewer than 1 packet byte + 2 CRC bytes), "frame.crc".
    """
    n = len(encoded)
    if n > MAX_ENCODED:
        raise FrameError(E_OVERSIZE, "body is %d bytes, MAX_ENCODED is %d" % (n, MAX_ENCODED))
    buf = bytearray(encoded)
    m = _decode_into(buf, n)
    if m < 0:
        raise _error(buf, n, m)
    code = _check(buf, m, MAX_PACKET)
    if code is None:
        return bytes(memoryview(buf)[: m - CRC_LEN])
    if code == E_SHORT:
        detail = "decoded body is %d bytes, the minimum is %d (1 packet byte + CRC)" % (
            m,
            MIN_BODY,
        )
    elif code == E_OVERSIZE:
        detail = "packet is %d bytes, MAX_PACKET is %d" % (m - CRC_LEN, MAX_PACKET)
    else:
        detail = "CRC-16/XMODEM mismatch over a %d-byte packet" % (m - CRC_LEN)
    raise FrameError(code, detail)


class FrameDecoder:
    """Streaming frame decoder (sans-IO): feed() bytes, then next_packet() until None.

    Counters: ``packets`` (good frames returned), ``dropped`` (FrameError code
    -> count of bad frames skipped), ``empty`` (empty bodies between
    delimiters: idle fill, not an error). Memory: one bytearray of
    ``max_encoded`` bytes, allocated here, plus references to fed chunks.
    """

    def __init__(self, max_packet=MAX_PACKET):
        if max_packet < 1:
            raise ValueError("max_packet must be >= 1")
        self.max_packet = max_packet
        self.max_encoded = max_encoded_len(max_packet + CRC_LEN)
        self._buf = bytearray(self.max_encoded)
        self._bv = memoryview(self._buf)
        self.packets = 0
        self.empty = 0
        self.dropped = {E_OVERSIZE: 0, E_COBS: 0, E_SHORT: 0, E_CRC: 0}
        self.reset()

    def reset(self):
        """Forget queued input and the frame in progress (e.g. after a cable replug).

        Counters are kept. The next byte fed starts a new frame.
        """
        self._chunks = []  # fed chunks not started yet, oldest first
        self._data = b""  # chunk being consumed (bytes or bytearray)
        self._view = None  # memoryview of _data, for copying without slicing _data
        self._pos = 0  # next unconsumed index in _data
        self._src = None  # a memoryview chunk being consumed in _PIECE pieces
        self._src_pos = 0
        self._fill = 0  # bytes of the frame in progress held in _buf
        self._skip = False  # discarding the tail of an oversize frame

    def feed(self, data):
        """Queue a chunk of received bytes (any size; kept by reference, not copied)."""
        if not isinstance(data, (bytes, bytearray)):
            data = memoryview(data)  # TypeError here for what is not a buffer
        if len(data):
            self._chunks.append(data)

    def buffered(self):
        """Bytes of the frame in progress held in the internal buffer (<= max_encoded)."""
        return self._fill

    def pending(self):
        """Bytes fed but not consumed yet (0 after next_packet() returned None)."""
        n = len(self._data) - self._pos
        if self._src is not None:
            n += len(self._src) - self._src_pos
        for c in self._chunks:
            n += len(c)
        return n

    def _load(self):
        """Make the next piece of input current; False if no input is left."""
        src = self._src
        if src is None:
            if not self._chunks:
                return False
            data = self._chunks.pop(0)
            if isinstance(data, (bytes, bytearray)):
                self._data = data
                self._view = memoryview(data)
                self._pos = 0
                return True
            src = self._src = memoryview(data)
            self._src_pos = 0
        p = self._src_pos
        q = p + _PIECE
        if q >= len(src):
            q = len(src)
            self._src = None
        self._src_pos = q
        self._data = bytes(src[p:q])
        self._view = memoryview(self._data)
        self._pos = 0
        return True

    def next_packet(self):
        """The next good packet (bytes), or None when all fed input is consumed."""
        bv = self._bv
        cap = len(bv)
        while True:
            data = self._data
            pos = self._pos
            end = len(data)
            if pos >= end:
                if not self._load():
                    self._data = b""  # let go of the last chunk
                    self._view = None
                    self._pos = 0
                    return None
                continue
            z = data.find(DELIMITER, pos)
            if self._skip:  # tail of an oversize frame: drop up to the delimiter
                if z < 0:
                    self._pos = end
                else:
                    self._pos = z + 1
                    self._skip = False
                continue
            stop = end if z < 0 else z
            fill = self._fill
            n = stop - pos
            if fill + n > cap:
                self.dropped[E_OVERSIZE] += 1
                self._fill = 0
                if z < 0:
                    self._skip = True
                    self._pos = end
                else:
                    self._pos = z + 1
                continue
            if n:
                bv[fill : fill + n] = self._view[pos:stop]
                fill += n
            if z < 0:
                self._fill = fill
                self._pos = end
                continue
            self._pos = z + 1
            self._fill = 0
            if fill == 0:
                self.empty += 1
                continue
            m = _decode_into(self._buf, fill)
            if m < 0:
                self.dropped[E_COBS] += 1
                continue
            code = _check(self._buf, m, self.max_packet)
            if code is not None:
                self.dropped[code] += 1
                continue
            self.packets += 1
            return bytes(bv[: m - CRC_LEN])

    def __iter__(self):
        """Iterate over the packets available now (stops when more data is needed)."""
        while True:
            p = self.next_packet()
            if p is None:
                return
            yield p
