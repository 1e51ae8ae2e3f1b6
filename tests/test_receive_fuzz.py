"""Fuzz the whole receive path: bytes -> FrameDecoder -> LinkSession (tag, replay, catalogue).

Properties, over random bytes and over valid device streams mutated in flight:
- nothing raises: bad input becomes counters and Refused events;
- the agent never delivers a message the device did not sign (a CRC-16 collision may
  let a damaged frame through framing; the 64-bit tag must stop it);
- memory stays bounded: the decoder never holds more than MAX_ENCODED bytes.
"""

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.framing import MAX_ENCODED, FrameDecoder, encode_frame
from protocol.messages import HELLO, RATING, Message
from protocol.session import AGENT, DEVICE, LinkSession
from tests.fuzzing import fuzz_examples

sys.path.insert(0, str(Path(__file__).resolve().parent / "portable"))
from examples import examples

KEY = bytes(range(32))
STATUS_MSG = dict(examples())["status"]


def device_stream(n_ratings: int) -> tuple[bytes, list[Message]]:
    """The frames a device sends: HELLO, some ratings, a STATUS; and the messages signed."""
    device = LinkSession(DEVICE, KEY, 7)
    hello = Message(
        HELLO,
        device_id="EV-1",
        kind=1,
        board="b",
        firmware="f",
        mode=0,
        config_version=0,
        outbox_depth=n_ratings,
        oldest=1,
        next=n_ratings + 1,
        ticks=0,
    )
    device.connect(0, lambda: hello)
    device.state = "open"  # skip the agent's answer: only the device's bytes matter here
    sent = [hello]
    for seq in range(1, n_ratings + 1):
        m = Message(
            RATING,
            seq=seq,
            invite=seq,
            level=1 + seq % 5,
            reasons=[],
            time=None,
            ticks=seq,
            boot=7,
            flags=0,
        )
        device.send(m, 0)
        sent.append(m)
    device.send(STATUS_MSG, 0)
    sent.append(STATUS_MSG)
    return b"".join(encode_frame(p) for p in device.packets_to_send()), sent


STREAM, SENT = device_stream(6)


def agent_receives(data: bytes, cuts: list[int]) -> tuple[LinkSession, list[Message]]:
    agent = LinkSession(AGENT, KEY, 1, device_id="EV-1", clock_ms=lambda: 0)
    agent.accept_hellos(0)
    decoder = FrameDecoder()
    delivered = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        decoder.feed(data[start:cut])
        start = cut
        while (packet := decoder.next_packet()) is not None:
            assert decoder.buffered() <= MAX_ENCODED
            agent.receive(packet, 0)
            while (e := agent.next_event()) is not None:
                if isinstance(e, Message):
                    delivered.append(e)
                    if e.type == RATING:
                        agent.acknowledge(e.seq)
        assert decoder.buffered() <= MAX_ENCODED
    return agent, delivered


def test_clean_stream_delivers_everything() -> None:
    agent, delivered = agent_receives(STREAM, [])
    assert [m.name for m in delivered] == ["rating"] * 6 + ["status"]
    assert agent.rx_acked == 6


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("dup"), st.integers(0, 10**6), st.integers(1, 40)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    buf = bytearray(data)
    for op, at, arg in ops:
        at %= len(buf) + 1
        if op == "flip" and at < len(buf):
            buf[at] ^= 1 << arg
        elif op == "insert":
            buf[at:at] = arg
        elif op == "delete":
            del buf[at : at + arg]
        elif op == "dup":
            buf[at:at] = buf[at : at + arg]
        if not buf:
            buf = bytearray(b"\x00")
    return bytes(buf)


@settings(max_examples=fuzz_examples(10_000))
@given(st.lists(mutation, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=4))
def test_mutated_streams_never_deliver_unsigned_messages(ops: list[tuple], cuts: list[int]) -> None:
    _agent, delivered = agent_receives(mutate(STREAM, ops), cuts)
    for m in delivered:
        assert m in SENT, m
    seqs = [m.seq for m in delivered if m.type == RATING]
    assert seqs == sorted(set(seqs)), "each rating is delivered once, in order"


@settings(max_examples=fuzz_examples(5_000))
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10**6), max_size=4))
def test_random_bytes_deliver_nothing(data: bytes, cuts: list[int]) -> None:
    _agent, delivered = agent_receives(data, cuts)
    assert delivered == []
