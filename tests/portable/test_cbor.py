"""protocol.cbor on both Pythons: RFC 8949 Appendix A, every refusal code, limits, UTF-8."""

# pytest runs this on CPython; tests/portable/run.py runs it on MicroPython in a 64 KB heap.
# MicroPython compiles the whole module (and the codec) inside that heap, and a tuple-of-tuples
# table costs several times its source size to compile, so the tables are text: one
# "hex python-literal" row per line, parsed (and the literal eval'd) at run time.

import gc
import sys
from collections import OrderedDict

from check import raises, tohex, unhex

from protocol import cbor
from protocol.errors import CborError

# MicroPython here is the 64-bit unix port in a 64 KB heap that has just compiled this module
# and the codec from source: about 37 KB stay free, but the compiler's leftovers are scattered
# through the heap and no free block is much over 3 KB. So on MicroPython, test data stays in
# blocks of about 2 KB: no 256-pair dict (its hash table alone is 4.9 KB on a 64-bit build),
# and the all-limits structure shrinks to what one packet carries (MAX_PACKET = 1280 bytes).
# CPython runs everything in full; 257 items or pairs are refused before anything is
# allocated, so that boundary is checked on both.
MP = sys.implementation.name == "micropython"

# encode(value) == hex and decode(hex) == value. First the RFC 8949 Appendix A examples inside
# the profile (the RFC's "\ud800\udd51" is U+10151), then every integer width boundary.
# od(...) is an OrderedDict: MicroPython's dict is not insertion-ordered.
BOTH = r"""
00 0
01 1
0a 10
17 23
1818 24
1819 25
1864 100
1903e8 1000
1a000f4240 1000000
1b000000e8d4a51000 1000000000000
1bffffffffffffffff 18446744073709551615
3bffffffffffffffff -18446744073709551616
20 -1
29 -10
3863 -100
3903e7 -1000
fb3ff199999999999a 1.1
fb7e37e43c8800759c 1.0e300
fbc010666666666666 -4.1
f4 False
f5 True
f6 None
40 b""
4401020304 b"\x01\x02\x03\x04"
60 ""
6161 "a"
6449455446 "IETF"
62225c '"\\'
62c3bc "\u00fc"
63e6b0b4 "\u6c34"
64f0908591 "\U00010151"
80 []
83010203 [1, 2, 3]
8301820203820405 [1, [2, 3], [4, 5]]
98190102030405060708090a0b0c0d0e0f101112131415161718181819 list(range(1, 26))
a0 {}
a201020304 od((1, 2), (3, 4))
a26161016162820203 od(("a", 1), ("b", [2, 3]))
826161a161626163 ["a", {"b": "c"}]
a56161614161626142616361436164614461656145 od(*[(c, c.upper()) for c in "abcde"])
18ff 255
190100 256
19ffff 65535
1a00010000 65536
1affffffff 4294967295
1b0000000100000000 4294967296
37 -24
3818 -25
38ff -256
390100 -257
39ffff -65536
3a00010000 -65537
3b0000000100000000 -4294967297
a1416b20 {b"k": -1}
a2617a01616102 od(("z", 1), ("a", 2))
881904d2184d02801a6ab13b801a075bcd150300 [1234, 77, 2, [], 1790000000, 123456789, 3, 0]
fb7ff0000000000000 float("inf")
fbfff0000000000000 float("-inf")
"""

# decode(hex) == value only: Appendix A float32s, non-shortest forms (accepted by design).
DECODE_ONLY = r"""
fa47c35000 100000.0
fa7f7fffff 3.4028234663852886e38
fa7f800000 float("inf")
faff800000 float("-inf")
1800 0
190001 1
1a00000017 23
1b0000000000000018 24
3800 -1
5800 b""
59000161 b"a"
780161 "a"
9800 []
9a0000000101 [1]
b800 {}
b9000101f6 {1: None}
a3016161616101416102 {1: "a", "a": 1, b"a": 2}
"""

# encode(value) == hex only: other Python types that map onto the profile.
ENCODE_ONLY = r"""
82018102 (1, (2,))
426162 bytearray(b"ab")
426162 memoryview(b"ab")
83f5f4f6 (True, False, None)
"""

