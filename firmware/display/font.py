"""The bitmap font on the device filesystem, read one glyph at a time.

Strategy: a CJK font is ~200 KB, several times the heap, so it stays on flash. The file
(format: tools/fontgen.py) holds a sorted table of code points and fixed-size records laid
out as framebuf.MONO_HLSB rows. Finding a glyph is a binary search on the file (13 reads of
2 bytes for 7540 glyphs; ASCII is found by arithmetic), and drawing it is one read of the
record into a preallocated buffer that a FrameBuffer already wraps, then one blit. A small
direct-mapped cache remembers where recently used code points are, since a screen measures
its text before drawing it. Nothing here allocates after __init__.

A code point the font does not have is drawn as a box by the caller (pen.py): the device
shows that something is missing instead of crashing or drawing nothing.
"""

from array import array

import framebuf
from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_MAGIC = const(b"HCPF")
_VERSION = const(1)
_HEADER_SIZE = const(16)
_FLAG_ASCII_DIRECT = const(0x01)
_ASCII_FIRST = const(0x20)
_ASCII_COUNT = const(95)
_CACHE = const(64)  # direct-mapped slots (code point % _CACHE): a screen uses a few dozen glyphs


class FontError(Exception):
    pass


def _u16(b, i):
    return (b[i] << 8) | b[i + 1]


class Font:
    """One font file. glyph is a FrameBuffer holding the last glyph loaded."""

    def __init__(self, path):
        f = open(path, "rb")  # noqa: SIM115 (kept open: glyphs are read on demand)
        head = bytearray(_HEADER_SIZE)
        if f.readinto(head) != _HEADER_SIZE or head[0:4] != _MAGIC or head[4] != _VERSION:
            f.close()
            raise FontError("%s: not an HCPF v%d font" % (path, _VERSION))
        self.height = head[5]
        self.baseline = head[6]
        stride = head[7]
        self.count = _u16(head, 8)
        self._rec_size = _u16(head, 10)
        self._ascii = head[12] & _FLAG_ASCII_DIRECT
        self.box = head[13]  # advance of the missing-glyph box
        if self._rec_size != 1 + self.height * stride:
            f.close()
            raise FontError("%s: record size %d does not match the cell" % (path, self._rec_size))
        self._data = _HEADER_SIZE + 2 * self.count
        end = f.seek(0, 2)
        if end != self._data + self.count * self._rec_size:
            f.close()
            raise FontError("%s: %d bytes, header says %d glyphs" % (path, end, self.count))
        self._f = f
        self._rec = bytearray(self._rec_size)
        self._cp = bytearray(2)
        self.glyph = framebuf.FrameBuffer(
            memoryview(self._rec)[1:], stride * 8, self.height, framebuf.MONO_HLSB
        )
        self._loaded = -1
        # arrays, not lists: 4 bytes a slot instead of 8 (a font has at most 65535 glyphs)
        self._cache_cp = array("i", [-1] * _CACHE)
        self._cache_index = array("i", [0] * _CACHE)
        self._cache_adv = bytearray(_CACHE)
        self.lookups = 0  # file searches (not cache hits), for tests and tuning

    def close(self):
        self._f.close()

    def _search(self, cp):
        if self._ascii and _ASCII_FIRST <= cp < _ASCII_FIRST + _ASCII_COUNT:
            return cp - _ASCII_FIRST
        self.lookups += 1
        f = self._f
        buf = self._cp
        lo = 0
        hi = self.count - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            f.seek(_HEADER_SIZE + 2 * mid)
            f.readinto(buf)
            v = (buf[0] << 8) | buf[1]
            if v == cp:
                return mid
            if v < cp:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def _slot(self, cp):
        """Cache slot of cp, filled in (index -1: not in the font)."""
        slot = cp % _CACHE
        if self._cache_cp[slot] != cp:
            index = self._search(cp)
            adv = self.box
            if index >= 0:
                self._f.seek(self._data + index * self._rec_size)
                self._f.readinto(self._rec)
                self._loaded = index
                adv = self._rec[0]
            self._cache_cp[slot] = cp
            self._cache_index[slot] = index
            self._cache_adv[slot] = adv
        return slot

    def advance(self, cp):
        """Width in pixels of cp (the box's width if the font lacks it)."""
        return self._cache_adv[self._slot(cp)]

    def load(self, cp):
        """Read cp's glyph into self.glyph; its advance, or -1 if the font lacks it."""
        slot = self._slot(cp)
        index = self._cache_index[slot]
        if index < 0:
            return -1
        if index != self._loaded:
            self._f.seek(self._data + index * self._rec_size)
            self._f.readinto(self._rec)
            self._loaded = index
        return self._rec[0]
