"""The real firmware as the press path: MicroPython unix port devices behind their control
channel (docs/technician.md, "The unix port").

Strategy: ``FirmwareDevice`` is a VirtualDevice (simulator.devices) that presses buttons the
way a person does, through the device's control channel (newline-delimited JSON on TCP):
``click`` the level's button, and on the reason screen of a 差评 the button of the first
planned reason the catalogue offers for that level. What the device made of the press is
read from its ``thanked`` event (seq, level, flags), sent after the record is on flash; the
invite it names is the one the engine saw delivered (``wait_invite``) or, for a repeat, the
one the device last answered. ``FirmwareHall`` starts one device per id in a DeviceRack
(simulator.rack): the .mpy build on a LittleFS image (kept between runs: the boot session
and outbox live there), its serial link on a pty cable (simulator.bridge) whose agent end
``<dir>/<device>.tty`` agent.toml names, and its control channel on a free TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from protocol import messages as M
from simulator.devices import PressResult
from simulator.rack import DeviceRack, DeviceSpec

POLL_S = 0.01
CLICK_MS = 60  # longer than the firmware's 50 ms debounce
THANKED_WAIT_S = 30.0  # the record is on flash in ms; a loaded machine can take seconds
REASON_WAIT_S = 5.0


class FirmwareDevice:
    def __init__(
        self,
        device_id: str,
        control_port: int,
        reasons: dict[int, list[int]],
        *,
        invite_s: int = 60,
    ) -> None:
        self.device_id = device_id
        self.invite_s = invite_s  # the agent's policy.invite_s: how long repeats last
        self.port = control_port
        self.reasons = reasons  # level -> catalogue codes offered, in button order
        self.invite: int | None = None  # the invite the engine saw delivered
        self.answered: int | None = None
        self.invite_seen = 0.0  # monotonic time the current invite was seen on the screen
        self.answered_until = 0.0  # repeats of the answered invite until then (at the latest)
        self.thanked: list[dict[str, Any]] = []
        self.first_seq = 1  # the device's next seq when the run began (wait_linked)
        self._lock = asyncio.Lock()
        self._req: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._events: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                self._req = await asyncio.open_connection("127.0.0.1", self.port)
                ev = await asyncio.open_connection("127.0.0.1", self.port)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.05)
        ev[1].write(b'{"cmd": "subscribe"}\n')
        await ev[1].drain()
        self._events = asyncio.create_task(self._read_events(ev[0], ev[1]))

    async def _read_events(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while line := await r.readline():
                e = json.loads(line)
                if e.get("event") == "thanked":
                    self.thanked.append(e)
        finally:
            w.close()

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self._req is not None
        r, w = self._req
        async with self._lock:
            w.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
            await w.drain()
            while True:
                line = await r.readline()
                if not line:
                    raise ConnectionError(f"{self.device_id}: control channel closed")
                out: dict[str, Any] = json.loads(line)
                if "event" not in out:
                    return out

    async def _until(self, pred: Any, timeout: float) -> dict[str, Any] | None:
        end = time.monotonic() + timeout
        while True:
            s = await self.request("state")
            if pred(s):
                return s
            if time.monotonic() > end:
                return None
            await asyncio.sleep(POLL_S)

    async def wait_linked(self, timeout: float) -> bool:
        s = await self._until(lambda s: s["online"] and s["config_version"] > 0, timeout)
        if s is not None:
            self.first_seq = int(s["next_seq"])
        return s is not None

    async def wait_invite(self, invite_id: int, timeout: float) -> bool:
        # The engine calls this once the agent recorded the INVITE as delivered (the device
        # acknowledged it after the CANCEL of the previous one): the screen shows it.
        ok = await self._until(lambda s: s["ui"] == "invite", timeout) is not None
        if ok:
            self.invite = invite_id
            self.invite_seen = time.monotonic()
        return ok

    async def wait_idle(self, timeout: float) -> bool:
        """Idle screen, and the answered invite's deadline (which the device keeps to itself:
        presses until then are repeats) surely over."""
        end = time.monotonic() + timeout
        wait = min(self.answered_until, end) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.monotonic() < self.answered_until:
            return False
        left = max(0.0, end - time.monotonic())
        return await self._until(lambda s: s["ui"] in ("idle", "notice"), left) is not None

    async def press(self, level: int, reasons: list[int]) -> PressResult:
        before = len(self.thanked)
        await self.request("click", button=level - 1, ms=CLICK_MS)
        if level in M.BAD_LEVELS:
            # A first 差评 opens the reason screen; a repeat is recorded at once.
            offered = self.reasons.get(level, [])
            pick = next((offered.index(c) for c in reasons if c in offered), 0)
            s = await self._until(
                lambda s: s["ui"] == "reason" or len(self.thanked) > before, REASON_WAIT_S
            )
            if s is not None and s["ui"] == "reason" and len(self.thanked) <= before:
                await self.request("click", button=pick, ms=CLICK_MS)
        end = time.monotonic() + THANKED_WAIT_S
        while len(self.thanked) <= before and time.monotonic() < end:
            await asyncio.sleep(POLL_S)
        await asyncio.sleep(CLICK_MS / 1000)  # released long enough for the next edge
        if len(self.thanked) <= before:
            return PressResult(self.device_id, None, None, 0, thanked=False)
        e = self.thanked[before]
        flags = int(e["flags"])
        invite: int | None
        if flags & M.FLAG_UNSOLICITED:
            invite = None
        elif flags & M.FLAG_REPEAT:
            invite = self.answered
        else:
            invite = self.answered = self.invite
            self.answered_until = self.invite_seen + self.invite_s
            self.invite = None
        return PressResult(self.device_id, int(e["seq"]), invite, flags, thanked=True)

    async def wait_acked(self, timeout: float) -> bool:
        return await self._until(lambda s: s["outbox_depth"] == 0, timeout) is not None

    async def close(self) -> None:
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events
        if self._req is not None:
            self._req[1].close()


class FirmwareHall:
    """One real-firmware device per id (a simulator.rack DeviceRack: flash images, processes,
    pty cables), each pressed through its control channel as a FirmwareDevice."""

    def __init__(
        self,
        directory: Path,
        keys: dict[str, bytes],
        *,
        hall_id: str,
        kind: str = "evaluator",
        reasons: dict[int, list[int]] | None = None,
        invite_s: int = 60,
    ) -> None:
        """`reasons`: the agent's catalogue per 差评 level in button order; `invite_s`: its
        policy.invite_s."""
        specs = [DeviceSpec(device_id, key, kind) for device_id, key in keys.items()]
        self.rack = DeviceRack(directory, specs, hall_id=hall_id)
        self.log = self.rack.log
        offered = reasons or {4: [501, 502, 503, 504], 5: [501, 502, 503, 504]}
        self.devices: dict[str, FirmwareDevice] = {
            i: FirmwareDevice(i, d.proc.control_port, offered, invite_s=invite_s)
            for i, d in self.rack.devices.items()
        }

    async def start(self) -> None:
        await self.rack.start()
        for d in self.devices.values():
            await d.connect()

    async def wait_linked(self, timeout: float) -> list[str]:
        out = []
        for i, d in self.devices.items():
            if not await d.wait_linked(timeout):
                out.append(i)
        return out

    def since_seq(self) -> dict[str, int]:
        """Per device, the last seq before this run (simulator.accounting)."""
        return {i: d.first_seq - 1 for i, d in self.devices.items()}

    async def stop(self) -> None:
        for d in self.devices.values():
            await d.close()
        await self.rack.stop()

    def close(self) -> None:
        self.rack.close()