# Refusals by decode: "code: hex hex ...", continuation lines indented; "-" is the empty input.
# Includes every Appendix A example outside the profile (float16, undefined, simple values, tags,
# indefinite lengths); cbor.items and cbor.length are in the limit tests below.
REFUSED = """
truncated: - 18 1900 1a000000 1b00000000000000 38 41 6261 81 8201 a1 a101 fa000000
  fb00000000000000 5affffffff 7affffffff 9affffffff bbffffffffffffffff 9819 a3010203
  820181 a101a1
trailing: 0000 80ff 8000 a0a0 6161ff
tag: c0 d8 d9 c100 d9d9f7 c249010000000000000000 c11a514b67b0 d74401020304 d818456449455446
  c074323031332d30332d32315432303a30343a30305a 8201c0
indefinite: 1f 3f 5f 7f 9f bf df ff 81ff 9fff 5f42010243030405ff 7f657374726561646d696e67ff
  9f018202039f0405ffff 83018202039f0405ff bf61610161629f0203ffff bf6346756ef563416d7421ff
float16: f9 f90000 f93c00 f97bff f97c00 f97e00 f9fc00 8201f90000
simple: e0 f0 f3 f7 f8 f800 f818 f820 f8ff 83f4f5f7
reserved: 1c 1d 1e 3c 3d 3e 5c 7d 9e bc dc dd de fc fd fe
depth: 818181818181818180 a101a101a101a101a101a101a101a101a0 8181818181a101a101a10180
utf8: 62c328 61ff 63eda080 6180 a162c08000
dupkey: a201010102 a20100180100 a2616100616101 a2416100416101 a2200039000001
keytype: a1f501 a1f401 a18001 a1a001 a1f601 a1fb3ff000000000000001 a1fa3f80000001
"""

# Refusals by encode: "code python-literal".
ENCODE_REFUSED = r"""
utf8 "\ud800"
utf8 ["ok", {"k": "a\udfffb"}]
type set()
type object()
type [1, {"a": cbor}]
type 1j
range 2**64
range -(2**64) - 1
range {1: [2**70]}
range {2**64: 1}
keytype {True: 1}
keytype {False: 1}
keytype {None: 1}
keytype {1.5: 1}
keytype {(1, 2): 1}
depth nest(8, [])
depth [nest(7, {})]
items [0] * 257
items (0,) * 257
length b"x" * 1025
length bytearray(1025)
length "x" * 1025
length "\u6c34" * 342
"""

# RFC 3629 edge cases, as hex of the text's bytes.
# Valid: U+0080, U+07FF, U+0800, U+D7FF (below the surrogates), U+E000 (above), U+FFFF,
# U+10000, U+1F600, U+10FFFF (the last code point).
UTF8_VALID = "c280 dfbf e0a080 ed9fbf ee8080 efbfbf f0908080 f09f9880 f48fbfbf 61f48fbfbf62"
# Invalid: surrogates U+D800, U+DFFF and a CESU-8 pair; overlongs (C0 80, C1 BF, E0 80 80,
# E0 9F BF, F0 80 80 80, F0 8F BF BF); U+110000; leads F5 and FF; a lone continuation; 2-, 3-
# and 4-byte sequences cut short (also at the very end); bad continuation bytes.
UTF8_INVALID = (
    "eda080 edbfbf eda081edb080 c080 c1bf e08080 e09fbf f0808080 f08fbfbf f4908080 f5808080"
    " ff 80 c3 e6b0 f09f98 61c3 6161e6b0 c328 e628b4 e6b028 f09f2880 f09f9828 f0289880"
)


def nest(levels, inner):
    for _ in range(levels):
        inner = [inner]
    return inner


def _od(*pairs):
    return OrderedDict(pairs)


_NAMES = {"od": _od, "nest": nest, "cbor": cbor, "OrderedDict": OrderedDict}


def _rows(table):
    for line in table.split("\n"):
        if line:
            first, literal = line.split(None, 1)
            yield first, eval(literal, _NAMES)


def _plain(value):
    # decode() gives plain dicts; on MicroPython OrderedDict never equals a dict.
    return dict(value) if isinstance(value, OrderedDict) else value


