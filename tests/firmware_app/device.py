"""The device app under test: the real MicroPython unix port running firmware/unix_rom.py
on a LittleFS image, its protocol link on a real pty and its control channel on TCP.

- ``build_firmware``: protocol/ and firmware/ compiled with mpy-cross (as a device loads
  them), unix_rom.py as source (the unix port runs its main script from source).
- ``seed_flash``: write device.json, board.json (and optionally an identity and key) into
  a fresh image, through MicroPython's own VfsLfs2 (CPython has no LittleFS).
- ``Device``: start / kill (SIGKILL) / restart the process; ``Control`` talks to it.
- ``AgentEnd``: a CPython agent-side LinkSession on the pty master, storing every RATING
  it receives and acknowledging it (as the agent does after its commit).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol import messages as M
from protocol.framing import FrameDecoder, encode_frame
from protocol.messages import Message
from protocol.session import AGENT, Acked, LinkSession, LinkUp
from tests.mpy import compile_to, tool

ROOT = Path(__file__).resolve().parents[2]
FONT = ROOT / "firmware" / "fonts" / "hcp12.bin"
KEY = bytes(range(32))
DEVICE_ID = "EV-0001"
HALL = "H330201001"


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def build_firmware(out: Path) -> Path:
    for package in ("protocol", "firmware"):
        for src in (ROOT / package).rglob("*.py"):
            if src.name == "unix_rom.py":
                continue
            compile_to(src, out / src.relative_to(ROOT).with_suffix(".mpy"))
    shutil.copy(ROOT / "firmware" / "unix_rom.py", out / "unix_rom.py")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_flash(
    build: Path,
    image: Path,
    device: dict[str, Any],
    *,
    key: bytes | None = KEY,
    identity: dict[str, Any] | None = None,
    extra: dict[str, bytes] | None = None,
) -> None:
    files = {
        "hcp/device.json": json.dumps(device).encode(),
        "hcp/board.json": (ROOT / "hardware" / "boards" / "unix-sim.json").read_bytes(),
    }
    if key is not None:
        ident = identity or {
            "device_id": DEVICE_ID,
            "hall": HALL,
            "seq_base": 1,
            "session_base": 1,
        }
        files["hcp/identity.json"] = json.dumps(ident).encode()
        files["hcp/key.bin"] = key
    files.update(extra or {})
    code = (
        "import sys, binascii, os\n"
        "from firmware.storage.blockdev import FileBlockDev\n"
        "from firmware.storage.mount import mount_lfs\n"
        f"mount_lfs(FileBlockDev({str(image)!r}, 4096, 128), '/flash', 32, 256, 32)\n"
        "try:\n    os.mkdir('/flash/hcp')\nexcept OSError:\n    pass\n"
    )
    for name, data in files.items():
        code += (
            f"with open('/flash/{name}', 'wb') as f:\n"
            f"    f.write(binascii.unhexlify({data.hex()!r}))\n"
        )
    r = subprocess.run(
        [tool("micropython"), "-c", code],
        env=dict(os.environ, MICROPYPATH=str(build)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def device_json(port: str, kind: str = "evaluator", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "version": 1,
        "factory_id": "F-0001",
        "kind": kind,
        "board": "unix-sim",
        "transport": {"type": "serial", "port": port, "baud": 115200},
    }
    d.update(extra)
    return d


class Control:
    """The control channel: one JSON request per line, one answer per request."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)
        self.rfile = self.sock.makefile("rb")

    def __call__(self, cmd: str, **fields: Any) -> dict[str, Any]:
        fields["cmd"] = cmd
        self.sock.sendall(json.dumps(fields).encode() + b"\n")
        while True:
            line = self.rfile.readline()
            if not line:
                raise ConnectionError("control channel closed")
            out: dict[str, Any] = json.loads(line)
            if "event" not in out:
                return out

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class Events:
    """A subscribed control connection: the device's events, collected non-blocking."""

    def __init__(self, port: int) -> None:
        self.ctl = Control(port)
        assert self.ctl("subscribe")["ok"]
        self.ctl.sock.setblocking(False)
        self.buf = b""
        self.events: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        while True:
            try:
                data = self.ctl.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                break
            if not data:
                break
            self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.strip():
                e = json.loads(line)
                if "event" in e:
                    self.events.append(e)
        return self.events

    def close(self) -> None:
        self.ctl.close()


