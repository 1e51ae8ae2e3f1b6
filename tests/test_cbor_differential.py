"""protocol.cbor against cbor2 (CPython only): round trips both ways, byte equality, refusals.

Differences from cbor2 6.3 that are by design (each one pinned by a test below):
- NaN and +/-Infinity: cbor2 writes them as float16 (f97e00, f97c00, f9fc00), which the
  profile refuses ("cbor.float16"); we write float64. Every finite float is float64 in both, so
  for values without NaN/Infinity the bytes are identical.
- memoryview: cbor2 writes an array of integers; we write a byte string.
- Integers outside -2**64..2**64-1: cbor2 writes bignum tags 2/3; we refuse ("cbor.range").
- Decoding: cbor2 ignores bytes after the first item, accepts duplicate map keys (last wins),
  tags, indefinite lengths, float16 and undefined; we refuse each with its code.
"""

import math
import struct
import tracemalloc

import cbor2
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from protocol import cbor
from protocol.errors import CborError
from tests.fuzzing import fuzz_examples

MAX_DEPTH = cbor.MAX_DEPTH
MAX_ITEMS = cbor.MAX_ITEMS
MAX_LENGTH = cbor.MAX_LENGTH

# ----------------------------------------------------------------------------- strategies

ints = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.integers(min_value=-30, max_value=30),
    # each side of every width boundary of the argument
    st.sampled_from(
        [m * (n + d) for n in (24, 256, 2**16, 2**32) for d in (-1, 0) for m in (1, -1)]
        + [-25, -257, -(2**16) - 1, -(2**32) - 1, 2**64 - 1, -(2**64)]
    ),
)
# Up to 256 characters is at most 1024 UTF-8 bytes; hypothesis never generates surrogates.
texts = st.text(max_size=MAX_LENGTH // 4) | st.text(
    st.characters(max_codepoint=0x7F), min_size=MAX_LENGTH - 8, max_size=MAX_LENGTH
)
blobs = st.binary(max_size=MAX_LENGTH) | st.binary(min_size=MAX_LENGTH - 4, max_size=MAX_LENGTH)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
keys = ints | st.text(max_size=8) | st.binary(max_size=8)


def _nested(leaf, depth=MAX_DEPTH, size=4):
    """Values nesting at most `depth` containers; lists sometimes as tuples."""
    strategy = leaf
    for _ in range(depth):
        strategy = st.one_of(
            leaf,
            st.lists(strategy, max_size=size),
            st.lists(strategy, max_size=size).map(tuple),
            st.dictionaries(keys, strategy, max_size=size),
        )
    return strategy


scalars = st.one_of(st.none(), st.booleans(), ints, texts, blobs)
values_no_float = _nested(scalars)
values = _nested(scalars | finite_floats)
# Smaller values (short strings, 3 per container) where a test does O(len**2) work.
small_scalars = st.one_of(
    st.none(), st.booleans(), ints, finite_floats, st.text(max_size=20), st.binary(max_size=20)
)
small_values = _nested(small_scalars, size=3)
big_containers = st.one_of(
    st.lists(ints, min_size=MAX_ITEMS - 3, max_size=MAX_ITEMS),
    st.dictionaries(ints, st.none(), min_size=MAX_ITEMS - 3, max_size=MAX_ITEMS),
)


