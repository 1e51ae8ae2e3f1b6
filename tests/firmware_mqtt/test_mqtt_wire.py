"""firmware/net/mqtt_wire.py on CPython, under hypothesis: encoders, and the decoder of
everything a broker sends (round trips, truncation, refusals).

CONNECT and SUBSCRIBE, which only a client sends, are read back by an independent decoder
written here from the MQTT 3.1.1 standard (§3.1, §3.8).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.net import mqtt_wire as w
from firmware.net.mqtt_wire import MqttError

texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
names = texts.filter(lambda t: t and "+" not in t and "#" not in t and len(t.encode()) < 200)
pids = st.integers(1, 65535)


def split(data: bytes) -> tuple[int, bytes]:
    got = w.split(data)
    assert got is not None and got[2] == len(data)
    return got[0], got[1]


@given(st.integers(0, w.MAX_REMAINING))
def test_varint_round_trip_and_prefixes(n: int) -> None:
    b = w.varint(n)
    assert 1 <= len(b) <= 4
    assert w.read_varint(b + b"\x55") == (n, len(b))
    for cut in range(len(b)):
        assert w.read_varint(b[:cut]) is None  # incomplete, not wrong


def test_varint_limits() -> None:
    assert w.varint(127) == b"\x7f" and w.varint(128) == b"\x80\x01"
    assert w.varint(w.MAX_REMAINING) == b"\xff\xff\xff\x7f"
    with pytest.raises(MqttError, match=r"mqtt\.arg"):
        w.varint(w.MAX_REMAINING + 1)
    with pytest.raises(MqttError, match=r"mqtt\.protocol"):
        w.read_varint(b"\xff\xff\xff\xff\x01")


@given(texts.filter(lambda t: len(t.encode()) <= w.MAX_STR))
def test_string_round_trip_and_truncation(s: str) -> None:
    b = w.encode_str(s)
    assert w.decode_str(b, 0) == (s, len(b))
    for cut in range(len(b)):
        with pytest.raises(MqttError, match=r"mqtt\.protocol"):
            w.decode_str(b[:cut], 0)


def test_strings_refused() -> None:
    with pytest.raises(MqttError, match=r"mqtt\.protocol.*U\+0000"):
        w.decode_str(b"\x00\x03a\x00b", 0)
    with pytest.raises(MqttError, match="not UTF-8"):
        w.decode_str(b"\x00\x02\xc3\x28", 0)
    with pytest.raises(MqttError, match=r"mqtt\.arg"):
        w.encode_str("x" * 65536)


@given(names, st.binary(max_size=300), st.sampled_from([0, 1]), pids, st.booleans(), st.booleans())
def test_publish_round_trip(
    topic: str, payload: bytes, qos: int, pid: int, retain: bool, dup: bool
) -> None:
    dup = dup and qos == 1
    pkt = w.publish(topic, payload, qos, pid, retain, dup)
    got = w.decode(*split(pkt))
    assert got == ("publish", topic, payload, qos, pid if qos else 0, retain, dup)
    for cut in range(len(pkt)):  # a truncated packet is never taken for a whole one
        assert w.split(pkt[:cut]) is None


@given(pids)
def test_puback_round_trip(pid: int) -> None:
    assert w.decode(*split(w.puback(pid))) == ("puback", pid)


def test_publish_arguments_refused() -> None:
    for bad in (("a/+", 0), ("a/#", 0), ("", 0), ("a", 2)):
        with pytest.raises(MqttError, match=r"mqtt\.arg"):
            w.publish(bad[0], b"", bad[1], 1)
    with pytest.raises(MqttError, match=r"mqtt\.arg"):
        w.publish("a", b"", 0, 0, dup=True)
    with pytest.raises(MqttError, match=r"mqtt\.arg"):
        w.publish("a", b"", 1, 0)  # packet id 0


def _read_connect(body: bytes) -> dict[str, Any]:
    """CONNECT's variable header and payload (§3.1), independently of mqtt_wire."""
    pos = 0

    def field() -> bytes:
        nonlocal pos
        n = int.from_bytes(body[pos : pos + 2], "big")
        out = body[pos + 2 : pos + 2 + n]
        assert len(out) == n
        pos += 2 + n
        return out

    assert field() == b"MQTT" and body[pos] == 4
    flags, keepalive = body[pos + 1], int.from_bytes(body[pos + 2 : pos + 4], "big")
    assert not flags & 1  # reserved
    pos += 4
    out: dict[str, Any] = {"client_id": field().decode(), "keepalive": keepalive}
    out["clean"] = bool(flags & 2)
    if flags & 4:
        out["will"] = (field().decode(), field(), (flags >> 3) & 3, bool(flags & 0x20))
    else:
        assert not flags & 0x38  # §3.1.2.6: no will QoS/retain without a will
    if flags & 0x80:
        out["user"] = field().decode()
    if flags & 0x40:
        out["password"] = field().decode()
    assert pos == len(body)
    return out


