"""Display code on the MicroPython unix port: font reader, pen, SSD1306/ST7789 drivers, sim.

MicroPython only (framebuf). The drivers run against fake buses that record every byte, so
the init sequences and the frame path are checked without hardware.
"""

import os

import framebuf

from firmware.display import ssd1306, st7789
from firmware.display.font import Font, FontError
from firmware.display.pen import Pen
from firmware.display.sim import LAYOUT_HLSB, LAYOUT_VLSB, SimDisplay

FONT = os.getenv("HCP_FONT")


def _font():
    return Font(FONT)


def _canvas(w=128, h=64):
    buf = bytearray(w * h // 8)
    return buf, framebuf.FrameBuffer(buf, w, h, framebuf.MONO_VLSB)


def _ink(fb, x0, y0, w, h):
    n = 0
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            n += fb.pixel(x, y)
    return n


def test_font_finds_ascii_hanzi_and_reports_missing():
    f = _font()
    assert f.height == 13 and f.baseline == 11 and f.count > 7500
    assert f.advance(ord("评")) == 12 and f.load(ord("评")) == 12
    assert f.load(ord("A")) > 0 and f.advance(0x20) == 4
    assert f.load(ord("0")) == f.load(ord("8"))  # tabular digits
    assert f.load(0x5586) == -1  # 喆: not in GB2312
    assert f.advance(0x5586) == f.box
    assert f.load(ord("·")) > 0 and f.load(ord("—")) > 0
    f.close()


def test_font_search_is_cached_and_allocation_free():
    import gc

    f = _font()
    f.advance(ord("价"))
    n = f.lookups
    f.advance(ord("价"))
    f.load(ord("价"))
    assert f.lookups == n  # second time from the cache
    gc.collect()
    gc.disable()
    before = gc.mem_free()
    for cp in (0x8BF7, 0x60A8, 0x5BF9, 0x672C, 0x6B21, 0x670D, 0x52A1, 0x41):
        f.load(cp)
    used = before - gc.mem_free()
    gc.enable()
    assert used == 0, used
    f.close()


def test_font_rejects_other_files():
    path = "/tmp/hcp_not_a_font.bin"
    with open(path, "wb") as out:
        out.write(b"HCPX" + bytes(60))
    try:
        Font(path)
    except FontError as e:
        assert "not an HCPF" in str(e)
    else:
        raise AssertionError("accepted a bad font")


def test_pen_measures_draws_and_cuts_with_ellipsis():
    _, fb = _canvas()
    pen = Pen(fb, 128, 64, _font())
    assert pen.measure("评价") == 24
    assert pen.measure("评价", 2) == 48
    w = pen.text("评价", 0, 0)
    assert w == 24 and _ink(fb, 0, 0, 24, 13) > 20
    assert pen.overflows == 0
    w = pen.text("请您对本次服务进行评价", 0, 20, 1, 1, 60)
    assert w == 60 and pen.overflows == 1
    assert _ink(fb, 60, 20, 68, 13) == 0  # nothing past max_w


def test_pen_text_in_paper_colour_on_a_bar():
    _, fb = _canvas()
    pen = Pen(fb, 128, 64, _font())
    fb.fill_rect(0, 0, 128, 13, 1)
    pen.text("离线", 0, 0, 0)
    assert _ink(fb, 0, 0, 24, 13) < 24 * 13  # the glyphs cut holes in the bar
    assert _ink(fb, 30, 0, 98, 13) == 98 * 13


def test_missing_glyph_is_a_box():
    _, fb = _canvas()
    pen = Pen(fb, 128, 64, _font())
    w = pen.text("喆", 0, 0)
    assert w == 12
    assert fb.pixel(1, 1) == 1 and fb.pixel(1, 10) == 1 and fb.pixel(5, 5) == 0


def test_wrap_breaks_cjk_anywhere_keeps_latin_words_and_punctuation():
    _, fb = _canvas()
    pen = Pen(fb, 128, 64, _font())
    assert pen.lines("一二三四五六七八九十一二", 120) == 2
    assert pen.lines("hello world", 40) == 2
    # "。" would start line 2: the character before it moves down with it
    n = pen.lines("一二三四五六七八九十。", 120)
    assert n == 2 and pen._ends[0] == 9
    assert pen.lines("第一行\n第二行", 120) == 2
    used = pen.para("一二三四五六七八九十一二三四五六七八九十一二", 0, 0, 120, 2, 13)
    assert used == 2 and pen.overflows == 1


def test_qr_draws_modules_and_quiet_zone():
    buf = bytearray(240 * 240 // 8)
    fb = framebuf.FrameBuffer(buf, 240, 240, framebuf.MONO_HLSB)
    pen = Pen(fb, 240, 240, _font())
    size = 21
    bits = bytearray((size * size + 7) // 8)
    bits[0] = 0x80  # module (0, 0) dark
    i = 20 * size + 20  # module (20, 20) dark
    bits[i >> 3] |= 0x80 >> (i & 7)
    fb.fill(1)
    side = pen.qr(size, bits, 10, 10, 3)
    assert side == (21 + 8) * 3
    assert fb.pixel(10, 10) == 0  # quiet zone is paper
    assert fb.pixel(10 + 12 + 1, 10 + 12 + 1) == 1  # module (0, 0)
    assert fb.pixel(10 + 15 + 1, 10 + 12 + 1) == 0  # module (0, 1)
    assert fb.pixel(10 + 12 + 60 + 1, 10 + 12 + 60 + 1) == 1  # module (20, 20)


class FakeI2C:
    def __init__(self):
        self.writes = []

    def writeto(self, addr, buf):
        self.writes.append((addr, bytes(buf)))

    def writevto(self, addr, parts):
        data = b""
        for p in parts:
            data += bytes(p)
        self.writes.append((addr, data))


def test_ssd1306_init_sequence_and_frame():
    bus = FakeI2C()
    d = ssd1306.SSD1306(bus)
    cmds = []
    for addr, data in bus.writes:
        assert addr == 0x3C and data[0] == 0x80 and len(data) == 2
        cmds.append(data[1])
    assert cmds[0] == 0xAE and cmds[-1] == 0xAF  # off first, on last
    assert cmds[cmds.index(0x8D) + 1] == 0x14  # charge pump on
    assert cmds[cmds.index(0xA8) + 1] == 63  # 64 rows
    assert cmds[cmds.index(0xDA) + 1] == 0x12
    assert cmds[cmds.index(0x20) + 1] == 0x00  # horizontal addressing
    bus.writes = []
    d.fb.pixel(0, 0, 1)
    d.fb.pixel(127, 63, 1)
    d.show()
    window = []
    for w in bus.writes[:6]:
        window.append(w[1][1])
    assert window == [0x21, 0, 127, 0x22, 0, 7]
    frame = bus.writes[6][1]
    assert len(frame) == 1025 and frame[0] == 0x40
    assert frame[1] == 0x01 and frame[1024] == 0x80  # MONO_VLSB: page 0 bit 0, page 7 bit 7


class FakePin:
    def __init__(self, log, name):
        self.log = log
        self.name = name

    def value(self, v):
        self.log.append((self.name, v))


class FakeSPI:
    def __init__(self, log):
        self.log = log

    def write(self, data):
        # a frame is 115,200 bytes: keep each write's first bytes and its length
        self.log.append(("spi", bytes(data[:8]), len(data)))


def _commands(log):
    """[command, data head, data length] from a pin/SPI log (dc 0: command, dc 1: data);
    the head is the first write's first 8 bytes."""
    out = []
    dc = None
    for entry in log:
        if entry[0] == "dc":
            dc = entry[1]
        elif entry[0] == "spi":
            if dc == 0:
                out.append([entry[1][0], b"", 0])
            else:
                if not out[-1][2]:
                    out[-1][1] = entry[1]
                out[-1][2] += entry[2]
    return out


def test_st7789_init_sequence_and_palette_frame():
    log = []
    slept = []
    d = st7789.ST7789(
        FakeSPI(log),
        FakePin(log, "cs"),
        FakePin(log, "dc"),
        FakePin(log, "rst"),
        ink=st7789.rgb565(0, 0, 128),
        sleep=slept.append,
    )
    order = []
    for c, data, _ in _commands(log):
        order.append(c)
        if c == st7789.COLMOD:
            assert data == b"\x55"
    assert order[:2] == [st7789.SWRESET, st7789.SLPOUT]
    assert order[-1] == st7789.DISPON and st7789.INVON in order
    assert st7789.RAMWR in order  # the canvas is written before the panel is switched on
    assert slept.count(120) >= 3
    assert ("rst", 0) in log
    log.clear()
    d.fb.pixel(0, 0, 1)
    d.show()
    cmds = _commands(log)
    assert cmds[0] == [st7789.CASET, b"\x00\x00\x00\xef", 4]
    assert cmds[1] == [st7789.RASET, b"\x00\x00\x00\xef", 4]
    c, pixels, n = cmds[2]
    assert c == st7789.RAMWR and n == 240 * 240 * 2
    ink = st7789.rgb565(0, 0, 128)
    assert pixels[0] == ink >> 8 and pixels[1] == ink & 0xFF  # big-endian on the wire
    assert pixels[2] == 0xFF and pixels[3] == 0xFF  # paper: white


def test_st7789_offset_window():
    log = []
    d = st7789.ST7789(
        FakeSPI(log), FakePin(log, "cs"), FakePin(log, "dc"), y_offset=80, sleep=lambda ms: None
    )
    log.clear()
    d.show()
    assert _commands(log)[1] == [st7789.RASET, b"\x00\x50\x01\x3f", 4]


def test_sim_display_publishes_atomically():
    path = "/tmp/hcp_sim_display.hcpd"
    d = SimDisplay(128, 64, LAYOUT_VLSB, path=path)
    d.fb.pixel(0, 0, 1)
    d.show()
    d.show()
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"HCPD" and data[5] == LAYOUT_VLSB
    assert data[6:10] == b"\x00\x80\x00\x40" and data[17] == 2  # frame 2
    assert len(data) == 20 + 1024 and data[20] == 1
    got = []
    d = SimDisplay(240, 240, LAYOUT_HLSB, sink=lambda h, b: got.append(len(b)))
    d.show()
    assert got == [7200]