def deep(levels, leaf=0):
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def plain(v):
    """What decoding gives back for v: tuples become lists, bytearrays bytes."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def same(a, b):
    """Deep equality that also tells bool from int, float from int, -0.0 from 0.0, NaN = NaN."""
    return repr(a) == repr(b)


def code_of(data, **kw):
    """The CborError code decode raises for data; fails the test on any other exception."""
    try:
        cbor.decode(data, **kw)
    except CborError as e:
        assert e.code.startswith("cbor.") and e.detail, e
        return e.code
    return None


# ----------------------------------------------------------------------------- round trips


@given(values)
def test_cbor2_reads_what_we_write(v):
    assert same(cbor2.loads(cbor.encode(v)), plain(v))


@given(values)
def test_we_read_what_cbor2_writes(v):
    assert same(cbor.decode(cbor2.dumps(v)), plain(v))


@given(values)
def test_bytes_equal_cbor2(v):
    # Holds for finite floats too: cbor2 (non-canonical) writes every finite float as float64.
    assert cbor.encode(v) == cbor2.dumps(v)


@given(values_no_float)
def test_bytes_equal_cbor2_without_floats(v):
    enc = cbor.encode(v)
    assert enc == cbor2.dumps(v)
    assert same(cbor.decode(enc), plain(v))


@settings(max_examples=50)  # each example draws ~256 integers; 50 cover the boundary well
@given(big_containers)
def test_containers_at_the_items_limit(v):
    enc = cbor.encode(v)
    assert enc == cbor2.dumps(v)
    assert cbor.decode(enc) == v


@given(st.integers(0, 2**64 - 1), st.sampled_from([24, 25, 26, 27]), st.booleans())
def test_non_shortest_integers_are_accepted(n, ai, negative):
    width = 1 << (ai - 24)
    assume(n < 256**width)
    data = bytes([(0x20 if negative else 0) | ai]) + n.to_bytes(width, "big")
    assert cbor.decode(data) == cbor2.loads(data) == (-1 - n if negative else n)


@given(blobs, st.sampled_from([24, 25, 26, 27]), st.booleans())
def test_non_shortest_lengths_are_accepted(b, ai, text):
    if text:
        b = b.decode("latin-1").encode("utf-8")[:MAX_LENGTH]
        assume(_valid_utf8(b))
    width = 1 << (ai - 24)
    assume(len(b) < 256**width)
    data = bytes([(0x60 if text else 0x40) | ai]) + len(b).to_bytes(width, "big") + b
    assert same(cbor.decode(data), cbor2.loads(data))


def _valid_utf8(b):
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ----------------------------------------------------------------------------- floats


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_nonfinite_floats(x):
    ours = cbor.encode(x)
    assert ours == b"\xfb" + struct.pack(">d", x)  # float64, unlike cbor2
    back = cbor2.loads(ours)
    assert same(back, x)
    # cbor2 writes NaN/Infinity as float16, which the profile refuses ...
    theirs = cbor2.dumps(x)
    assert theirs[0] == 0xF9 and len(theirs) == 3
    assert code_of(theirs) == "cbor.float16"
    # ... but its float64 and float32 forms decode the same in both.
    for data in (ours, b"\xfa" + struct.pack(">f", x)):
        assert same(cbor.decode(data), cbor2.loads(data))
        assert same(cbor.decode(data), x)


@given(st.floats(width=32))
def test_float32_decodes_like_cbor2(x):
    data = b"\xfa" + struct.pack(">f", x)
    assert same(cbor.decode(data), cbor2.loads(data))


@given(st.floats(width=16, allow_nan=False))
def test_cbor2_canonical_float16_is_refused(x):
    data = cbor2.dumps(x, canonical=True)  # shortest form: float16 for these
    assert data[0] == 0xF9
    assert code_of(data) == "cbor.float16"
    assert code_of(cbor2.dumps([1, {"a": x}], canonical=True)) == "cbor.float16"


# ----------------------------------------------------------------------------- known differences


def test_memoryview_differs_from_cbor2():
    assert cbor.encode(memoryview(b"ab")) == b"\x42ab"
    assert cbor2.dumps(memoryview(b"ab")) == b"\x82\x18\x61\x18\x62"  # an array of ints


@given(st.integers(min_value=2**64) | st.integers(max_value=-(2**64) - 1))
def test_bignums_are_out_of_range(n):
    data = cbor2.dumps(n)
    assert data[0] in (0xC2, 0xC3)  # cbor2: bignum tag
    with pytest.raises(CborError) as e:
        cbor.encode(n)
    assert e.value.code == "cbor.range"
    assert code_of(data) == "cbor.tag"


@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(v, extra):
    data = cbor.encode(v) + extra
    assert same(cbor2.loads(data), plain(v))  # cbor2 ignores them
    assert code_of(data) == "cbor.trailing"
    value, end = cbor.decode_from(data, 0)
    assert end == len(data) - len(extra) and same(value, plain(v))


@given(st.lists(keys, min_size=1, max_size=6), st.data())
def test_duplicate_keys_are_refused(ks, data):
    k = data.draw(st.sampled_from(ks))
    body = b"".join(cbor.encode(x) + b"\xf6" for x in [*ks, k])
    enc = bytes([0xB8, len(ks) + 1]) + body
    assert isinstance(cbor2.loads(enc), dict)  # cbor2 keeps the last value
    assert code_of(enc) == "cbor.dupkey"


# ----------------------------------------------------------------------------- refusals

tag_numbers = st.integers(0, 2**64 - 1)


@given(tag_numbers, values, st.integers(0, 3))
def test_tags_are_refused(tag, v, depth):
    data = cbor2.dumps(deep(depth, cbor2.CBORTag(tag, v)))
    assert code_of(data) == "cbor.tag"


@given(
    st.sampled_from([cbor2.undefined, *map(cbor2.CBORSimpleValue, [*range(20), *range(32, 256)])])
)
def test_simple_values_are_refused(s):
    assert code_of(cbor2.dumps(s)) == "cbor.simple"
    assert code_of(cbor2.dumps([None, True, False, s])) == "cbor.simple"


@given(values)
def test_indefinite_containers_are_refused(v):
    data = cbor2.dumps(v, indefinite_containers=True)
    if isinstance(v, (list, tuple, dict)):
        assert code_of(data) == "cbor.indefinite"
    else:
        assert same(cbor.decode(data), plain(v))


@given(st.lists(st.binary(max_size=30), max_size=3), st.booleans())
def test_indefinite_strings_are_refused(chunks, text):
    if text:
        chunks = [c.decode("latin-1").encode() for c in chunks]
    data = b"".join(cbor.encode(c.decode() if text else c) for c in chunks)
    data = bytes([0x7F if text else 0x5F]) + data + b"\xff"
    joined = b"".join(chunks)
    assert cbor2.loads(data) == (joined.decode() if text else joined)
    assert code_of(data) == "cbor.indefinite"


@given(st.integers(1, 40), scalars)
def test_nesting_over_the_limit_is_refused(extra, leaf):
    for wrap in (lambda x: [x], lambda x: {"k": x}):
        v = leaf
        for _ in range(MAX_DEPTH + extra):
            v = wrap(v)
        data = cbor2.dumps(v)
        assert code_of(data) == "cbor.depth"
        with pytest.raises(CborError) as e:
            cbor.encode(v)
        assert e.value.code == "cbor.depth"
        assert code_of(data, max_depth=MAX_DEPTH + extra) is None


@given(st.integers(MAX_LENGTH + 1, 4 * MAX_LENGTH), st.booleans())
def test_strings_over_the_limit_are_refused(n, text):
    v = "x" * n if text else b"x" * n
    assert code_of(cbor2.dumps(v)) == "cbor.length"
    with pytest.raises(CborError) as e:
        cbor.encode(v)
    assert e.value.code == "cbor.length"


@given(st.integers(MAX_ITEMS + 1, 4 * MAX_ITEMS), st.booleans())
def test_containers_over_the_limit_are_refused(n, is_map):
    v = dict.fromkeys(range(n)) if is_map else [0] * n
    assert code_of(cbor2.dumps(v)) == "cbor.items"
    with pytest.raises(CborError) as e:
        cbor.encode(v)
    assert e.value.code == "cbor.items"


@given(
    st.sampled_from(
        [
            ((1, 2), "cbor.keytype"),
            (1.5, "cbor.keytype"),
            (True, "cbor.keytype"),
            (False, "cbor.keytype"),
            (None, "cbor.keytype"),
            (cbor2.CBORTag(1, 0), "cbor.tag"),  # the key's own fault comes first
            (math.inf, "cbor.float16"),
        ]
    ),
    _nested(small_scalars, depth=MAX_DEPTH - 1, size=3),  # as a map value: one level more
)
def test_keys_outside_the_profile_are_refused(key_code, v):
    key, code = key_code
    assert code_of(cbor2.dumps({key: v})) == code
    assert code_of(cbor2.dumps({"a": v, key: v})) == code
    if code == "cbor.keytype":
        with pytest.raises(CborError) as e:
            cbor.encode({key: v})
        assert e.value.code == code


@given(small_values)
def test_every_proper_prefix_is_truncated(v):
    enc = cbor.encode(v)
    for k in range(len(enc)):
        assert code_of(enc[:k]) == "cbor.truncated", (k, enc.hex())
        with pytest.raises(CborError) as e:
            cbor.decode_from(enc[:k], 0)
        assert e.value.code == "cbor.truncated"


def test_huge_declared_lengths_cost_nothing():
    tracemalloc.start()
    try:
        for head in (b"\x5a", b"\x7a", b"\x9a", b"\xba", b"\x5b", b"\x7b", b"\x9b", b"\xbb"):
            data = head + b"\xff" * (4 if head[0] & 1 == 0 else 8)  # 4 GB or 2**64-1: absent
            tracemalloc.reset_peak()
            assert code_of(data) == "cbor.truncated"
            assert tracemalloc.get_traced_memory()[1] < 20_000  # bytes, for the error itself
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- UTF-8

# Byte strings biased towards almost-UTF-8: valid text, then bytes changed, cut or inserted.
almost_utf8 = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.text(max_size=6), st.integers(0, 30), st.integers(0, 255)).map(
        lambda t: _mutate(t[0].encode(), t[1], t[2])
    ),
)


def _mutate(b, pos, byte):
    pos %= len(b) + 1
    if byte % 3 == 0:
        return b[:pos] + bytes([byte]) + b[pos + 1 :]  # replace
    if byte % 3 == 1:
        return b[:pos]  # cut
    return b[:pos] + bytes([byte]) + b[pos:]  # insert


@given(almost_utf8)
@example(b"\xed\xa0\x80")
@example(b"\xf4\x90\x80\x80")
@example(b"\xc0\x80")
@example(b"\xf0\x9f\x98\x80")
def test_utf8_check_matches_cpython(b):
    valid = _valid_utf8(b)
    assert cbor._utf8_valid(b, 0, len(b)) == valid
    data = cbor2.dumps(b)
    data = bytes([data[0] + 0x20]) + data[1:]  # the same bytes as a text string
    if valid:
        assert cbor.decode(data) == cbor2.loads(data) == b.decode()
    else:
        assert code_of(data) == "cbor.utf8"
        with pytest.raises(cbor2.CBORDecodeError):
            cbor2.loads(data)


@given(st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3))
def test_encoding_lone_surrogates_is_refused(s):
    with pytest.raises(CborError) as e:
        cbor.encode(["x", s])
    assert e.value.code == "cbor.utf8"


# ----------------------------------------------------------------------------- fuzzing

valid_encodings = small_values.map(cbor.encode)


def _mutations(enc, ops):
    b = bytearray(enc)
    for kind, pos, byte in ops:
        pos %= len(b) + 1
        if kind == 0 and pos < len(b):
            b[pos] = byte
        elif kind == 1:
            b.insert(pos, byte)
        elif kind == 2 and pos < len(b):
            del b[pos]
        elif kind == 3 and pos < len(b):
            b[pos] ^= 1 << (byte % 8)
    return bytes(b)


mutation = st.tuples(st.integers(0, 3), st.integers(0, 2**16), st.integers(0, 255))
fuzz_inputs = st.one_of(
    st.binary(max_size=64),
    st.tuples(valid_encodings, st.lists(mutation, min_size=1, max_size=4)).map(
        lambda t: _mutations(*t)
    ),
)


@settings(max_examples=fuzz_examples(20_000))
@given(fuzz_inputs, st.integers(0, 70))
@example(b"", 0)
@example(b"\xff", 0)
@example(b"\x5a\xff\xff\xff\xff", 0)
def test_fuzz_random_and_mutated_bytes(data, offset):
    code = code_of(data)  # never anything but a CborError
    event(str(code))
    try:  # decode_from at any offset: an item within the input, or a CborError
        _, end = cbor.decode_from(data, offset)
        assert offset < end <= len(data)
    except CborError as e:
        assert e.code.startswith("cbor.")
    try:
        theirs = cbor2.loads(data)
        cbor2_failed = False
    except Exception:  # cbor2 raises assorted errors on garbage (CBORDecodeError, ValueError)
        theirs = None
        cbor2_failed = True
    if code is None:
        # Whatever we accept, cbor2 reads as the same value.
        assert not cbor2_failed and same(cbor.decode(data), theirs)
        assert cbor.encode(cbor.decode(data)) == cbor2.dumps(theirs) or _has_nonfinite(theirs)
    elif code == "cbor.trailing":
        value, end = cbor.decode_from(data, 0)
        assert 0 < end < len(data)
        assert not cbor2_failed and same(value, theirs)
    elif code == "cbor.truncated":
        assert cbor2_failed  # the input really ends inside an item


def _has_nonfinite(v):
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, list):
        return any(_has_nonfinite(x) for x in v)
    if isinstance(v, dict):
        return any(_has_nonfinite(x) for x in v.values())
    return False
