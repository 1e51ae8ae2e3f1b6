"""The press path through the REAL firmware: MicroPython unix port devices, their buttons
clicked through the control channel, linked over bridged ptys to the real agent
(``hcp agent run``); the accounting holds as with the CPython peers."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from protocol import messages as M
from simulator.accounting import account
from simulator.engine import Engine
from simulator.firmware import FirmwareHall
from simulator.plan import plan, summary
from tests.simulator.hall import HALL_ID, AgentHall
from tests.simulator.scenarios import busy_hour

SIM_S = 600.0


def test_firmware_devices_rate_cases_end_to_end(tmp_path: Path) -> None:
    sc = busy_hour()
    sc = dataclasses.replace(sc, windows=sc.windows[1:2])  # W02: one shift, self-ratings
    events = [e for e in plan(sc, 8) if e.t < SIM_S]
    planned = summary(events)
    assert planned["presses_self"] and planned["presses_repeat"] and planned["levels"].get(5)
    hall = AgentHall(tmp_path, sc, invite_s=2, peers=False, kind=M.KIND_EVALUATOR)

    async def run() -> Engine:
        await hall.start()
        devices = FirmwareHall(hall.device_dir, hall.keys, hall_id=HALL_ID, invite_s=2)
        try:
            await devices.start()
            assert await devices.wait_linked(60) == []
            engine = Engine(
                sc, events, agent_url=hall.url, devices=devices.devices, speed=None, tag="fw"
            )
            report = await engine.run()
            assert report.api_refused == 0, engine.truth.api_errors[:3]
            return engine
        finally:
            await devices.stop()
            await hall.stop()
            devices.close()

    engine = asyncio.run(run())
    truth = engine.truth
    assert [(p.role, p.note) for p in truth.presses if p.note] == []
    acc = account(truth, hall.store_path)
    assert acc.ok, acc.problems[:10]
    assert acc.thanked == len(truth.presses)
    assert acc.bindings["counted"] == planned["presses_first"]
    assert acc.bindings["unsolicited"] == planned["presses_self"]
