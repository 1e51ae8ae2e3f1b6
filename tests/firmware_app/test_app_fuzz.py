"""Bad input into a running device app: random control-channel lines and random bytes on
its serial link. Each gets a clear refusal (or is dropped and counted), the device keeps
running, and nothing changes: no rating is recorded, the link stays usable."""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import messages as M
from tests.firmware_app.conftest import Rig
from tests.firmware_app.device import config_msg
from tests.fuzzing import fuzz_examples


@pytest.fixture(scope="module")
def live(fw_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(fw_build, tmp_path_factory.mktemp("fuzz"))
    rig.up()
    rig.agent.send(config_msg())
    rig.until(lambda: rig.state()["config_version"] == 7)
    yield rig
    rig.close()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)
BAD_REQUEST = st.one_of(
    # a request object with a wrong cmd or wrong fields
    st.fixed_dictionaries(
        {"cmd": st.sampled_from(["press", "release", "click", "stall", "bogus", ""])},
        optional={"button": JSONISH, "ms": JSONISH},
    ).filter(
        lambda d: (
            not (
                d["cmd"] in ("press", "release", "click")
                and isinstance(d.get("button"), int)
                and 0 <= d["button"] < 5
                and (d["cmd"] != "click" or "ms" not in d)
            )
            and not (d["cmd"] == "stall" and isinstance(d.get("ms"), int))
        )
    ),
    JSONISH.filter(lambda v: not isinstance(v, dict)),
)


@settings(
    max_examples=fuzz_examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(BAD_REQUEST)
def test_bad_control_requests_are_refused_and_change_nothing(live: Rig, req: object) -> None:
    before = live.state()
    live.ctl.sock.sendall(json.dumps(req).encode() + b"\n")
    answer = json.loads(live.ctl.rfile.readline())
    assert answer["ok"] is False and answer["error"]
    after = live.state()
    assert (after["next_seq"], after["presses"], after["ui"]) == (
        before["next_seq"], before["presses"], before["ui"]
    )  # fmt: skip
    assert live.device.alive()


@settings(max_examples=fuzz_examples(100), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=1, max_size=600))
def test_garbage_on_the_serial_link_is_dropped(live: Rig, junk: bytes) -> None:
    os.write(live.pty.master, junk + b"\x00")
    live.agent.run_until(lambda: True)
    assert live.device.alive()
    assert live.state()["next_seq"] == 1


def test_the_link_still_works_after_the_fuzz(live: Rig) -> None:
    before = len(live.agent.ratings)
    live.ctl("click", button=0)
    live.until(lambda: len(live.agent.ratings) == before + 1, 20)
    assert live.agent.last(M.STATUS) is not None


def test_non_json_lines_are_refused(live: Rig) -> None:
    for line in (b"not json", b"{", b"[1,2]", ("x" * 600).encode(), string.printable.encode()):
        live.ctl.sock.sendall(line + b"\n")
        answer = json.loads(live.ctl.rfile.readline())
        assert answer["ok"] is False, line
    assert live.device.alive()
