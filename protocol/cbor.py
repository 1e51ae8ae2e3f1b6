"""CBOR (RFC 8949) in the project's profile, unchanged on CPython and MicroPython.

decode walks a memoryview with an index (one recursion per container) and copies only the
final bytes/str; every declared length or count is checked against the remaining input and
its limit before anything is allocated. encode appends to one bytearray in preferred
(shortest) form and enforces the same limits. Decoding accepts non-shortest integer/length
encodings: signatures cover the raw bytes, so nothing needs a canonical form.
"""

# Notes (comments, not docstrings: MicroPython compiles this file in a 64 KB heap).
# - Profile: integers -2**64..2**64-1, byte and UTF-8 text strings, arrays, maps keyed by int,
#   text or bytes, false/true/null; floats are read as float32/float64 and written as float64
#   (the catalogue uses none). Anything else raises CborError; its code names the fault.
# - A key spelled two ways (0x01, 0x18 0x01) is still a duplicate key.
# - Text gets an explicit RFC 3629 check, since MicroPython's str() accepts surrogates and
#   overlong forms; all-ASCII text skips it.
# - Maps are written in dict iteration order: insertion order on CPython, hash order for a
#   MicroPython dict (pass an OrderedDict there when the bytes must match across ports).
# - Depth: a top-level array or map is level 1; scalars add none.
# - When several faults apply, the first check wins: (1) the initial byte alone: indefinite
#   (additional info 31, stray break 0xff), reserved (28-30), tag, float16, simple, depth;
#   (2) truncated (argument bytes missing, or a length/count beyond the remaining input);
#   (3) length, items; (4) the content in order: utf8, keytype, dupkey; (5) trailing, in
#   decode() only. encode raises type, range, depth, items, length, keytype, and utf8 for a
#   str that is not valid Unicode (a lone surrogate).

import struct

from protocol.errors import CborError

# Bodies nest 2-3 levels; 8 leaves room while bounding recursion (a Python frame per level on a
# device with a small C stack) and the work one hostile input can demand.
MAX_DEPTH = 8
# Elements per array / pairs per map: catalogue lists are far shorter; 256 bounds one list to
# 1 KB of pointers and one dict's table to about 2.5 KB on a 32-bit device (twice that on a
# 64-bit build), which a device heap of about 64 KB can spare.
MAX_ITEMS = 256
# Bytes per byte/text string: a body travels in one packet (framing.MAX_PACKET, 1280 bytes), so
# no string needs more, and one hostile string cannot take a visible slice of the heap.
MAX_LENGTH = 1024

_MAX_UINT = 0xFFFFFFFFFFFFFFFF  # 2**64 - 1; the most negative value is -1 - _MAX_UINT
_unpack_from = struct.unpack_from


def _utf8_valid(b, i, end):
    # True if b[i:end] is UTF-8 per RFC 3629: no surrogates, overlongs or > U+10FFFF.
    while i < end:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if c < 0xC2:  # a continuation byte, or the overlong leads C0/C1
            return False
        lo = 0x80
        hi = 0xBF
        if c < 0xE0:
            n = 1
        elif c < 0xF0:
            n = 2
            if c == 0xE0:
                lo = 0xA0  # E0 80-9F: overlong
            elif c == 0xED:
                hi = 0x9F  # ED A0-BF: surrogates
        elif c < 0xF5:
            n = 3
            if c == 0xF0:
                lo = 0x90  # F0 80-8F: overlong
            elif c == 0xF4:
                hi = 0x8F  # F4 90-BF: above U+10FFFF
        else:
            return False
        if i + n >= end or not lo <= b[i + 1] <= hi:
            return False
        k = i + 2
        i += n + 1
        while k < i:
            if b[k] & 0xC0 != 0x80:
                return False
            k += 1
    return True


# ---------------------------------------------------------------------------- decode


def _view(data):
    if isinstance(data, (bytes, bytearray)):
        return memoryview(data)
    if isinstance(data, memoryview):
        # A CPython view of wider items (array("H"), ...) is read as its bytes.
        return data if getattr(data, "itemsize", 1) == 1 else memoryview(bytes(data))
    raise TypeError("cbor: decode needs bytes, bytearray or memoryview, not " + _type_name(data))


def decode(data, max_depth=MAX_DEPTH):
    """The one item in data (bytes, bytearray or memoryview); CborError if it is anything else."""
    mv = _view(data)
    r = _Reader(mv, 0)
    value = _decode(r, max_depth)
    i = r.i
    if i != len(mv):
        raise CborError("cbor.trailing", f"{len(mv) - i} bytes after the item ending at offset {i}")
    return value


