"""End to end, under faults: real firmware + real agent + real hub + real mosquitto.

The hall of ``hcp demo`` (tools.demo.Hall: ``hcp hub serve`` on SQLite, ``hcp agent run``
with hub sync, real-firmware evaluators half on serial cables, half on MQTT), with a real
mosquitto on a free port whose password and ACL files the agent's registry wrote. Each
window runs a rating storm: the case system opens and finishes a case, the citizen waits
for the invite on the screen and presses a level; between presses the device may lose power.
Meanwhile a fault schedule pulls a cable, puts noise on a line, kills the agent with SIGKILL
and restarts it, takes the hub down for a while, and restarts the broker.

Afterwards the hub holds exactly the ratings the devices thanked citizens for (none lost,
none duplicated, none extra), each with its level, window, staff and case, and every 差评
has a work order. The accounting is printed.

Presses are made only between power cuts (a cut while the device writes a press would make
a rating nobody saw thanked: the accounting could not say what the hub must hold).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol import messages as M
from tests.conftest import PROFILE
from tools.demo import Hall, device_specs, hub_account

# (devices, storm seconds): CI stays well under three minutes on two loaded cores.
SIZE = {"dev": (6, 30.0), "ci": (6, 30.0), "long": (12, 180.0)}[PROFILE]
POWER_CUT_P = 0.15  # per case, before it opens
API_RETRY_S = 60.0  # the agent may be down (kill -9) for a few seconds
INVITE_WAIT_S = 20.0
DRAIN_S = 120.0
LEVELS = [1, 1, 1, 2, 3, 4, 5]  # 差评 often enough that work orders are exercised


class Storm:
    def __init__(self, hall: Hall, seed: int) -> None:
        self.hall = hall
        self.rng = random.Random(seed)
        self.expected: list[dict[str, Any]] = []
        self.faults: list[str] = []
        self.cases = 0
        self.skipped = 0  # cases whose invite never showed (a fault): no press
        self.cables: dict[str, dict[str, int]] = {}  # what the cable faults did, in bytes
        self.stop_at = 0.0
        self.http = httpx.AsyncClient(base_url=hall.agent.url, timeout=5)

    def log(self, what: str) -> None:
        self.faults.append(f"{time.monotonic() - self.t0:5.1f}s {what}")

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """Retried with the same event_id until the agent answers (it dedupes on it)."""
        end = time.monotonic() + API_RETRY_S
        retried = False
        while True:
            try:
                r = await self.http.post(path, json=body)
                if retried and r.status_code == 409 and "event.duplicate" in r.text:
                    # The agent committed the attempt it was killed answering: read the case.
                    view = await self.http.get("/api/v1/cases", params={"case_no": body["case_no"]})
                    assert view.status_code == 200, (path, view.status_code, view.text)
                    return view.json()
                assert r.status_code < 300, (path, r.status_code, r.text)
                return r.json()
            except httpx.TransportError:
                assert time.monotonic() < end, f"the agent did not answer {path}"
                retried = True
                await asyncio.sleep(0.2)

    async def delivered(self, case_no: str) -> bool:
        end = time.monotonic() + INVITE_WAIT_S
        while time.monotonic() < end:
            try:
                r = await self.http.get("/api/v1/cases", params={"case_no": case_no})
                invite = r.json().get("invite") if r.status_code == 200 else None
                if invite and invite.get("delivered_ms") is not None:
                    return True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)
        return False

    async def lane(self, device_id: str, window_id: str) -> None:
        assert self.hall.fleet is not None
        dev = self.hall.fleet.devices[device_id]
        staff = f"S{window_id[1:]}"
        await self.post(
            f"/api/v1/windows/{window_id}/sign-in",
            {"staff_id": staff, "name": "王小明", "number": staff, "event_id": f"in-{window_id}"},
        )
        n = 0
        while time.monotonic() < self.stop_at:
            n += 1
            if n == 2 or self.rng.random() < POWER_CUT_P:
                self.log(f"power cut {device_id}")
                await self.hall.fleet.power_cut(device_id, self.rng.uniform(0.3, 2.0))
                assert await dev.wait_linked(60), f"{device_id} did not come back"
            case_no = f"E2E-{window_id}-{n:04d}"
            await dev.wait_acked(60)  # earlier presses are judged before this invite
            await self.post(
                "/api/v1/cases",
                {
                    "case_no": case_no,
                    "window_id": window_id,
                    "staff_id": staff,
                    "item_code": "330203-JD-0001",
                    "item_name": "居民身份证换领",
                    "dept_code": "11330203MB0123456D",
                    "event_id": f"open-{case_no}",
                },
            )
            answer = await self.post(
                "/api/v1/cases/finish", {"case_no": case_no, "event_id": f"fin-{case_no}"}
            )
            self.cases += 1
            invite = int(answer["invite_id"])
            if not (await self.delivered(case_no) and await dev.wait_invite(invite, INVITE_WAIT_S)):
                self.skipped += 1
                continue
            level = self.rng.choice(LEVELS)
            res = await dev.press(level, [501])
            assert res.thanked, f"{device_id} did not thank for a press"
            assert res.seq is not None
            counted = not res.flags & (M.FLAG_UNSOLICITED | M.FLAG_REPEAT)
            self.expected.append(
                {
                    "device_id": device_id,
                    "seq": res.seq,
                    "level": level,
                    "window_id": window_id,
                    "staff_id": staff if counted else None,
                    "case_no": case_no if counted and res.invite_id == invite else None,
                }
            )

    async def schedule(self, mosquitto: Any, serial: list[str]) -> None:
        """The hall-wide faults, spread over the storm."""
        hall = self.hall
        assert hall.fleet is not None and hall.hub is not None
        span = self.stop_at - time.monotonic()

        async def at(share: float) -> None:
            await asyncio.sleep(max(0.0, self.t0 + share * span - time.monotonic()))

        rack = hall.fleet.rack
        self.log(f"line noise on {serial[1]}")
        rack.faults(serial[1], corrupt=0.002, drop=0.001)
        await at(0.1)
        self.log(f"cable pulled {serial[0]}")
        rack.cable(serial[0], False)
        await asyncio.sleep(6)  # longer than a heartbeat: the link notices
        rack.cable(serial[0], True)
        self.log(f"cable replugged {serial[0]}")
        await at(0.25)
        self.log("agent kill -9")
        hall.agent.proc.kill9()
        await asyncio.sleep(2)
        await hall.agent.start()
        self.log("agent restarted")
        await at(0.45)
        self.log("hub down")
        hall.hub.proc.kill9()
        await asyncio.sleep(span * 0.15)
        await hall.hub.start()
        self.log("hub back")
        await at(0.7)
        self.log("broker restart")
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(mosquitto.start)
        self.log("broker back")
        await at(0.85)
        rack.faults(serial[1], corrupt=0.0, drop=0.0)
        self.log(f"line quiet on {serial[1]}")

    async def run(self, mosquitto: Any, seconds: float) -> None:
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + seconds
        specs = self.hall.specs
        serial = [s.device_id for s in specs if s.link == "serial"]
        lanes = [self.lane(s.device_id, s.window_id) for s in specs]
        try:
            await asyncio.gather(self.schedule(mosquitto, serial), *lanes)
        finally:
            await self.http.aclose()


def test_hall_under_faults(tmp_path: Path) -> None:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is missing (apt install mosquitto)")
    from tests.agent.mqtt_peer import Mosquitto

    n, seconds = SIZE
    specs = device_specs(n)
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    pw, acl = broker_dir / "hcp.passwd", broker_dir / "hcp.acl"
    mosquitto = Mosquitto(broker_dir, pw, acl)
    hall = Hall(tmp_path / "hall", specs, broker="external", mqtt_port=mosquitto.port, invite_s=60)
    hall.prepare()
    hall.agent.broker_files(pw, acl)
    mosquitto.start()
    storm = Storm(hall, seed=20261123)

    async def run() -> Any:
        try:
            await hall.start()
            assert hall.fleet is not None and hall.hub is not None
            down = await hall.fleet.wait_linked(90)
            assert down == [], f"not linked: {down}"
            since = {i: d.first_seq - 1 for i, d in hall.fleet.devices.items()}
            t = time.monotonic()
            await storm.run(mosquitto, seconds)
            storm_s = time.monotonic() - t
            drained = await hall.drained(DRAIN_S)
            drain_s = time.monotonic() - t - storm_s
            rack = hall.fleet.rack
            serial = [s.device_id for s in specs if s.link == "serial"]
            for dev_id in serial[:2]:
                cable = rack.devices[dev_id].cable
                assert cable is not None
                snap = cable.snapshot()
                storm.cables[dev_id] = {
                    k: snap["up"][k] + snap["down"][k]
                    for k in ("corrupted", "dropped", "unplugged")
                }
            acc = hub_account(hall.hub, storm.expected, since)
            return acc, drained, storm_s, drain_s
        finally:
            await hall.stop()
            mosquitto.stop()

    acc, drained, storm_s, drain_s = asyncio.run(run())
    bad_levels = sum(1 for e in storm.expected if e["level"] in M.BAD_LEVELS)
    print(
        f"\naccounting: {storm.cases} cases, {storm.skipped} without a press (invite not shown),"
        f" {acc.thanked} ratings thanked by {n} devices, {acc.found} at the hub, missing "
        f"{len(acc.missing)}, duplicated {len(acc.duplicated)}, extra {len(acc.extra)}, bound"
        f" wrongly {len(acc.wrong)}; 差评 pressed {bad_levels}, case 差评 {acc.bad}, work orders"
        f" {acc.orders}; storm {storm_s:.0f} s, drained in {drain_s:.0f} s"
    )
    print("faults:\n  " + "\n  ".join(storm.faults))
    print(f"cables (bytes): {storm.cables}")
    assert drained, "the devices' and the agent's outboxes did not drain"
    assert acc.thanked > 0 and acc.thanked >= n
    assert acc.missing == [], acc.missing[:10]
    assert acc.duplicated == [], acc.duplicated[:10]
    assert acc.extra == [], acc.extra[:10]
    assert acc.wrong == [], acc.wrong[:10]
    assert acc.bad > 0 and acc.orders == acc.bad
    assert sum(1 for f in storm.faults if "power cut" in f) >= n
    pulled, noisy = list(storm.cables.values())[:2]
    assert pulled["unplugged"] > 0, storm.cables  # the pull cut real traffic
    assert noisy["corrupted"] > 0 and noisy["dropped"] > 0, storm.cables  # the noise bit
