"""The simulator's display: the same canvas as a real panel, shown by writing its bytes.

Strategy: under the unix port there is no panel, so show() publishes the framebuffer for
the simulator (and the screen tests) to read: a 20-byte header and the canvas bytes,
written to a temporary file and renamed over `path`, so a reader never sees half a frame
(rename is atomic on POSIX). With `sink`, show() calls sink(header, buf) instead (a pipe
or socket the simulator owns). The canvas layout is the real panel's: MONO_VLSB 128x64 for
the evaluator's SSD1306 (the exact bytes that panel would receive), MONO_HLSB 240x240 for
the QR unit's ST7789 canvas (before its palette conversion).

Frame format (big-endian):

    offset size field
    0      4    magic b"HCPD"
    4      1    version 1
    5      1    layout: 1 = MONO_VLSB (byte = 8 rows of a column), 2 = MONO_HLSB (byte =
                8 columns of a row, MSB left)
    6      2    width
    8      2    height
    10     2    ink colour, RGB565 (what a 1 bit looks like)
    12     2    paper colour, RGB565 (a 0 bit)
    14     4    frame number, from 1
    18     2    reserved, 0
    20     n    canvas bytes (width * height / 8)
"""

import os

import framebuf
from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_MAGIC = const(b"HCPD")
_VERSION = const(1)
LAYOUT_VLSB = 1
LAYOUT_HLSB = 2
_HEADER_SIZE = const(20)
_OLED_INK = const(0xFFFF)  # an SSD1306 lights its pixels white (or blue/yellow: module colour)
_OLED_PAPER = const(0x0000)


class SimDisplay:
    def __init__(
        self, width, height, layout=LAYOUT_VLSB, path=None, sink=None, ink=None, paper=None
    ):
        if path is None and sink is None:
            raise ValueError("SimDisplay needs a path or a sink")
        self.width = width
        self.height = height
        self.path = path
        self.sink = sink
        self.buf = bytearray(width * height // 8)
        fmt = framebuf.MONO_VLSB if layout == LAYOUT_VLSB else framebuf.MONO_HLSB
        self.fb = framebuf.FrameBuffer(self.buf, width, height, fmt)
        if ink is None:
            ink = _OLED_INK if layout == LAYOUT_VLSB else 0x0000
        if paper is None:
            paper = _OLED_PAPER if layout == LAYOUT_VLSB else 0xFFFF
        self.frames = 0
        self.header = bytearray(_HEADER_SIZE)
        h = self.header
        h[0:4] = _MAGIC
        h[4] = _VERSION
        h[5] = layout
        _put16(h, 6, width)
        _put16(h, 8, height)
        _put16(h, 10, ink)
        _put16(h, 12, paper)

    def show(self):
        self.frames += 1
        h = self.header
        n = self.frames
        h[14] = (n >> 24) & 0xFF
        h[15] = (n >> 16) & 0xFF
        h[16] = (n >> 8) & 0xFF
        h[17] = n & 0xFF
        if self.sink is not None:
            self.sink(h, self.buf)
            return
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(h)
            f.write(self.buf)
        os.rename(tmp, self.path)

    def power(self, on):
        pass


def _put16(b, i, v):
    b[i] = (v >> 8) & 0xFF
    b[i + 1] = v & 0xFF
