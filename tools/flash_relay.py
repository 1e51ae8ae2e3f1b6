"""A virtual USB cable to a simulated board: the MicroPython unix port behind two ptys.

Strategy: ``hcp flash`` talks to a board the way mpremote does, over a serial device path,
into the board's raw REPL. The unix port offers that REPL on its standard streams, so a
simulated board is a ``micropython`` process whose stdin/stdout is one pty (the board's
side), and the technician's "USB port" is a second pty (a stable symlink to its slave). A
relay thread copies bytes between the two masters. Two ptys, not one: mpremote needs a path
to open, and two readers on one slave would steal each other's bytes. The relay also lets
a test pull the cable (``unplug``) and gives the simulator the same board tests use.

The board's "ROM" (``LAUNCHER``) mounts its flash, a LittleFS image as the board profile
describes (firmware/storage: the firmware's own block device and mount code), at the
profile's mount point, then leaves the process in the interactive REPL (``-i``). Files
mpremote writes under that mount land in the image, so a full filesystem is a real one.

Used by tests/tools and the simulator; pure standard library plus the repository.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RELAY_CHUNK = 4096
BOOT_TIMEOUT_S = 10.0

LAUNCHER = """\
import sys
sys.path.append({root!r})
from firmware.storage.blockdev import FileBlockDev
from firmware.storage.mount import mount_lfs
_bd = FileBlockDev({image!r}, {block_size}, {blocks})
mount_lfs(_bd, {mount!r}, {readsize}, {progsize}, {lookahead})
sys.path.remove({root!r})
sys.path.insert(0, {mount!r})
del _bd, FileBlockDev, mount_lfs
print("hcp-sim rom: flash mounted at {mount}")
"""


def _geometry(profile: dict[str, Any], size: int | None) -> dict[str, Any]:
    st = profile["storage"]
    return {
        "block_size": int(st["block_size"]),
        "blocks": (size or int(st["size"])) // int(st["block_size"]),
        "mount": str(st["mount"]),
        "readsize": st["readsize"],
        "progsize": st["progsize"],
        "lookahead": st["lookahead"],
    }


def boot_flashed_app(
    image: Path,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    heap: str = "320k",
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Run the firmware `hcp flash` wrote into `image` (unix-sim profile) in a new process."""
    # The unix ROM, as a board's reset: it mounts the image (with the repository's block
    # device, MICROPYPATH) and then imports the firmware from /flash, where it was flashed.
    out = open(log or cwd / "device.log", "ab")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(
        [
            micropython(),
            "-X",
            f"heapsize={heap}",
            str(ROOT / "firmware" / "unix_rom.py"),
            str(image),
        ],
        cwd=str(cwd),
        env={**os.environ, "MICROPYPATH": f"{ROOT}:.frozen", **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def micropython() -> str:
    exe = Path(sys.executable).parent / "micropython"
    return str(exe) if exe.exists() else "micropython"


class VirtualCable:
    """Two ptys and a relay: ``board_fd`` is the board's end, ``path`` the host's port."""

    def __init__(self, path: Path, board_path: Path | None = None) -> None:
        """board_path: also give the board's end a path (a device app that opens its serial
        port by name, as firmware/config.py's transport.port does on the simulator)."""
        self.path = path
        self.board_path = board_path
        self._stop = threading.Event()
        self.board_master, self.board_fd = os.openpty()
        self.host_master, self.host_slave = os.openpty()
        for fd in (self.board_master, self.board_fd, self.host_master, self.host_slave):
            tty.setraw(fd)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        path.symlink_to(os.ttyname(self.host_slave))
        if board_path is not None:
            with contextlib.suppress(FileNotFoundError):
                board_path.unlink()
            board_path.symlink_to(os.ttyname(self.board_fd))
        self.thread = threading.Thread(target=self._relay, name="cable", daemon=True)
        self.thread.start()

    def _relay(self) -> None:
        peers = {self.board_master: self.host_master, self.host_master: self.board_master}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(list(peers), [], [], 0.05)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, RELAY_CHUNK)
                except OSError as e:
                    if e.errno in (errno.EIO, errno.EAGAIN):
                        continue  # the other side has no reader right now
                    return
                view = memoryview(data)
                while view:
                    try:
                        n = os.write(peers[fd], view)
                    except OSError:
                        break
                    view = view[n:]

    def unplug(self) -> None:
        """Pull the cable: the port's path disappears and the relay stops."""
        self._stop.set()
        self.thread.join(2)
        for link in (self.path, self.board_path):
            if link is not None:
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
        for fd in (self.board_master, self.host_master, self.host_slave, self.board_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class SimulatedBoard:
    """A unix-port "board" with LittleFS flash behind a VirtualCable at `port`."""

    def __init__(
        self,
        port: Path,
        image: Path,
        *,
        profile: dict[str, Any] | None = None,
        size: int | None = None,
        heap: str = "512k",
    ) -> None:
        if profile is None:
            from hardware import profiles

            profile = profiles.load("unix-sim")
        st = profile["storage"]
        block_size = int(st["block_size"])
        blocks = (size or int(st["size"])) // block_size
        self.mount = str(st["mount"])
        self.image = image
        self.cable = VirtualCable(port)
        script = LAUNCHER.format(
            root=str(ROOT),
            image=str(image),
            block_size=block_size,
            blocks=blocks,
            mount=self.mount,
            readsize=st["readsize"],
            progsize=st["progsize"],
            lookahead=st["lookahead"],
        )
        self.process = subprocess.Popen(
            [micropython(), "-X", f"heapsize={heap}", "-i", "-c", script],
            stdin=self.cable.board_fd,
            stdout=self.cable.board_fd,
            stderr=self.cable.board_fd,
            close_fds=True,
            cwd=str(image.parent),
        )

    def wait_ready(self, timeout_s: float = BOOT_TIMEOUT_S) -> str:
        """Read the boot output from the host's port until the REPL prompt; returns it.

        A Ctrl-C that arrives while the ROM still mounts the flash would interrupt it, so
        nothing may talk to the board before this returns."""
        fd = os.open(self.cable.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        out = b""
        try:
            end = time.monotonic() + timeout_s
            while not out.endswith(b">>> "):
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the simulated board exited with {self.process.returncode}: {out!r}"
                    )
                if time.monotonic() > end:
                    raise RuntimeError(f"the simulated board did not start its REPL: {out!r}")
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    out += os.read(fd, RELAY_CHUNK)
        finally:
            os.close(fd)
        return out.decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self.cable.unplug()

    def __enter__(self) -> SimulatedBoard:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
