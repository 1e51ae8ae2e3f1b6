"""Drawing on a framebuf: text in the CJK bitmap font (measured, wrapped, truncated), scaled
glyphs for the large panel, QR matrices with their quiet zone.

Strategy: text arrives as str (CBOR text: staff names, window labels, reasons, DISPLAY).
Each string is encoded once and decoded into a preallocated array of code points, so
measuring, wrapping and drawing index integers instead of making a str per character. Ink
is colour 1 and paper 0 on every canvas; the driver's palette turns them into the panel's
colours. Glyphs are blitted with paper as the transparent colour, so text can sit on a
filled bar (drawn in colour 0 there).

Nothing is ever drawn outside [x, x + max_w): a line that does not fit ends in "…" and
bumps `overflows`, which the screen tests assert stays 0 for texts at their protocol limits.
"""

from array import array

import framebuf
from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_LEFT = const(0)
_CENTER = const(1)
_RIGHT = const(2)
_MAX_TEXT = const(128)  # code points per string: DISPLAY text is at most 96 UTF-8 bytes
_MAX_LINES = const(12)
_ELLIPSIS = const(0x2026)
_QUIET = const(4)  # QR quiet zone in modules (ISO/IEC 18004: 4 for QR codes)


class Pen:
    def __init__(self, fb, width, height, font):
        self.fb = fb
        self.width = width
        self.height = height
        self.font = font
        self.line_h = font.height  # 13: 11 above the baseline, 2 below
        self._cps = array("H", [0] * _MAX_TEXT)
        self._n = 0
        self._starts = array("H", [0] * _MAX_LINES)
        self._ends = array("H", [0] * _MAX_LINES)
        # palettes for blitting a 1-bit glyph in colour 0 or colour 1 (paper transparent)
        self._pal = (_palette(0), _palette(1))
        self.overflows = 0  # lines cut with "…" or paragraphs cut short

    # ---- code points ----
    def _decode(self, s):
        b = s.encode() if isinstance(s, str) else s
        cps = self._cps
        n = 0
        i = 0
        end = len(b)
        while i < end and n < _MAX_TEXT:
            c = b[i]
            if c < 0x80:
                i += 1
            elif c < 0xE0 and i + 1 < end:
                c = ((c & 0x1F) << 6) | (b[i + 1] & 0x3F)
                i += 2
            elif c < 0xF0 and i + 2 < end:
                c = ((c & 0x0F) << 12) | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F)
                i += 3
            else:
                # outside the BMP (or broken): the font has no glyph, a box shows
                i += 4 if c >= 0xF0 else 1
                c = 0xFFFD
            cps[n] = c
            n += 1
        self._n = n
        return n

    def _span(self, start, end, scale):
        w = 0
        adv = self.font.advance
        cps = self._cps
        for i in range(start, end):
            w += adv(cps[i])
        return w * scale

    def measure(self, s, scale=1):
        """Width of s in pixels at scale."""
        return self._span(0, self._decode(s), scale)

    # ---- drawing ----
    def _glyph(self, cp, x, y, c, scale):
        font = self.font
        adv = font.load(cp)
        if adv < 0:  # not in the font: a box, visibly
            adv = font.box
            top = y + scale * (font.baseline - 10)
            self.fb.rect(x + scale, top, (adv - 2) * scale, 10 * scale, c)
            return adv * scale
        if scale == 1:
            # framebuf compares the key after the palette: paper maps to 1 - c, so that is
            # the transparent colour
            self.fb.blit(font.glyph, x, y, 1 - c, self._pal[c])
            return adv
        g = font.glyph
        fill = self.fb.fill_rect
        for row in range(font.height):
            col = 0
            while col < adv:
                if g.pixel(col, row):
                    run = col
                    while col < adv and g.pixel(col, row):
                        col += 1
                    fill(x + run * scale, y + row * scale, (col - run) * scale, scale, c)
                else:
                    col += 1
        return adv * scale

    def _draw(self, start, end, x, y, c, scale):
        cps = self._cps
        for i in range(start, end):
            x += self._glyph(cps[i], x, y, c, scale)
        return x

    def _fit(self, start, end, max_w, scale):
        """Index after the last code point of start..end that fits in max_w."""
        adv = self.font.advance
        cps = self._cps
        w = 0
        for i in range(start, end):
            w += adv(cps[i]) * scale
            if w > max_w:
                return i
        return end

    def _line(self, start, end, x, y, max_w, c, scale, align):
        w = self._span(start, end, scale)
        if w > max_w:
            self.overflows += 1
            room = max_w - self.font.advance(_ELLIPSIS) * scale
            cut = self._fit(start, end, room, scale)
            x = self._draw(start, cut, x, y, c, scale)
            self._glyph(_ELLIPSIS, x, y, c, scale)
            return max_w
        if align == _CENTER:
            x += (max_w - w) // 2
        elif align == _RIGHT:
            x += max_w - w
        self._draw(start, end, x, y, c, scale)
        return w

    def text(self, s, x, y, c=1, scale=1, max_w=0, align=_LEFT):
        """One line of s at (x, y) (top of the cell) within max_w (0: to the right edge).
        Returns the width used."""
        if not max_w:
            max_w = self.width - x
        n = self._decode(s)
        return self._line(0, n, x, y, max_w, c, scale, align)

    def para(self, s, x, y, w, max_lines, pitch, c=1, scale=1, align=_LEFT):
        """s wrapped to width w, at most max_lines lines `pitch` apart; the lines used."""
        n = self._decode(s)
        lines = self._wrap(n, w, max_lines, scale)
        for i in range(lines):
            self._line(self._starts[i], self._ends[i], x, y + i * pitch, w, c, scale, align)
        return lines

    def lines(self, s, w, scale=1):
        """How many lines s needs at width w (at most _MAX_LINES)."""
        return self._wrap(self._decode(s), w, _MAX_LINES, scale)

    def _wrap(self, n, w, max_lines, scale):
        # Greedy: CJK text breaks anywhere; a Latin word moves whole to the next line when
        # it can; "\n" breaks. A last line that cannot hold the rest ends in "…".
        cps = self._cps
        adv = self.font.advance
        lines = 0
        i = 0
        while i < n and lines < max_lines:
            while i < n and cps[i] == 0x20:
                i += 1
            start = i
            width = 0
            space = -1
            while i < n and cps[i] != 0x0A:
                a = adv(cps[i]) * scale
                if width + a > w and i > start:
                    break
                if cps[i] == 0x20:
                    space = i
                width += a
                i += 1
            end = i
            if i < n and i - 1 > start and _no_start(cps[i]):
                end = i - 1  # 避头: closing punctuation never starts a line; its word moves too
                i = end
            elif i < n and _word(cps[i]) and _word(cps[i - 1]) and space > start:
                end = space  # do not split a Latin word
                i = space + 1
            elif i < n and cps[i] == 0x0A:
                i += 1
            if lines == max_lines - 1 and i < n:
                end = n  # the last line takes the rest: _line cuts it with "…"
                i = n
            self._starts[lines] = start
            self._ends[lines] = end
            lines += 1
        return lines

    # ---- QR ----
    def qr(self, size, bits, x, y, scale, dark=1):
        """Draw a QR matrix (docs/protocol.md: row by row, MSB first, 1 = dark) with its
        quiet zone at (x, y); returns the side in pixels."""
        side = (size + 2 * _QUIET) * scale
        fb = self.fb
        fb.fill_rect(x, y, side, side, 1 - dark)
        x0 = x + _QUIET * scale
        y0 = y + _QUIET * scale
        i = 0
        for r in range(size):
            c = 0
            while c < size:
                if bits[i >> 3] & (0x80 >> (i & 7)):
                    run = c
                    while c < size and bits[i >> 3] & (0x80 >> (i & 7)):
                        c += 1
                        i += 1
                    fb.fill_rect(x0 + run * scale, y0 + r * scale, (c - run) * scale, scale, dark)
                else:
                    c += 1
                    i += 1
        return side


def qr_scale(size, room):
    """The largest whole-pixel module size that fits the QR and its quiet zone in room px."""
    return room // (size + 2 * _QUIET)


# Closing punctuation that must not begin a line (Chinese layout rule 避头).
_NO_START = const("，。、；：？！）」』》〕】”’…,.;:?!)")


def _no_start(cp):
    # chr() of a code point already on screen: a tiny str, only at a line break
    return cp >= 0x20 and chr(cp) in _NO_START


def _word(cp):
    return cp < 0x80 and cp != 0x20


def _palette(colour):
    p = framebuf.FrameBuffer(bytearray(1), 2, 1, framebuf.MONO_HLSB)
    p.pixel(0, 0, 1 - colour)
    p.pixel(1, 0, colour)
    return p