def decode_from(data, offset=0, max_depth=MAX_DEPTH):
    """(value, end) for the item at data[offset]; the bytes from `end` on are left alone."""
    if offset < 0:
        raise ValueError("cbor: negative offset")
    r = _Reader(_view(data), offset)
    value = _decode(r, max_depth)
    return value, r.i


class _Reader:
    # The read position lives here rather than in (value, index) return tuples: on
    # MicroPython every tuple is a heap allocation, one per item decoded.
    def __init__(self, mv, i):
        self.mv = mv
        self.i = i
        self.end = len(mv)


def _truncated(what, i, need, end):
    return CborError("cbor.truncated", f"{what} at offset {i} needs {need} bytes, {end - i} left")


def _refused(ib, at):
    # The CborError for an initial byte outside the profile.
    ai = ib & 0x1F
    if ai == 31:
        code = "indefinite"  # indefinite length, or a stray break 0xff
    elif ai >= 28:
        code = "reserved"
    elif ib >> 5 == 6:
        code = "tag"
    elif ib == 0xF9:
        code = "float16"
    else:
        code = "simple"  # a simple value other than false/true/null
    return CborError("cbor." + code, f"initial byte 0x{ib:02x} at offset {at}: {code}")


def _count_error(code, major, n, i, end):
    what = f"map of {n} pairs" if major == 5 else f"array of {n} items"
    if code == "cbor.items":
        return CborError(code, f"{what} exceeds MAX_ITEMS={MAX_ITEMS}")
    return _truncated(what, i, n << (major - 4), end)


def _decode(r, depth):
    # The item at r.i, advancing r.i past it; depth = container levels still allowed.
    mv = r.mv
    i = r.i
    end = r.end
    if i >= end:
        raise CborError("cbor.truncated", f"input ends at offset {i} where an item should start")
    ib = mv[i]
    if ib < 24:  # the commonest item in our bodies: a small unsigned integer
        r.i = i + 1
        return ib
    major = ib >> 5
    ai = ib & 0x1F
    if major == 7:
        if 20 <= ai <= 22:
            r.i = i + 1
            return (False, True, None)[ai - 20]
        if ai == 26 or ai == 27:
            w = 1 << (ai - 24)
            if i + 1 + w > end:
                raise _truncated("float", i + 1, w, end)
            r.i = i + 1 + w
            return _unpack_from(">f" if w == 4 else ">d", mv, i + 1)[0]
        raise _refused(ib, i)
    if ai >= 28 or major == 6:
        raise _refused(ib, i)
    if major >= 4 and depth < 1:
        raise CborError(
            "cbor.depth",
            f"container at offset {i} nests deeper than max_depth (default MAX_DEPTH={MAX_DEPTH})",
        )
    # The argument: a value (major 0/1), a length (2/3) or a count (4/5).
    i += 1
    if ai < 24:
        n = ai
    elif ai == 24:
        if i >= end:
            raise _truncated("argument", i, 1, end)
        n = mv[i]
        i += 1
    else:
        w = 1 << (ai - 24)
        if i + w > end:
            raise _truncated("argument", i, w, end)
        n = 0
        for k in range(i, i + w):  # no slice: a memoryview slice is an allocation
            n = (n << 8) | mv[k]
        i += w
    if major < 2:
        r.i = i
        return -1 - n if major else n
    if major < 4:
        if n > end - i:
            raise _truncated(f"string of {n} bytes", i, n, end)
        if n > MAX_LENGTH:
            raise CborError("cbor.length", f"string of {n} bytes exceeds MAX_LENGTH={MAX_LENGTH}")
        j = i + n
        r.i = j
        s = mv[i:j]
        if major == 2:
            return bytes(s)
        if n and max(s) >= 0x80 and not _utf8_valid(mv, i, j):
            raise CborError("cbor.utf8", f"text at offset {i} is not valid UTF-8 (RFC 3629)")
        try:
            return str(s, "utf-8")
        except UnicodeError:  # unreachable after _utf8_valid; no foreign error may escape
            raise CborError("cbor.utf8", f"text at offset {i} is not UTF-8") from None
    if n << (major - 4) > end - i:  # each item takes at least 1 byte, each pair 2
        raise _count_error("cbor.truncated", major, n, i, end)
    if n > MAX_ITEMS:
        raise _count_error("cbor.items", major, n, i, end)
    depth -= 1
    if major == 4:
        out = [None] * n  # one exact allocation, no growth garbage
        for k in range(n):
            if i < end and mv[i] < 24:  # small unsigned integer: skip the call
                out[k] = mv[i]
                i += 1
            else:
                r.i = i
                out[k] = _decode(r, depth)
                i = r.i
        r.i = i
        return out
    out = {}
    for _ in range(n):
        at = r.i = i
        k = _decode(r, depth)
        t = type(k)
        if t is not int and t is not str and t is not bytes:
            raise CborError("cbor.keytype", f"map key at offset {at} is a {_type_name(k)}")
        if k in out:
            raise CborError("cbor.dupkey", f"map key {k!r} at offset {at} repeats")
        out[k] = _decode(r, depth)
        i = r.i
    r.i = i
    return out


