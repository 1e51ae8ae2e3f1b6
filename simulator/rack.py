"""A rack of virtual devices: N real-firmware processes, their flash images and cables.

Strategy: ``DeviceRack`` owns, per device, a LittleFS image (kept between runs: the boot
session and the outbox live there, as on a board's flash), a ``DeviceProcess`` (the unix
port; SIGKILL is a power cut, a restart boots the same image) and, for a serial device, a
``Cable`` (simulator.bridge) whose agent end is ``<dir>/<device>.tty``. An MQTT device
talks to the broker itself. Everything a caller does to a device goes through here: the
control API (simulator.control_api) and the tests. Requests to a device's control channel
open a short connection each, so they survive the device's restarts.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.bridge import Cable, TcpCable
from simulator.vdevice import (
    HEAP,
    DeviceProcess,
    build_firmware,
    build_is_current,
    device_json,
    seed_flash,
)

REQUEST_TIMEOUT_S = 10.0
MANIFEST = "manifest.json"
BUTTONS = 5  # an evaluator's five levels (a QR unit has none)


class RackError(Exception):
    """A request the rack refuses, in both languages (the API answers it as 4xx)."""

    def __init__(self, zh: str, en: str, status: int = 409) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en
        self.status = status


@dataclass
class DeviceSpec:
    device_id: str
    key: bytes
    kind: str = "evaluator"
    transport: str = "serial"  # or "mqtt"


@dataclass
class RackDevice:
    spec: DeviceSpec
    image: Path
    proc: DeviceProcess
    cable: Cable | TcpCable
    powered: bool = False
    power_cuts: int = 0
    clock_skew_ms: int = 0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.spec.device_id


def read_keys(directory: Path) -> dict[str, bytes]:
    """<dir>/<device>.key files (hex): the keys the agent registered."""
    keys: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.key")):
        keys[path.stem] = bytes.fromhex(path.read_text().strip())
    return keys


def new_specs(
    directory: Path, count: int, *, prefix: str = "EV-S", kind: str = "evaluator"
) -> list[DeviceSpec]:
    """`count` device ids with their keys: existing <dir>/<id>.key files are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    specs = []
    for i in range(1, count + 1):
        device_id = f"{prefix}{i:03d}"
        path = directory / f"{device_id}.key"
        if not path.exists():
            path.write_text(secrets.token_bytes(32).hex() + "\n")
        specs.append(DeviceSpec(device_id, bytes.fromhex(path.read_text().strip()), kind))
    return specs


