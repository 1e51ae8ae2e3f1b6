"""The press path: how a simulated person presses a counter device's button.

Strategy: the engine sees a device only through ``VirtualDevice`` (wait for an invite on its
screen, wait until it is idle, press a level, and know when the agent acknowledged the
press). Two implementations:

- ``PeerDevice``: a CPython device peer (simulator/peer.py, the protocol session of the
  device role) on a real pty that the agent opens as its serial port. It plays the device
  application's rating rules itself (firmware/ui/machine.py): the first press in an open
  invite is sent with the invite; further presses until that invite's deadline are flagged
  repeat and name it; a press with no invite is flagged unsolicited (docs/protocol.md,
  RATING flags).
- the real firmware under the MicroPython unix port, driven through its control channel,
  replaces the peer when it lands (issue 7); nothing else in the engine changes.

``PeerHall`` owns the ptys (stable symlinks that agent.toml names) and one pump task that
steps every peer's link session. Like a device's flash, ``<device>.state`` next to the pty
keeps the boot session and the next rating seq across runs: the agent refuses an old boot
session and a reused seq (replay window, DESIGN.md "Identity and ordering").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protocol import messages as M
from simulator.peer import DevicePeer

PUMP_S = 0.005  # how often the pump steps the peers' sessions (timers, resends, reads)


@dataclass(frozen=True)
class PressResult:
    """What the device did with a press: the rating it stored (and thanked for)."""

    device_id: str
    seq: int | None  # the rating's seq; None if the device stored nothing
    invite_id: int | None  # the invite the rating names
    flags: int
    thanked: bool  # the device showed "感谢您的评价": the rating must reach the hub once


class VirtualDevice(Protocol):
    device_id: str

    async def wait_invite(self, invite_id: int, timeout: float) -> bool:
        """True once the device shows this invite (False on timeout)."""
        ...

    async def wait_idle(self, timeout: float) -> bool:
        """True once a press would be unsolicited: no invite open, none answered whose
        deadline is still running."""
        ...

    async def press(self, level: int, reasons: list[int]) -> PressResult: ...

    async def wait_acked(self, timeout: float) -> bool:
        """True once the agent acknowledged every rating the device holds."""
        ...


def _mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class PeerDevice:
    """A CPython device peer behaving like the device application for ratings."""

    def __init__(self, peer: DevicePeer) -> None:
        self.peer = peer
        self.device_id = peer.device_id
        self._seen = 0  # down messages already applied
        self.invite: int | None = None  # the invite on screen
        self.invite_until = 0  # mono ms
        self.answered: int | None = None  # invite already rated: presses are repeats of it
        self.answered_until = 0  # its deadline (mono ms)
        self.paused = False
        self.first_seq = peer.next_seq  # ratings before it are not this run's
        self.on_press: Callable[[PeerDevice], None] | None = None

    def _apply_down(self) -> None:
        down = self.peer.down
        now = _mono_ms()
        while self._seen < len(down):
            m = down[self._seen]
            self._seen += 1
            if m.type == M.INVITE:
                self.invite = int(getattr(m, "invite"))  # noqa: B009 (Message fields are dynamic)
                self.invite_until = now + int(getattr(m, "timeout_s")) * 1000  # noqa: B009
                self.answered = None
            elif m.type == M.CANCEL and getattr(m, "invite") == self.invite:  # noqa: B009
                self.invite = None
            elif m.type == M.PAUSE:
                self.paused = True
            elif m.type == M.RESUME:
                self.paused = False
        if self.invite is not None and now >= self.invite_until:
            self.invite = None
        if self.answered is not None and now >= self.answered_until:
            self.answered = None

    async def wait_invite(self, invite_id: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            self._apply_down()
            if self.invite == invite_id:
                return True
            if time.monotonic() > end:
                return False
            await asyncio.sleep(PUMP_S)

    async def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            self._apply_down()
            if self.invite is None and self.answered is None:
                return True
            if time.monotonic() > end:
                return False
            await asyncio.sleep(PUMP_S)

    async def press(self, level: int, reasons: list[int]) -> PressResult:
        self._apply_down()
        if self.on_press is not None:
            self.on_press(self)
        flags = M.FLAG_PAUSED if self.paused else 0
        if self.invite is not None:
            invite: int | None = self.invite
            self.invite = None
            self.answered = invite
            self.answered_until = self.invite_until
        elif self.answered is not None:  # only the first press counts
            invite = self.answered
            flags |= M.FLAG_REPEAT
        else:
            invite = None
            flags |= M.FLAG_UNSOLICITED
        seq = self.peer.press(level, invite=invite, flags=flags, reasons=reasons)
        return PressResult(self.device_id, seq, invite, flags, thanked=True)

    async def wait_acked(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.peer.outbox:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(PUMP_S)
        return True


class _Pty:
    """A pty pair with a stable symlink to the slave (what agent.toml names as the port)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)  # a stopped agent must not block the device
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.symlink_to(os.ttyname(self.slave))

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class PeerHall:
    """CPython device peers on ptys, one per device id, stepped by one pump task."""

    def __init__(self, directory: Path, keys: dict[str, bytes]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ptys: dict[str, _Pty] = {}
        self.devices: dict[str, PeerDevice] = {}
        for device_id, key in keys.items():
            boot, next_seq = self._load_state(device_id)
            pty = _Pty(directory / f"{device_id}.tty")
            self.ptys[device_id] = pty
            dev = PeerDevice(
                DevicePeer(
                    pty.master,
                    key,
                    device_id=device_id,
                    boot=boot,
                    next_seq=next_seq,
                    status_every_ms=5000,
                )
            )
            dev.on_press = self._save_state
            self.devices[device_id] = dev
            self._save_state(dev, next_seq)
        self._task: asyncio.Task[None] | None = None

    def _state_path(self, device_id: str) -> Path:
        return self.directory / f"{device_id}.state"

    def _load_state(self, device_id: str) -> tuple[int, int]:
        """(boot, next_seq) for this start: the saved boot + 1, the saved next seq."""
        try:
            data = json.loads(self._state_path(device_id).read_text())
            return int(data["boot"]) + 1, int(data["next_seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return 1, 1

    def _save_state(self, dev: PeerDevice, next_seq: int | None = None) -> None:
        """Before a press is made (like the firmware's seq reservation on flash)."""
        seq = dev.peer.next_seq + 1 if next_seq is None else next_seq
        tmp = self._state_path(dev.device_id).with_suffix(".tmp")
        tmp.write_text(json.dumps({"boot": dev.peer.boot, "next_seq": seq}))
        tmp.replace(self._state_path(dev.device_id))

    def since_seq(self) -> dict[str, int]:
        """Per device, the last seq before this run (simulator.accounting)."""
        return {i: d.first_seq - 1 for i, d in self.devices.items()}

    def port(self, device_id: str) -> Path:
        return self.ptys[device_id].path

    async def start(self) -> None:
        for d in self.devices.values():
            d.peer.connect()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            for d in self.devices.values():
                d.peer.step(0)
                d._apply_down()
            await asyncio.sleep(PUMP_S)

    async def wait_linked(self, timeout: float) -> list[str]:
        """Device ids whose link is not up after `timeout` seconds (empty: all up)."""
        end = time.monotonic() + timeout
        while True:
            down = [i for i, d in self.devices.items() if not d.peer.link_ups]
            if not down or time.monotonic() > end:
                return down
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def close(self) -> None:
        for pty in self.ptys.values():
            pty.close()
