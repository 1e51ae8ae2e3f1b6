"""``hcp sim devices``' control API against real firmware devices and the real agent: every
fault knob does what it says (tests/simulator/simrack.py sets the hall up once)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from simulator.bridge import Cable
from simulator.vdevice import free_port
from tests.fuzzing import fuzz_examples
from tests.simulator.simrack import HALL_ID, HCP, SimHall

A, B = "EV-S001", "EV-S002"


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHall]:
    h = SimHall(tmp_path_factory.mktemp("simhall"))
    try:
        yield h.start()
    finally:
        h.stop()


def test_press_reaches_the_agent_and_the_face_is_a_png(hall: SimHall) -> None:
    n = len(hall.ratings(A))
    hall.press(A, 2)
    rows = hall.wait_ratings(A, n + 1)
    assert rows[-1]["level"] == 2 and rows[-1]["window_id"] == "W01"
    r = hall.http.get(f"/api/devices/{A}/display.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (256, 128)  # the SSD1306's 128x64, twice
    assert len(img.convert("RGB").getcolors() or []) == 2  # ink and paper: not a blank


def test_cable_pull_and_power_cut_keep_the_outbox(hall: SimHall) -> None:
    n = len(hall.ratings(A))
    assert hall.post(A, "cable", {"plugged": False}).json()["cable"]["plugged"] is False
    hall.wait_state(A, lambda s: not s["online"], 15)  # three silent heartbeats
    hall.press(A, 3)
    held = hall.wait_state(A, lambda s: s["outbox_depth"] >= 1)
    boot, seq = held["boot"], held["next_seq"]
    assert len(hall.ratings(A)) == n  # nothing crossed the pulled cable

    off = hall.post(A, "power", {"on": False}).json()
    assert off["powered"] is False and off["state"] is None and off["power_cuts"] >= 1
    assert hall.http.get(f"/api/devices/{A}/display.png").status_code == 409
    assert hall.post(A, "power", {"on": True}).json()["powered"] is True
    s = hall.wait_state(A, lambda s: s["boot"] == boot + 1, 30)
    # On flash through the cut (the ack mark of an earlier rating may be older: it is sent
    # again and the agent keeps it once).
    assert s["outbox_depth"] >= 1 and s["next_seq"] == seq and not s["online"]

    hall.post(A, "cable", {"plugged": True})
    hall.wait_state(A, lambda s: s["online"] and s["outbox_depth"] == 0, 30)
    rows = hall.wait_ratings(A, n + 1)
    assert [r["level"] for r in rows[n:]] == [3]


def test_line_noise_frames_refused_no_wrong_rating(hall: SimHall) -> None:
    n = len(hall.ratings(B))
    before = sum(hall.refused(B).values())
    # ~1 frame in 4 hit (frames are tens of bytes): the CRC refuses them, the session resends.
    r = hall.post(B, "faults", {"corrupt": 0.005, "drop": 0.002})
    assert r.status_code == 200 and r.json()["faults"]["corrupt"] == 0.005
    levels: list[int] = []
    try:
        # Press until the agent has refused a frame (a handful of presses, nearly always).
        while sum(hall.refused(B).values()) == before:
            assert len(levels) < 30, (hall.refused(B), hall.state(B)["cable"])
            levels.append(1 + len(levels) % 3)
            hall.press(B, levels[-1])
            time.sleep(0.3)
        hall.wait_state(B, lambda s: s["outbox_depth"] == 0, 60)
        cable = hall.state(B)["cable"]
        assert cable["up"]["corrupted"] + cable["up"]["dropped"] > 0
    finally:
        hall.post(B, "faults", {"corrupt": 0.0, "drop": 0.0})
    rows = hall.wait_ratings(B, n + len(levels))
    assert [r["level"] for r in rows[n:]] == levels  # each once, none altered
    assert len({r["seq"] for r in rows}) == len(rows)


def test_delay_holds_every_byte_back(hall: SimHall) -> None:
    """1 s each way: a press reaches the agent's store no sooner than 1 s after the click
    (unhindered it takes a fraction of that)."""
    n = len(hall.ratings(B))
    hall.post(B, "faults", {"delay_ms": 1000})
    try:
        t0 = time.monotonic()
        hall.post(B, "press", {"button": 1, "ms": 80})
        row = hall.wait_ratings(B, n + 1)[-1]
        took = time.monotonic() - t0
        hall.wait_state(B, lambda s: s["outbox_depth"] == 0, 30)
    finally:
        hall.post(B, "faults", {"delay_ms": 0})
    assert row["level"] == 2
    assert took >= 1.0, took


def test_baud_emulation_paces_a_real_device_link(hall: SimHall) -> None:
    """At 1200 baud the device's frames cross at ~120 B/s, measured on the cable's clock,
    and the press still reaches the agent."""
    n = len(hall.ratings(B))
    before = hall.state(B)["cable"]["up"]
    hall.post(B, "faults", {"baud": 1200})
    try:
        hall.press(B, 1)
        hall.press(B, 2)
        hall.wait_ratings(B, n + 2, 30)
        up = hall.state(B)["cable"]["up"]
    finally:
        hall.post(B, "faults", {"baud": 0})
    sent = up["paced_bytes"] - before["paced_bytes"]
    rate = sent / ((up["paced_us"] - before["paced_us"]) / 1e6)
    assert sent > 50 and 0.8 * 120 < rate < 1.1 * 120, (sent, rate)
    assert [r["level"] for r in hall.ratings(B)[n:]] == [1, 2]


def test_baud_throughput_near_the_setting(tmp_path: Path) -> None:
    """Bytes through a paced cable (real ptys at both ends) arrive at baud/10 per second."""

    async def run() -> float:
        cable = Cable(tmp_path / "a.tty")
        cable.start()
        cable.set_faults(baud=9600)
        agent = os.open(cable.agent_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        dev = os.open(cable.dev_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            payload = bytes(range(256)) * 8  # 2048 B: 2.13 s at 960 B/s
            got = bytearray()
            t0 = time.monotonic()
            os.write(dev, payload)
            while len(got) < len(payload) and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.005)
                with contextlib.suppress(BlockingIOError):
                    got += os.read(agent, 65536)
            assert bytes(got) == payload
            return len(got) / (time.monotonic() - t0)
        finally:
            os.close(agent)
            os.close(dev)
            await cable.stop()
            cable.close()

    rate = asyncio.run(run())
    assert 0.8 * 960 < rate < 1.1 * 960, rate  # a loaded machine is only ever slower


def test_bad_requests_are_refused_and_change_nothing(hall: SimHall) -> None:
    before = hall.state(B)["cable"]["faults"]
    bad: list[tuple[str, dict[str, Any]]] = [
        ("press", {"button": 5}),
        ("press", {"button": "1"}),
        ("press", {"button": 0, "ms": 0}),
        ("faults", {"corrupt": 1.5}),
        ("faults", {"baud": -1}),
        ("faults", {"noise": 0.1}),
        ("power", {"on": "yes"}),
        ("cable", {}),
        ("clock", {"skew_ms": -5}),
    ]
    for what, body in bad:
        r = hall.post(B, what, body)
        assert r.status_code == 422, (what, body, r.text)
    r = hall.post(B, "faults", {"baud": 12})
    assert r.status_code == 400 and "baud" in r.json()["error"]["en"]
    assert hall.state(B)["cable"]["faults"] == before
    r = hall.post("EV-NOPE", "press", {"button": 0})
    assert r.status_code == 404 and r.json()["error"]["zh"] == "没有设备 EV-NOPE"
    assert hall.http.get("/api/devices/..%2Fx").status_code in (404, 422)


def test_technician_ui_click_reaches_the_agent(hall: SimHall) -> None:
    """The web page in headless Chromium: a device's face, its buttons; a click is a rating
    in the agent's store."""
    from playwright.sync_api import expect, sync_playwright

    n = len(hall.ratings(A))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            page.goto(hall.api + "/")
            card = page.locator(f'[data-device="{A}"]')
            expect(card.locator(".up")).to_contain_text("在线", timeout=20_000)
            face = card.locator(".face img")
            expect(face).to_be_visible()
            page.wait_for_function(
                "(img) => img.complete && img.naturalWidth === 256", arg=face.element_handle()
            )
            expect(card.locator(".outbox")).to_have_text("0")
            button = card.locator('.buttons button[data-button="2"]')
            expect(button).to_have_text("3 基本满意")
            button.click()
            rows = hall.wait_ratings(A, n + 1)
            assert rows[-1]["level"] == 3
            page.locator("#lang").click()
            expect(button).to_have_text("3 Fair")
            expect(page.locator("h1")).to_have_text("Virtual devices")
        finally:
            browser.close()