@given(
    st.text(min_size=0, max_size=23),
    st.integers(0, 65535),
    st.booleans(),
    st.none() | names,
    st.none() | st.tuples(names, st.binary(max_size=64), st.sampled_from([0, 1]), st.booleans()),
)
def test_connect_encodes_every_field(
    cid: str,
    keepalive: int,
    clean: bool,
    user: str | None,
    will: tuple[str, bytes, int, bool] | None,
) -> None:
    password = None if user is None else "p" + user
    first, body = split(w.connect(cid, keepalive, clean, user, password, will))
    assert first == 0x10
    got = _read_connect(body)
    assert got.pop("client_id") == cid and got.pop("keepalive") == keepalive
    assert got.pop("clean") == clean and got.pop("will", None) == will
    assert got.pop("user", None) == user and got.pop("password", None) == password
    assert got == {}


def test_connect_arguments_refused() -> None:
    with pytest.raises(MqttError, match="needs a user name"):
        w.connect("c", 60, password="x")
    with pytest.raises(MqttError, match="keepalive"):
        w.connect("c", 65536)
    with pytest.raises(MqttError, match="wildcard"):
        w.connect("c", 60, will=("a/#", b"", 1, True))


@given(pids, st.lists(st.tuples(names | st.just("a/+/#"), st.sampled_from([0, 1])), min_size=1))
def test_subscribe_encodes_every_filter(pid: int, topics: list[tuple[str, int]]) -> None:
    first, body = split(w.subscribe(pid, topics))
    assert first == 0x82  # §3.8.1: flags 0b0010
    assert int.from_bytes(body[:2], "big") == pid
    pos, got = 2, []
    while pos < len(body):
        n = int.from_bytes(body[pos : pos + 2], "big")
        got.append((body[pos + 2 : pos + 2 + n].decode(), body[pos + 2 + n]))
        pos += 3 + n
    assert got == topics


def test_broker_packets_decode() -> None:
    assert w.decode(*split(b"\x20\x02\x01\x00")) == ("connack", True, 0)
    assert w.decode(*split(b"\x20\x02\x00\x05")) == ("connack", False, 5)
    assert w.decode(*split(b"\x90\x04\x00\x07\x01\x80")) == ("suback", 7, [1, 0x80])
    assert w.decode(*split(b"\xd0\x00")) == ("pingresp",)


@pytest.mark.parametrize(
    "data",
    [
        b"\x20\x02\x02\x00",  # CONNACK reserved flag bit
        b"\x20\x02\x00\x06",  # CONNACK return code 6
        b"\x22\x02\x00\x00",  # CONNACK fixed-header flags
        b"\x41\x02\x00\x01",  # PUBACK flags
        b"\x40\x02\x00\x00",  # PUBACK packet id 0
        b"\x40\x01\x00",  # PUBACK short
        b"\x90\x02\x00\x01",  # SUBACK without a code
        b"\x90\x03\x00\x01\x03",  # SUBACK code 3
        b"\xd0\x01\x00",  # PINGRESP with a body
        b"\x34\x05\x00\x01a\x00\x01",  # PUBLISH QoS 2
        b"\x38\x03\x00\x01a",  # PUBLISH DUP at QoS 0
        b"\x30\x03\x00\x01+",  # PUBLISH to a filter
        b"\x30\x02\x00\x00",  # PUBLISH empty topic
        b"\x10\x00",  # CONNECT: a client's packet
        b"\x82\x00",  # SUBSCRIBE
        b"\xc0\x00",  # PINGREQ
        b"\xe0\x00",  # DISCONNECT
        b"\xb0\x02\x00\x01",  # UNSUBACK (never unsubscribes)
        b"\x50\x02\x00\x01",  # PUBREC (QoS 2 is not used)
        b"\xf0\x00",  # reserved type 15
        b"\x00\x00",  # reserved type 0
    ],
)
def test_malformed_broker_packets_refused(data: bytes) -> None:
    with pytest.raises(MqttError) as e:
        w.decode(*split(data))
    assert e.value.code == "mqtt.protocol" and e.value.detail


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_refuse_cleanly(data: bytes) -> None:
    try:
        got = w.split(data, limit=32)
        if got is not None:
            w.decode(got[0], got[1])
    except MqttError as e:
        assert e.code in ("mqtt.protocol", "mqtt.oversize")


def test_split_refuses_oversize_before_reading() -> None:
    with pytest.raises(MqttError, match=r"mqtt\.oversize"):
        w.split(b"\x30\x81\x01", limit=128)  # 129 announced; nothing else needed to refuse
    assert w.split(b"\x30\x80\x01", limit=128) is None  # 128 allowed, not yet all there


@given(st.integers(0, 40), st.integers(0, 65535))
def test_backoff_is_exponential_jittered_and_capped(failures: int, r16: int) -> None:
    d = w.backoff_ms(failures, 500, 60000, r16)
    if failures == 0:
        assert d == 0
        return
    full = min(500 << min(failures - 1, 16), 60000)
    assert full // 2 <= d <= full
    assert w.backoff_ms(failures, 500, 60000, 0) == full // 2