def test_encode_and_decode_tables():
    for hexed, value in _rows(BOTH):
        got = tohex(cbor.encode(value))
        assert got == hexed, (value, got, hexed)
        got = cbor.decode(unhex(hexed))
        value = _plain(value)
        assert got == value and type(got) is type(value), (hexed, got, value)


def test_decode_only_table():
    for hexed, value in _rows(DECODE_ONLY):
        got = cbor.decode(unhex(hexed))
        assert got == value and type(got) is type(value), (hexed, got, value)
    for hexed in ("fa7fc00000", "fb7ff8000000000000"):  # NaN
        nan = cbor.decode(unhex(hexed))
        assert nan != nan
    nan = cbor.decode(cbor.encode(float("nan")))
    assert nan != nan


def test_encode_only_table():
    for hexed, value in _rows(ENCODE_ONLY):
        assert tohex(cbor.encode(value)) == hexed, value
    # A plain dict is written in its iteration order (insertion order on CPython only).
    d = {"b": 1, 2: "x", b"c": [3]}
    enc = cbor.encode(d)
    assert len(enc) == 11 and cbor.decode(enc) == d


def test_decode_refusals_one_per_code():
    codes = set()
    code = None
    for line in REFUSED.split("\n"):
        words = line.split()
        if words and words[0].endswith(":"):
            code = "cbor." + words.pop(0)[:-1]
            codes.add(code)
        for word in words:
            data = b"" if word == "-" else unhex(word)
            e = raises(CborError, code, cbor.decode, data)
            assert e.detail, word
    assert len(codes) == 11  # cbor.items and cbor.length: the limit tests below


def test_encode_refusals():
    for code, value in _rows(ENCODE_REFUSED):
        raises(CborError, "cbor." + code, cbor.encode, value)
    loop = []
    loop.append(loop)
    raises(CborError, "cbor.depth", cbor.encode, loop)


def test_decode_input_kinds_and_decode_from():
    enc = unhex("8301820203820405")
    for data in (enc, bytearray(enc), memoryview(enc), memoryview(b"xx" + enc)[2:]):
        assert cbor.decode(data) == [1, [2, 3], [4, 5]]
    data = unhex("01 6161 820203 ff")
    assert cbor.decode_from(data, 0) == (1, 1)
    assert cbor.decode_from(data, 1) == ("a", 3)
    assert cbor.decode_from(data, 3) == ([2, 3], 6)
    raises(CborError, "cbor.indefinite", cbor.decode_from, data, 6)
    raises(CborError, "cbor.truncated", cbor.decode_from, data, 7)
    try:
        cbor.decode("00")
    except TypeError:
        pass
    else:
        raise AssertionError("decode(str) must raise TypeError")


def test_lengths_are_checked_before_allocating():
    # 5 bytes claiming a 4 GB string: refused from the header, nothing allocated.
    e = raises(CborError, "cbor.truncated", cbor.decode, unhex("5affffffff"))
    assert e.detail == "string of 4294967295 bytes at offset 5 needs 4294967295 bytes, 0 left"
    e = raises(CborError, "cbor.truncated", cbor.decode, unhex("9a000f4240") + bytes(100))
    assert e.detail.startswith("array of 1000000 items")


def test_depth_limit_boundary():
    ok = unhex("81" * 7 + "80")  # 8 nested arrays
    assert cbor.decode(ok) == nest(7, []) and cbor.encode(nest(7, [])) == ok
    e = raises(CborError, "cbor.depth", cbor.decode, b"\x81" + ok)
    assert "MAX_DEPTH=8" in e.detail
    assert cbor.decode(unhex("a101" * 7 + "a0")) == {1: {1: {1: {1: {1: {1: {1: {}}}}}}}}
    # Scalars add no level; max_depth=0 accepts only a scalar.
    assert cbor.decode(unhex("01"), max_depth=0) == 1
    raises(CborError, "cbor.depth", cbor.decode, unhex("80"), max_depth=0)
    assert cbor.decode(unhex("8180"), max_depth=2) == [[]]
    raises(CborError, "cbor.depth", cbor.decode, unhex("818180"), max_depth=2)
    raises(CborError, "cbor.depth", cbor.encode, [[]], max_depth=1)