def test_cli_sim_devices_manifest_and_api(hall: SimHall, tmp_path: Path) -> None:
    port = free_port()
    args = ["--dir", str(tmp_path), "--count", "2", "--listen", f"127.0.0.1:{port}"]
    args += ["--agent", hall.agent_url]  # the hall id comes from there
    proc = subprocess.Popen(
        [str(HCP), "sim", "devices", *args, "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HCP_LANG": "zh-CN"},
    )
    try:
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/devices", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < end
                time.sleep(0.2)
        assert [d["device_id"] for d in r.json()] == ["EV-S001", "EV-S002"]
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert manifest["api"] == f"http://127.0.0.1:{port}"
        assert manifest["hall_id"] == HALL_ID
        for d in manifest["devices"]:
            assert Path(d["tty"]).is_symlink() and Path(d["key_file"]).exists()
            assert os.path.realpath(d["tty"]).startswith("/dev/pts/")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "虚拟设备" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "2 台虚拟设备已启动" in out and "EV-S002" in out
    assert not list(tmp_path.glob("*.tty"))  # the cables are gone with the devices


def test_cli_sim_devices_without_keys_says_why(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(HCP), "--lang", "en", "sim", "devices", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "no *.key device key files" in r.stderr and "--count" in r.stderr


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = ["button", "ms", "on", "plugged", "drop", "corrupt", "delay_ms", "baud", "skew_ms"]


@settings(
    max_examples=fuzz_examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    what=st.sampled_from(["press", "power", "cable", "faults", "clock"]),
    body=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), JSON, max_size=3) | JSON,
)
def test_fuzzed_requests_answer_cleanly_and_refusals_change_nothing(
    hall: SimHall, what: str, body: Any
) -> None:
    before = hall.state(B)
    r = hall.post(B, what, body)
    assert r.status_code in (200, 400, 409, 422), (what, body, r.status_code, r.text)
    if r.status_code != 200:
        out = r.json()
        assert "error" in out or "detail" in out
        after = hall.state(B)
        for k in ("powered", "power_cuts", "clock_skew_ms"):
            assert after[k] == before[k], (what, body, k)
        assert after["cable"]["faults"] == before["cable"]["faults"]
        assert after["cable"]["plugged"] == before["cable"]["plugged"]
    # Whatever a valid request did, the next example starts from a working device.
    if not hall.state(B)["powered"]:
        hall.post(B, "power", {"on": True})
        hall.wait_state(B, lambda s: s["online"], 30)
    hall.post(B, "cable", {"plugged": True})
    hall.post(B, "faults", {"drop": 0.0, "corrupt": 0.0, "delay_ms": 0, "baud": 0})