class DeviceRack:
    def __init__(
        self,
        directory: Path,
        specs: list[DeviceSpec],
        *,
        hall_id: str,
        broker: tuple[str, int] | None = None,
        seed: int | None = None,
    ) -> None:
        self.directory = directory.resolve()  # the processes run in the build directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hall_id = hall_id
        self.broker = broker
        self.log = self.directory / "device.log"
        self.build = self.directory / "build"
        if not build_is_current(self.build):  # a changed firmware source: compile again
            build_firmware(self.build)
        self.devices: dict[str, RackDevice] = {}
        for n, spec in enumerate(specs):
            self.devices[spec.device_id] = self._make(spec, None if seed is None else seed + n)

    def _make(self, spec: DeviceSpec, seed: int | None) -> RackDevice:
        cable: Cable | TcpCable
        if spec.transport == "serial":
            cable = Cable(self.directory / f"{spec.device_id}.tty", seed=seed)
            cfg = device_json(cable.dev_path, spec.kind)
        elif spec.transport == "mqtt":
            if self.broker is None:
                raise RackError("MQTT 设备需要代理地址", "an MQTT device needs a broker address")
            # The device connects to its relay (the network path that can be pulled).
            cable = TcpCable(self.broker, seed=seed)
            cfg = device_json("", spec.kind)
            cfg["transport"] = {"type": "mqtt", "host": "127.0.0.1", "port": cable.port}
        else:
            raise RackError(
                f"未知的连接方式 {spec.transport!r}", f"unknown link {spec.transport!r}"
            )
        cfg["factory_id"] = f"F-{spec.device_id}"
        image = self.directory / f"{spec.device_id}.img"
        # The pty's name changes every start: device.json is rewritten, the rest is kept.
        ident = {
            "device_id": spec.device_id,
            "hall": self.hall_id,
            "seq_base": 1,
            "session_base": 1,
        }
        extra = {"hcp/device.json": json.dumps(cfg).encode()}
        if not image.exists():
            seed_flash(self.build, image, cfg, key=spec.key, identity=ident)
        else:
            seed_flash(self.build, image, cfg, key=None, extra=extra)
        proc = DeviceProcess(self.build, image, heap=HEAP.get(spec.kind, "384k"), log=self.log)
        return RackDevice(spec, image, proc, cable)

    def get(self, device_id: str) -> RackDevice:
        try:
            return self.devices[device_id]
        except KeyError:
            raise RackError(f"没有设备 {device_id}", f"no device {device_id}", status=404) from None

    # ---- lifecycle ----
    async def start(self) -> None:
        for d in self.devices.values():
            d.cable.start()
            self._power_on(d)

    def _power_on(self, d: RackDevice) -> None:
        d.proc.start()
        d.powered = True

    async def stop(self) -> None:
        for d in self.devices.values():
            d.proc.kill()
            d.powered = False
            await d.cable.stop()

    def close(self) -> None:
        for d in self.devices.values():
            d.cable.close()

    # ---- faults ----
    async def power(self, device_id: str, on: bool) -> None:
        """Off: SIGKILL, as pulling the plug (nothing is flushed); on: boot the same image."""
        d = self.get(device_id)
        if on and not d.powered:
            self._power_on(d)
        elif not on and d.powered:
            await asyncio.to_thread(d.proc.kill)
            d.powered = False
            d.power_cuts += 1

    def cable(self, device_id: str, plugged: bool) -> None:
        """Serial: the pty cable; MQTT: the network path to the broker."""
        self.get(device_id).cable.plug(plugged)

    def faults(self, device_id: str, **fields: Any) -> dict[str, Any]:
        d = self.get(device_id)
        d.cable.set_faults(**fields)
        return d.cable.snapshot()

    async def skew_clock(self, device_id: str, ms: int) -> dict[str, Any]:
        """Move the device's clock ahead by `ms` (the firmware's ``skew`` control command)."""
        d = self.get(device_id)
        out = await self.request(device_id, "skew", ms=ms)
        if not out.get("ok"):
            raise RackError(
                f"设备拒绝调整时钟：{out.get('error')}",
                f"the device refused the clock skew: {out.get('error')}",
                status=400,
            )
        d.clock_skew_ms += ms
        return out

    # ---- the control channel ----
    async def request(self, device_id: str, cmd: str, **fields: Any) -> dict[str, Any]:
        d = self.get(device_id)
        if not d.powered:
            raise RackError(f"{device_id} 已断电", f"{device_id} is powered off")
        try:
            return await asyncio.wait_for(
                _request(d.proc.control_port, {"cmd": cmd, **fields}), REQUEST_TIMEOUT_S
            )
        except (OSError, TimeoutError, ValueError) as e:
            raise RackError(
                f"{device_id} 的控制通道无应答（{type(e).__name__}）",
                f"{device_id}'s control channel does not answer ({type(e).__name__})",
                status=503,
            ) from e

    async def click(self, device_id: str, button: int, ms: int = 80) -> dict[str, Any]:
        out = await self.request(device_id, "click", button=button, ms=ms)
        if not out.get("ok"):
            raise RackError(
                f"按键被拒绝：{out.get('error')}", f"press refused: {out.get('error')}", 400
            )
        return out

    async def state(self, device_id: str) -> dict[str, Any]:
        return await self.request(device_id, "state")

    async def frame_png(self, device_id: str, scale: int = 2) -> bytes:
        out = await self.request(device_id, "frame")
        if not out.get("ok"):
            raise RackError("屏幕尚未显示任何画面", "nothing shown on the screen yet", 404)
        return frame_to_png(out, scale)

    async def summary(self, device_id: str) -> dict[str, Any]:
        """What the technician UI shows of one device (state only when powered and answering)."""
        d = self.get(device_id)
        out: dict[str, Any] = {
            "device_id": d.device_id,
            "kind": d.spec.kind,
            "transport": d.spec.transport,
            "powered": d.powered,
            "power_cuts": d.power_cuts,
            "clock_skew_ms": d.clock_skew_ms,
            "control_port": d.proc.control_port,
            "pid": d.proc.pid,
            "buttons": 0 if d.spec.kind == "qr" else BUTTONS,
            "cable": d.cable.snapshot(),
            "tty": _tty(d),
            "state": None,
        }
        if d.powered:
            try:
                s = await self.request(d.device_id, "state")
                out["state"] = {
                    k: s.get(k)
                    for k in (
                        "ui",
                        "online",
                        "link",
                        "outbox_depth",
                        "next_seq",
                        "led",
                        "boot",
                        "config_version",
                        "paused",
                        "time",
                        "free_heap",
                    )
                }
            except RackError:
                pass  # booting: no answer yet
        return out

    def manifest(self) -> dict[str, Any]:
        return {
            "hall_id": self.hall_id,
            "directory": str(self.directory),
            "devices": [
                {
                    "device_id": d.device_id,
                    "kind": d.spec.kind,
                    "transport": d.spec.transport,
                    "tty": _tty(d),
                    "relay_port": d.cable.port if isinstance(d.cable, TcpCable) else None,
                    "key_file": str(self.directory / f"{d.device_id}.key"),
                    "control_port": d.proc.control_port,
                    "image": str(d.image),
                }
                for d in self.devices.values()
            ],
        }

    def write_manifest(self, extra: dict[str, Any] | None = None) -> Path:
        path = self.directory / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.manifest(), **(extra or {})}, indent=1) + "\n")
        tmp.replace(path)
        return path

    async def wait(self, device_id: str, pred: Any, timeout: float) -> dict[str, Any]:
        """Poll the device's state until pred(state) holds; RackError on timeout."""
        end = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            try:
                last = await self.state(device_id)
                if pred(last):
                    return last
            except RackError:
                pass
            if time.monotonic() > end:
                raise RackError(
                    f"{device_id} 在 {timeout} 秒内未达到预期状态",
                    f"{device_id} did not reach the expected state within {timeout} s: {last}",
                    504,
                )
            await asyncio.sleep(0.05)