def test_items_limit_boundary():
    got = cbor.decode(unhex("990100") + bytes(256))
    assert len(got) == 256 and got.count(0) == 256
    assert cbor.encode([0] * 256) == unhex("990100") + bytes(256)
    e = raises(CborError, "cbor.items", cbor.decode, unhex("990101") + bytes(257))
    assert e.detail == "array of 257 items exceeds MAX_ITEMS=256"
    pairs = bytearray()
    for k in range(256):
        pairs += cbor.encode(k) + b"\xf6"
    e = raises(CborError, "cbor.items", cbor.decode, unhex("b90101190100f6") + pairs)
    assert e.detail == "map of 257 pairs exceeds MAX_ITEMS=256"
    if not MP:  # see MP
        assert cbor.decode(unhex("b90100") + pairs) == dict((k, None) for k in range(256))
        raises(CborError, "cbor.items", cbor.encode, dict((k, 0) for k in range(257)))
    assert tohex(cbor.encode([0] * 23)[:1]) == "97"
    assert tohex(cbor.encode([0] * 24)[:2]) == "9818"


def test_length_limit_boundary():
    for major in (b"\x59", b"\x79"):
        ok = major + b"\x04\x00" + b"a" * 1024
        assert cbor.encode(cbor.decode(ok)) == ok
        e = raises(CborError, "cbor.length", cbor.decode, major + b"\x04\x01" + b"a" * 1025)
        assert e.detail == "string of 1025 bytes exceeds MAX_LENGTH=1024"
    assert tohex(cbor.encode(b"x" * 24)[:2]) == "5818"
    assert tohex(cbor.encode("x" * 256)[:3]) == "790100"
    # The limit counts UTF-8 bytes, not characters.
    water = "\u6c34" * 341  # 1023 bytes
    assert cbor.decode(cbor.encode(water)) == water


def test_utf8_edge_cases():
    for hexed in UTF8_VALID.split():
        raw = unhex(hexed)
        item = bytes([0x60 + len(raw)]) + raw
        text = cbor.decode(item)
        assert text.encode("utf-8") == raw and cbor.encode(text) == item, hexed
    for hexed in UTF8_INVALID.split():
        raw = unhex(hexed)
        item = bytes([0x60 + len(raw)]) + raw
        raises(CborError, "cbor.utf8", cbor.decode, item)
        raises(CborError, "cbor.utf8", cbor.decode, b"\xa1\x61a" + item)  # as a map value
        raises(CborError, "cbor.utf8", cbor.decode, b"\xa1" + item + b"\x01")  # as a map key


def test_decode_maximum_size_structure():
    # Every limit at once: depth 8 (5 arrays + list + map + map), 256 items (with both integer
    # extremes), 1024-byte text (4-byte UTF-8) and bytes, a map of 256 pairs. On MicroPython
    # (see MP): depth 8 and 256 items still, with 256-byte text and a 32-pair map: 856 bytes.
    # Only one copy of the structure is alive at a time; the decoded one is checked in place.
    chars = 64 if MP else 256
    pairs = 32 if MP else 256
    leaf = [list(range(-2, 254)), {"t": "\U0001f600" * chars, "m": {}}]
    leaf[0][0] = 2**64 - 1
    leaf[0][1] = -(2**64)
    for k in range(pairs):
        leaf[1]["m"][k] = -k
    if not MP:
        leaf[1]["b"] = b"\xff" * 1024
    enc = cbor.encode(nest(5, leaf))
    assert len(enc) == (856 if MP else 3550)
    leaf = None
    gc.collect()
    got = cbor.decode(enc)
    for _ in range(5):
        assert type(got) is list and len(got) == 1
        got = got[0]
    ints, m = got
    got = None
    assert len(ints) == 256 and ints[0] == 2**64 - 1 and ints[1] == -(2**64)
    for k in range(2, 256):
        assert ints[k] == k - 2
    assert len(m) == (2 if MP else 3) and m["t"] == "\U0001f600" * chars
    assert MP or m["b"] == b"\xff" * 1024
    assert len(m["m"]) == pairs
    for k in range(pairs):
        assert m["m"][k] == -k
    ints = m = None
    raises(CborError, "cbor.depth", cbor.decode, b"\x81" + enc)
