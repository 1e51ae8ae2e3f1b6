"""Build the device's CJK bitmap font (firmware/fonts/hcp12.bin) from an openly licensed font.

    python -m tools.fontgen                      # rebuild firmware/fonts/hcp12.bin + .json
    python -m tools.fontgen --check     # rebuild in memory, compare with the committed file
    python -m tools.fontgen --chars 评价 --out /tmp/x.bin   # a subset, for experiments

Strategy. Small mono panels need real bitmap glyphs: an outline font thresholded at 12 px
smears strokes together. WenQuanYi Zen Hei ships hand-tuned 12 px bitmaps (the EBDT strike of
its "Sharp" face, index 2 of the Debian package's .ttc); FreeType copies embedded bitmaps
verbatim, so the output does not depend on the rasteriser's version. Pillow only locates each
glyph. The ink is placed on a fixed cell, so the device can compute where a glyph is instead
of storing offsets:

    offset  size  field (big-endian)
    0       4     magic b"HCPF"
    4       1     version = 1
    5       1     height: rows per glyph (13: 11 above the baseline, 2 at and below it)
    6       1     baseline: rows above the baseline (11)
    7       1     stride: bytes per row (2: widths up to 16 px)
    8       2     count: number of glyphs
    10      2     record size = 1 + height * stride (27)
    12      1     flags: bit 0 = glyphs 0..94 are U+0020..U+007E (ASCII is found without search)
    13      1     box advance: width of the "missing glyph" box (12)
    14      2     reserved, 0
    16      2n    code points, ascending (BMP only), for a binary search on the file
    16+2n   rn    records: advance (u8) then height rows of stride bytes, MONO_HLSB

A record is laid out exactly as framebuf.MONO_HLSB wants it, so the device reads one record
into a preallocated buffer and blits it: the font is never loaded whole into RAM.

Glyph placement: full-width glyphs (hanzi, CJK punctuation) keep their 12 px cell as drawn
by the font designer (one column of the cell is the gap). Narrow glyphs (ASCII) are cut to
their ink and advance by ink + 1 px, with digits all as wide as the widest digit, so a
countdown does not jitter. Space advances 4 px.

Coverage (default): all of GB2312 (6763 hanzi of levels 1 and 2 — staff names need level 2
— and the 682 symbols of rows 1-9: CJK punctuation, fullwidth forms, circled numbers),
printable ASCII, and U+00B7 and U+2014 (EXTRA). Characters the source font lacks are left
out and listed; the device draws a box for any code point it does not have.

Reproducibility: the manifest next to the font (hcp12.json) records the source package,
its file's SHA-256 and the output's SHA-256; tests/firmware_ui/test_fontgen.py rebuilds the
font from the installed source and compares bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
SOURCE_PACKAGE = "fonts-wqy-zenhei"  # Debian: GPL-2 with font embedding exception
SOURCE_FACE = 2  # "WenQuanYi Zen Hei Sharp": the face with embedded bitmap strikes
SIZE = 12  # pixel size of the bitmap strike
OUT = ROOT / "firmware" / "fonts" / "hcp12.bin"

MAGIC = b"HCPF"
VERSION = 1
HEADER = struct.Struct(">4sBBBBHHBBH")
ABOVE = 11  # rows above the baseline: a few CJK brackets and quotes reach the 11th
BELOW = 2  # the baseline row and one descender row (g, j, p, y)
HEIGHT = ABOVE + BELOW
STRIDE = 2
CELL = 12  # full-width advance
SPACE_ADVANCE = 4
FLAG_ASCII_DIRECT = 0x01
ASCII = [chr(c) for c in range(0x20, 0x7F)]
# GBK/GB18030 map two GB2312 punctuation marks differently from Python's gb2312 codec (which
# gives U+30FB and U+2015): the middle dot of minority names (阿依古丽·买买提) and the dash
# arrive from other systems as U+00B7 and U+2014, so both forms are in the font.
EXTRA = "\u00b7\u2014"


def gb2312_chars() -> list[str]:
    """Every character of GB2312 (rows 1-9 symbols, 16-87 hanzi), in code order."""
    out = []
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return out


def default_charset() -> list[str]:
    return sorted(set(ASCII) | set(gb2312_chars()) | set(EXTRA))


class Rasteriser:
    """One glyph at a time from the source font, as rows of 0/1 on the fixed cell."""

    PAD = 4  # canvas margin around the cell, to see ink that falls outside it

    def __init__(self, source: Path, face: int, size: int) -> None:
        from PIL import ImageFont

        self.font = ImageFont.truetype(str(source), size, index=face)
        self.clipped: list[str] = []
        self.notdef = self._ink("\uffff")  # what the font draws for a code point it lacks

    def _ink(self, ch: str) -> list[list[int]]:
        from PIL import Image, ImageDraw

        w, h = CELL + 2 * self.PAD + 8, HEIGHT + 2 * self.PAD
        img = Image.new("1", (w, h), 0)
        draw = ImageDraw.Draw(img)
        draw.fontmode = "1"  # no anti-aliasing: use the strike's pixels
        draw.text((self.PAD, self.PAD + ABOVE), ch, font=self.font, fill=1, anchor="ls")
        px = img.load()
        assert px is not None
        return [[1 if px[x, y] else 0 for x in range(w)] for y in range(h)]

    def glyph(self, ch: str) -> tuple[int, list[list[int]]] | None:
        """(advance, HEIGHT rows of 16 pixels), or None if the source lacks ch."""
        ink = self._ink(ch)
        if ch != " " and ch != "\u3000" and ink == self.notdef:
            return None
        cols = [x for x in range(len(ink[0])) if any(row[x] for row in ink)]
        rows = [y for y in range(len(ink)) if any(ink[y])]
        if rows and (rows[0] < self.PAD or rows[-1] >= self.PAD + HEIGHT):
            self.clipped.append(ch)
        wide = self.font.getlength(ch) >= CELL - 1
        if wide:
            advance, shift = CELL, self.PAD  # keep the designer's placement in the cell
            if cols and cols[0] < self.PAD:
                shift = cols[0]
            elif cols and cols[-1] >= self.PAD + CELL:
                shift = cols[-1] - CELL + 1
        elif cols:
            shift = cols[0]
            advance = cols[-1] - cols[0] + 2
        else:
            advance, shift = SPACE_ADVANCE, self.PAD
        out = [[0] * (STRIDE * 8) for _ in range(HEIGHT)]
        for y in range(HEIGHT):
            for x in range(min(advance, STRIDE * 8)):
                out[y][x] = ink[self.PAD + y][shift + x]
        return advance, out


def _tabular_digits(glyphs: dict[str, tuple[int, list[list[int]]]]) -> None:
    """Give 0-9 one advance (the widest), centring the narrower ones."""
    digits = [d for d in "0123456789" if d in glyphs]
    if not digits:
        return
    width = max(glyphs[d][0] for d in digits)
    for d in digits:
        adv, rows = glyphs[d]
        pad = (width - adv) // 2
        glyphs[d] = (width, [[0] * pad + r[: STRIDE * 8 - pad] for r in rows])


def pack(glyphs: dict[str, tuple[int, list[list[int]]]]) -> bytes:
    cps = sorted(ord(c) for c in glyphs)
    if any(cp > 0xFFFF for cp in cps):
        raise ValueError("only BMP code points fit the u16 index")
    ascii_direct = cps[: len(ASCII)] == [ord(c) for c in ASCII]
    record = 1 + HEIGHT * STRIDE
    head = HEADER.pack(
        MAGIC,
        VERSION,
        HEIGHT,
        ABOVE,
        STRIDE,
        len(cps),
        record,
        FLAG_ASCII_DIRECT if ascii_direct else 0,
        CELL,
        0,
    )
    index = struct.pack(f">{len(cps)}H", *cps)
    body = bytearray()
    for cp in cps:
        advance, rows = glyphs[chr(cp)]
        body.append(advance)
        for row in rows:
            for b in range(STRIDE):
                byte = 0
                for bit in range(8):
                    byte = (byte << 1) | row[b * 8 + bit]
                body.append(byte)
    return head + index + bytes(body)


def build(chars: Iterable[str], source: Path = SOURCE) -> tuple[bytes, list[str], list[str]]:
    """(font file bytes, characters the source lacks, characters clipped to the cell)."""
    r = Rasteriser(source, SOURCE_FACE, SIZE)
    glyphs = {}
    missing = []
    for ch in sorted(set(chars)):
        g = r.glyph(ch)
        if g is None:
            missing.append(ch)
        else:
            glyphs[ch] = g
    _tabular_digits(glyphs)
    return pack(glyphs), missing, r.clipped


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_version() -> str | None:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", SOURCE_PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def manifest(data: bytes, missing: Sequence[str], clipped: Sequence[str]) -> dict[str, object]:
    from PIL import __version__ as pillow_version
    from PIL import features

    return {
        "file": OUT.name,
        "bytes": len(data),
        "sha256": sha256(data),
        "glyphs": struct.unpack_from(">H", data, 8)[0],
        "height": HEIGHT,
        "charset": "GB2312 (levels 1 and 2, symbol rows 1-9) + ASCII 0x20-0x7E + U+00B7 U+2014",
        "missing": "".join(missing),
        "clipped": "".join(clipped),
        "source": {
            "package": SOURCE_PACKAGE,
            "version": source_version(),
            "file": str(SOURCE),
            "face": SOURCE_FACE,
            "size_px": SIZE,
            "sha256": sha256(SOURCE.read_bytes()),
            "licence": "GPL-2.0 with font embedding exception (WenQuanYi Zen Hei)",
        },
        "built_with": {"pillow": pillow_version, "freetype": features.version("freetype2")},
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fontgen", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT, help="font file to write")
    p.add_argument("--chars", help="build only these characters (default: GB2312 + ASCII)")
    p.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = p.parse_args(argv)
    if not SOURCE.exists():
        print(f"fontgen: {SOURCE} is missing: apt-get install {SOURCE_PACKAGE}", file=sys.stderr)
        return 1
    chars = list(args.chars) if args.chars else default_charset()
    data, missing, clipped = build(chars)
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"fontgen: {args.out} {'matches' if same else 'DIFFERS from'} a fresh build")
        return 0 if same else 1
    args.out.write_bytes(data)
    if args.chars is None:
        meta = manifest(data, missing, clipped)
        args.out.with_suffix(".json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    print(
        f"fontgen: wrote {args.out} ({len(data)} bytes, {len(chars) - len(missing)} glyphs; "
        f"missing {len(missing)}, clipped {len(clipped)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