def _tty(d: RackDevice) -> str | None:
    return str(d.cable.agent_path) if isinstance(d.cable, Cable) else None


async def _request(port: int, req: dict[str, Any]) -> dict[str, Any]:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        w.write(json.dumps(req).encode() + b"\n")
        await w.drain()
        while True:
            line = await r.readline()
            if not line:
                raise ConnectionError("control channel closed")
            out: dict[str, Any] = json.loads(line)
            if "event" not in out:
                return out
    finally:
        w.close()


def frame_to_png(frame: dict[str, Any], scale: int = 2) -> bytes:
    """A frame from the control channel (docs/technician.md; firmware/display/sim.py's
    layouts) as a PNG, each pixel `scale` × `scale`."""
    from PIL import Image

    width, height = int(frame["width"]), int(frame["height"])
    canvas = base64.b64decode(frame["data"])
    if len(canvas) != width * height // 8:
        raise ValueError("frame size does not match its width and height")
    ink, paper = _rgb565(int(frame["ink"])), _rgb565(int(frame["paper"]))
    if int(frame["layout"]) == 2:  # MONO_HLSB: a byte is 8 columns of a row, MSB left
        bits = Image.frombytes("1", (width, height), canvas)
    else:  # MONO_VLSB: a byte is 8 rows of a column, LSB on top
        px = bytearray(width * height)
        for page in range(height // 8):
            row = page * 8
            for x in range(width):
                b = canvas[page * width + x]
                for bit in range(8):
                    if b >> bit & 1:
                        px[(row + bit) * width + x] = 255
        bits = Image.frombytes("L", (width, height), bytes(px)).convert("1")
    img = Image.new("RGB", (width, height), paper)
    img.paste(ink, mask=bits)
    if scale > 1:
        img = img.resize((width * scale, height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _rgb565(v: int) -> tuple[int, int, int]:
    r, g, b = (v >> 11) & 0x1F, (v >> 5) & 0x3F, v & 0x1F
    return (r * 255 // 31, g * 255 // 63, b * 255 // 31)