def test_cli_sim_devices_port_taken_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--dir", str(tmp_path), "--count", "1", "--listen", f"127.0.0.1:{port}"]
        r = subprocess.run(
            [str(HCP), "sim", "devices", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HCP_LANG": "zh-CN"},
        )
    assert r.returncode == 1 and f"无法监听 127.0.0.1:{port}" in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.img")) and not list(tmp_path.glob("*.tty"))


def test_clock_skew_shifts_the_stamps_and_the_agent_corrects(hall: SimHall) -> None:
    """The device's clock jumps 10 minutes ahead: its ticks show it, the agent's press time
    does not (it places presses by the ticks since the latest HELLO, or by their arrival)."""
    n = len(hall.ratings(A))
    hall.press(A, 1)
    before = hall.wait_ratings(A, n + 1)[-1]
    skew = hall.state(A)["clock_skew_ms"]
    r = hall.post(A, "clock", {"skew_ms": 600_000})
    assert r.status_code == 200, r.text
    assert hall.state(A)["clock_skew_ms"] == skew + 600_000
    hall.wait_state(A, lambda s: s["online"], 30)
    hall.press(A, 2)
    after = hall.wait_ratings(A, n + 2)[-1]
    assert after["boot"] == before["boot"] and after["level"] == 2
    assert after["ticks"] - before["ticks"] >= 600_000  # the device's stamps moved
    assert abs(after["press_ms"] - after["received_ms"]) < 2_000  # the agent's did not
    assert after["press_ms"] - before["press_ms"] < 60_000
