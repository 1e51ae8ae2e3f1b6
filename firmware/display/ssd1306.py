"""SSD1306 monochrome OLED over I2C (the evaluator's 0.96" 128x64 panel; 128x32 works too).

Strategy: the canvas is a framebuf in the controller's own layout (MONO_VLSB: one byte is
eight vertical pixels of a page, 128 bytes a page), so show() sends the buffer as it is, in
one I2C transaction, with no conversion and no copy (writevto). 1024 bytes for 128x64.

The init sequence follows the SSD1306 datasheet (Solomon Systech rev 1.1, "Software
Initialization" flow, §10 command table), for the usual modules with the internal charge
pump. Each command byte goes in its own control-byte pair (0x80, cmd), which every SSD1306
accepts. Commands are written from a preallocated 2-byte buffer: nothing allocates per frame.
"""

import framebuf

ADDR = 0x3C  # SA0 low; 0x3D on modules with SA0 strapped high
CTRL_CMD = 0x80  # Co = 1, D/C# = 0: one command byte follows
CTRL_DATA = b"\x40"  # Co = 0, D/C# = 1: the rest of the transaction is display RAM

DISPLAY_OFF = 0xAE
DISPLAY_ON = 0xAF
SET_CONTRAST = 0x81
ENTIRE_ON_RESUME = 0xA4  # show RAM contents
NORMAL = 0xA6
INVERT = 0xA7
SET_MEM_MODE = 0x20  # 0x00: horizontal addressing (pages wrap to the next)
SET_COL_ADDR = 0x21
SET_PAGE_ADDR = 0x22
SCROLL_OFF = 0x2E
SET_START_LINE = 0x40
SEG_REMAP = 0xA1  # column 127 -> SEG0 (0xA0: not remapped)
SET_MUX = 0xA8
COM_SCAN_DEC = 0xC8  # scan COM[N-1] -> COM0 (0xC0: increasing)
SET_OFFSET = 0xD3
SET_COM_PINS = 0xDA
SET_CLOCK = 0xD5
SET_PRECHARGE = 0xD9
SET_VCOMH = 0xDB
CHARGE_PUMP = 0x8D


class SSD1306:
    """One panel. fb is the canvas (colour 1 = lit pixel)."""

    def __init__(self, i2c, width=128, height=64, addr=ADDR, flip=False, external_vcc=False):
        self.i2c = i2c
        self.addr = addr
        self.width = width
        self.height = height
        self.pages = height // 8
        self.flip = flip
        self.external_vcc = external_vcc
        self.buf = bytearray(width * self.pages)
        self.fb = framebuf.FrameBuffer(self.buf, width, height, framebuf.MONO_VLSB)
        self._cmd = bytearray(2)
        self._cmd[0] = CTRL_CMD
        self._parts = [CTRL_DATA, self.buf]
        self.init()

    def command(self, c):
        self._cmd[1] = c
        self.i2c.writeto(self.addr, self._cmd)

    def init(self):
        ext = self.external_vcc
        for c in (
            DISPLAY_OFF,
            SET_CLOCK,
            0x80,  # divide ratio 1, oscillator at its reset value
            SET_MUX,
            self.height - 1,
            SET_OFFSET,
            0x00,
            SET_START_LINE | 0,
            CHARGE_PUMP,
            0x10 if ext else 0x14,  # 0x14: internal charge pump on
            SET_MEM_MODE,
            0x00,
            SEG_REMAP - 1 if self.flip else SEG_REMAP,  # flip: 180 degrees
            0xC0 if self.flip else COM_SCAN_DEC,
            SET_COM_PINS,
            0x02 if self.height == 32 else 0x12,  # sequential for 32 rows, alternative for 64
            SET_CONTRAST,
            0x9F if ext else 0xCF,
            SET_PRECHARGE,
            0x22 if ext else 0xF1,
            SET_VCOMH,
            0x30,  # ~0.83 x Vcc
            ENTIRE_ON_RESUME,
            NORMAL,
            SCROLL_OFF,
            DISPLAY_ON,
        ):
            self.command(c)

    def show(self):
        self.command(SET_COL_ADDR)
        self.command(0)
        self.command(self.width - 1)
        self.command(SET_PAGE_ADDR)
        self.command(0)
        self.command(self.pages - 1)
        self.i2c.writevto(self.addr, self._parts)

    def power(self, on):
        self.command(DISPLAY_ON if on else DISPLAY_OFF)

    def contrast(self, value):
        self.command(SET_CONTRAST)
        self.command(value & 0xFF)

    def invert(self, on):
        self.command(INVERT if on else NORMAL)
