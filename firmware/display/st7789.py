"""ST7789 colour LCD over SPI (the QR unit's 1.3"/1.54" 240x240 IPS panel).

Strategy: a full RGB565 framebuffer of 240x240 is 115,200 bytes, more than the whole heap
budget. The screens are two-colour (a QR code must be dark on light anyway), so the canvas
is 1 bit per pixel (MONO_HLSB, 7,200 bytes) and show() converts it band by band: framebuf
blits BAND_ROWS rows through a two-entry RGB565 palette into a small band buffer (C speed,
no per-pixel Python), which goes out over SPI. The palette holds the colours byte-swapped,
because framebuf stores RGB565 little-endian and the panel reads big-endian.

Init sequence after the ST7789VW datasheet (Sitronix v1.0, §9.1 system function commands):
hardware reset (RESX low >= 10 us, then 120 ms), SWRESET (wait 120 ms before SLPOUT),
SLPOUT (wait 5 ms before the next command, 120 ms before SLPIN), COLMOD 0x55 (16 bit/pixel),
MADCTL (orientation), INVON (IPS panels are normally black: inversion gives true colours),
NORON, DISPON. 240x240 glass sits on the 240x320 controller: in some orientations the
visible window starts at row 80 (y_offset).
"""

from time import sleep_ms

import framebuf

SWRESET = 0x01
SLPOUT = 0x11
NORON = 0x13
INVOFF = 0x20
INVON = 0x21
DISPOFF = 0x28
DISPON = 0x29
CASET = 0x2A
RASET = 0x2B
RAMWR = 0x2C
MADCTL = 0x36
COLMOD = 0x3A
COLMOD_RGB565 = 0x55  # 65K colours, 16 bits per pixel

BAND_ROWS = 8  # 240 x 8 x 2 = 3,840 bytes; a divisor of 240

WHITE = 0xFFFF
BLACK = 0x0000


def rgb565(r, g, b):
    return ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)


def _swap(c):
    return ((c & 0xFF) << 8) | (c >> 8)


class ST7789:
    """One panel. fb is the 1-bit canvas (1 = ink, 0 = paper); ink and paper are RGB565."""

    def __init__(
        self,
        spi,
        cs,
        dc,
        rst=None,
        width=240,
        height=240,
        x_offset=0,
        y_offset=0,
        madctl=0x00,
        invert=True,
        ink=BLACK,
        paper=WHITE,
        sleep=sleep_ms,
    ):
        self.spi = spi
        self.cs = cs
        self.dc = dc
        self.rst = rst
        self.width = width
        self.height = height
        self.x_offset = x_offset
        self.y_offset = y_offset
        self.madctl = madctl
        self.invert = invert
        self._sleep = sleep
        self.buf = bytearray(width * height // 8)
        self.fb = framebuf.FrameBuffer(self.buf, width, height, framebuf.MONO_HLSB)
        self.band = bytearray(width * BAND_ROWS * 2)
        self._band_fb = framebuf.FrameBuffer(self.band, width, BAND_ROWS, framebuf.RGB565)
        self._palette = framebuf.FrameBuffer(bytearray(4), 2, 1, framebuf.RGB565)
        self._cmd = bytearray(1)  # the command byte
        self._one = bytearray(1)  # a one-byte parameter (never the same buffer as _cmd)
        self._four = bytearray(4)
        self.colours(ink, paper)
        self.init()

    def colours(self, ink, paper):
        self.ink = ink
        self.paper = paper
        self._palette.pixel(0, 0, _swap(paper))
        self._palette.pixel(1, 0, _swap(ink))

    def _command(self, c, data=None):
        self.cs.value(0)
        self.dc.value(0)
        self._cmd[0] = c
        self.spi.write(self._cmd)
        if data is not None:
            self.dc.value(1)
            self.spi.write(data)
        self.cs.value(1)

    def _window(self, x0, y0, x1, y1):
        b = self._four
        b[0] = x0 >> 8
        b[1] = x0 & 0xFF
        b[2] = x1 >> 8
        b[3] = x1 & 0xFF
        self._command(CASET, b)
        b[0] = y0 >> 8
        b[1] = y0 & 0xFF
        b[2] = y1 >> 8
        b[3] = y1 & 0xFF
        self._command(RASET, b)

    def init(self):
        self.cs.value(1)
        if self.rst is not None:
            self.rst.value(1)
            self._sleep(1)
            self.rst.value(0)
            self._sleep(1)  # RESX low for at least 10 us
            self.rst.value(1)
            self._sleep(120)  # reset completes within 120 ms
        self._command(SWRESET)
        self._sleep(120)  # SLPOUT may follow SWRESET only after 120 ms
        self._command(SLPOUT)
        self._sleep(120)  # supply and clocks settle; SLPIN would need 120 ms too
        self._one[0] = COLMOD_RGB565
        self._command(COLMOD, self._one)
        self._one[0] = self.madctl
        self._command(MADCTL, self._one)
        self._command(INVON if self.invert else INVOFF)
        self._command(NORON)
        self._sleep(10)
        self.show()  # RAM holds noise after reset: write the canvas before the panel shows it
        self._command(DISPON)
        self._sleep(10)

    def show(self):
        xo = self.x_offset
        yo = self.y_offset
        self._window(xo, yo, xo + self.width - 1, yo + self.height - 1)
        self._command(RAMWR)
        self.cs.value(0)
        self.dc.value(1)
        band = self._band_fb
        whole = self.height - self.height % BAND_ROWS
        for y in range(0, whole, BAND_ROWS):
            band.blit(self.fb, 0, -y, -1, self._palette)
            self.spi.write(self.band)
        if whole < self.height:  # a last, partial band
            band.blit(self.fb, 0, -whole, -1, self._palette)
            self.spi.write(memoryview(self.band)[: (self.height - whole) * self.width * 2])
        self.cs.value(1)

    def power(self, on):
        self._command(DISPON if on else DISPOFF)