class Device:
    def __init__(
        self, build: Path, image: Path, *, heap: str = "256k", env: dict[str, str] | None = None
    ) -> None:
        self.build = build
        self.image = image
        self.heap = heap
        self.env = env or {}
        self.control_port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.log = image.parent / "device.log"

    def start(self) -> Device:
        env = dict(
            os.environ,
            MICROPYPATH=f"{self.build}:.frozen",
            HCP_CONTROL_PORT=str(self.control_port),
            HCP_FONT=str(FONT),
            **self.env,
        )
        self._logf = open(self.log, "a")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [tool("micropython"), "-X", f"heapsize={self.heap}", "unix_rom.py", str(self.image)],
            cwd=self.build,
            env=env,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def control(self) -> Control:
        return Control(self.control_port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
        self._logf.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class AgentEnd:
    """The agent's side of the link, in CPython, on the pty master (one step at a time)."""

    def __init__(
        self,
        fd: int,
        key: bytes = KEY,
        device_id: str | None = DEVICE_ID,
        heartbeat_s: int = 2,
        mode: int = M.NORMAL,
    ):
        self.fd = fd
        self.session = LinkSession(
            AGENT,
            key,
            1,
            mode=mode,
            device_id=device_id,
            heartbeat_s=heartbeat_s,
            clock_ms=lambda: time.time_ns() // 1_000_000,
        )
        self.session.accept_hellos(0)
        self.decoder = FrameDecoder()
        self.ratings: dict[int, Message] = {}  # seq -> the RATING stored ("committed")
        self.duplicates_differ: list[tuple[Message, Message]] = []
        self.hellos: list[Message] = []
        self.received: list[Message] = []
        self.ack_ratings = True
        self.rx_bytes = 0
        self.rating_rx_ms: dict[int, int] = {}

    def step(self, timeout: float = 0.01) -> None:
        if self.fd < 0:  # unplugged
            time.sleep(timeout)
            return
        r, _, _ = select.select([self.fd], [], [], timeout)
        now = mono_ms()
        if r:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            if data:
                self.rx_bytes += len(data)
                self.decoder.feed(data)
                while (p := self.decoder.next_packet()) is not None:
                    self.session.receive(p, mono_ms())
        self.session.poll(now)
        while (e := self.session.next_event()) is not None:
            if isinstance(e, LinkUp):
                self.hellos.append(e.peer)
            elif isinstance(e, Message):
                self.received.append(e)
                if e.type == M.RATING:
                    old = self.ratings.get(e.seq)
                    if old is not None and old.fields() != e.fields():
                        self.duplicates_differ.append((old, e))
                    self.ratings.setdefault(e.seq, e)
                    self.rating_rx_ms.setdefault(e.seq, now)
                    if self.ack_ratings:
                        self.session.acknowledge(e.seq)
            elif isinstance(e, Acked):
                pass
        self.flush()

    def flush(self) -> None:
        for p in self.session.packets_to_send():
            with contextlib.suppress(OSError):  # nobody there: the session resends
                os.write(self.fd, encode_frame(p))

    def send(self, msg: Message) -> None:
        self.session.send(msg, mono_ms())
        self.flush()

    def run_until(self, pred: Callable[[], Any], timeout: float = 15.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            self.step()
            v = pred()
            if v:
                return v
            if time.monotonic() > end:
                raise AssertionError(
                    f"condition not met within {timeout} s (agent link {self.session.state},"
                    f" {len(self.ratings)} ratings, hellos {len(self.hellos)})"
                )

    def last(self, mtype: int) -> Message | None:
        for m in reversed(self.received):
            if m.type == mtype:
                return m
        return None


def config_msg(**policy: Any) -> Message:
    pol = {"invite_s": 10, "reason_s": 5, "thanks_s": 1, "heartbeat_s": 2, "reason_required": False}
    pol.update(policy)
    return Message(
        M.CONFIG,
        version=7,
        window="综合窗口 01",
        staff={"name": "王小明", "number": "A0123", "title": None},
        qr=None,
        reasons=[
            {"code": 501, "zh": "等候时间长", "en": "Long wait", "levels": 0b11000},
            {"code": 502, "zh": "态度不好", "en": "Rude", "levels": 0b11000},
        ],
        policy=pol,
    )
