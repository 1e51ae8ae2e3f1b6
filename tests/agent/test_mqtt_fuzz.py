"""Hypothesis payloads on a live MQTT link: every one refused exactly once, nothing stored.

A real mosquitto, the real agent and a connected device (test_mqtt.Hall). Hypothesis draws
payloads for the device's own up and state topics: arbitrary bytes, and the device's real
packets truncated, extended or with one byte flipped (so the header parses and the MAC
is what refuses them), and exact replays. Each payload must be counted once among the
link's refusals; the ratings table must not change; the link must still work afterwards.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import messages as M
from tests.agent.helpers import wait_for
from tests.agent.test_mqtt import Hall
from tests.fuzzing import fuzz_examples


def test_fuzzed_payloads_are_refused_and_change_nothing(tmp_path: Path) -> None:
    hall = Hall(tmp_path)
    try:
        hall.start_agent()
        peer = hall.up()
        peer.press(level=5)
        peer.run_until(lambda: peer.acked == 1)
        link = hall.link("EV-0001")
        packets = list(peer.sent_packets)
        stored = hall.sql("SELECT device_id, seq, level FROM ratings")

        @st.composite
        def payloads(draw: st.DrawFn) -> bytes:
            kind = draw(st.sampled_from(["bytes", "flip", "cut", "extend", "replay"]))
            if kind == "bytes":
                return draw(st.binary(min_size=0, max_size=200))
            p = draw(st.sampled_from(packets))
            if kind == "flip":
                i = draw(st.integers(0, len(p) - 1))
                return p[:i] + bytes([p[i] ^ draw(st.integers(1, 255))]) + p[i + 1 :]
            if kind == "cut":
                return p[: draw(st.integers(0, len(p) - 1))]
            if kind == "extend":
                return p + draw(st.binary(min_size=1, max_size=20))
            return p

        @settings(
            max_examples=fuzz_examples(300),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(payload=payloads(), state=st.booleans())
        def check(payload: bytes, state: bool) -> None:
            before = sum(link.refused.values())
            peer.publish_raw(peer.state_topic if state else peer.up_topic, payload)
            wait_for(lambda: sum(link.refused.values()) > before, timeout=10, step=0.002)
            assert sum(link.refused.values()) == before + 1, dict(link.refused)

        check()
        assert hall.sql("SELECT device_id, seq, level FROM ratings") == stored
        assert link.snapshot()["presence"]["online"] is True  # no bad state was applied
        peer.press(level=4)
        peer.run_until(lambda: peer.acked == 2)  # the link still works
        assert peer.last(M.CONFIG) is not None
    finally:
        hall.close()