# ---------------------------------------------------------------------------- encode


def encode(value, max_depth=MAX_DEPTH):
    """The CBOR bytes of value, in preferred (shortest) form; CborError if outside the profile."""
    buf = bytearray()
    _encode(buf, value, max_depth)
    return bytes(buf)


def _type_name(v):
    return type(v).__name__


def _head(buf, major, n):
    # Append an initial byte of major type `major` (shifted) with argument n, shortest form.
    if n < 24:
        buf.append(major | n)
    elif n < 0x100:
        buf.append(major | 24)
        buf.append(n)
    else:
        ai = 25 if n < 0x10000 else 26 if n < 0x100000000 else 27
        buf.append(major | ai)
        buf.extend(n.to_bytes(1 << (ai - 24), "big"))


def _string(buf, major, b):
    n = len(b)
    if n > MAX_LENGTH:
        what = "text" if major == 0x60 else "byte string"
        raise CborError("cbor.length", f"{what} of {n} bytes exceeds MAX_LENGTH={MAX_LENGTH}")
    _head(buf, major, n)
    buf.extend(b)


def _encode(buf, v, depth):
    # True/False are matched by identity first: on CPython bool is an int subclass.
    if v is None:
        buf.append(0xF6)
    elif v is True:
        buf.append(0xF5)
    elif v is False:
        buf.append(0xF4)
    elif isinstance(v, int):
        if v < -1 - _MAX_UINT or v > _MAX_UINT:
            raise CborError("cbor.range", f"integer {v} is outside -2**64..2**64-1")
        if v < 0:
            _head(buf, 0x20, -1 - v)
        else:
            _head(buf, 0x00, v)
    elif isinstance(v, str):
        if len(v) > MAX_LENGTH:  # characters <= UTF-8 bytes: refuse before encoding
            raise CborError(
                "cbor.length", f"text of {len(v)} chars exceeds MAX_LENGTH={MAX_LENGTH}"
            )
        try:
            b = v.encode("utf-8")
        except UnicodeError:  # CPython: a lone surrogate
            raise CborError("cbor.utf8", "text holds a lone surrogate") from None
        # MicroPython keeps str as raw bytes, which may hold surrogates: refuse like CPython.
        if b and max(b) >= 0x80 and not _utf8_valid(b, 0, len(b)):
            raise CborError("cbor.utf8", "text is not valid UTF-8 (RFC 3629)")
        _string(buf, 0x60, b)
    elif isinstance(v, (bytes, bytearray)):
        _string(buf, 0x40, v)
    elif isinstance(v, memoryview):
        _string(buf, 0x40, v if getattr(v, "itemsize", 1) == 1 else bytes(v))
    elif isinstance(v, (list, tuple, dict)):
        is_map = isinstance(v, dict)
        if depth < 1:
            raise CborError(
                "cbor.depth",
                f"a {_type_name(v)} nests deeper than max_depth (default MAX_DEPTH={MAX_DEPTH})",
            )
        n = len(v)
        if n > MAX_ITEMS:
            what = f"map of {n} pairs" if is_map else f"array of {n} items"
            raise CborError("cbor.items", f"{what} exceeds MAX_ITEMS={MAX_ITEMS}")
        depth -= 1
        if is_map:
            _head(buf, 0xA0, n)
            for k in v:
                if k is True or k is False or not isinstance(k, (int, str, bytes)):
                    raise CborError("cbor.keytype", f"map key is a {_type_name(k)}")
                _encode(buf, k, depth)
                _encode(buf, v[k], depth)
        else:
            _head(buf, 0x80, n)
            for x in v:
                if type(x) is int and 0 <= x < 24:  # small unsigned integer: skip the call
                    buf.append(x)
                else:
                    _encode(buf, x, depth)
    elif isinstance(v, float):
        buf.append(0xFB)
        buf.extend(struct.pack(">d", v))
    else:
        raise CborError("cbor.type", f"cannot encode a {_type_name(v)}")
