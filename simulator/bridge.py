"""The serial cable between a virtual device and the agent: two ptys and a relay between
their masters that can be pulled, made noisy, slowed down and paced to a baud rate.

Strategy: the device opens one pty (``dev_path``), the agent the other (``agent_path``, a
stable symlink that agent.toml names); the relay copies bytes between the two masters in
the asyncio loop, one ``Lane`` per direction. Faults apply per byte as it passes:

- **pulled**: nothing passes; bytes written meanwhile are read and discarded (a pulled cable
  carries nothing, and the writer must not block on a full pty buffer);
- **drop** / **corrupt**: each byte is lost, or has one random bit flipped, with that
  probability (line noise: the frame CRC catches it, the link session resends);
- **delay_ms**: every byte arrives this much later (queued, order kept);
- **baud**: bytes leave at baud/10 per second (8N1: ten bit times per byte), as a real UART
  paces them; 0 relays as fast as the ptys go.

A full destination buffer drops the rest of a write (the receiver is not reading: a stopped
agent); the counters say how many bytes went which way and what the faults did.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import socket
import time
import tty
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

READ_MAX = 4096
PACE_S = 0.005  # a paced lane writes this much time's worth of bytes at once
IDLE_S = 0.05  # a paced lane idle longer than this starts its schedule afresh


class FaultError(ValueError):
    """A fault setting out of range, in both languages."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


@dataclass
class Faults:
    drop: float = 0.0  # probability per byte
    corrupt: float = 0.0  # probability per byte
    delay_ms: int = 0
    baud: int = 0  # 0: unpaced

    def check(self) -> None:
        for name in ("drop", "corrupt"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
                raise FaultError(
                    f"{name} 应为 0…1 之间的概率，实际为 {v!r}",
                    f"{name} must be a probability in 0…1, got {v!r}",
                )
        d = self.delay_ms
        if not (isinstance(d, int) and 0 <= d <= 60_000):
            raise FaultError(
                f"delay_ms 应为 0…60000，实际为 {d!r}", f"delay_ms must be 0…60000, got {d!r}"
            )
        b = self.baud
        if not (isinstance(b, int) and (b == 0 or 300 <= b <= 4_000_000)):
            raise FaultError(
                f"baud 应为 0（不限速）或 300…4000000，实际为 {b!r}",
                f"baud must be 0 (unpaced) or 300…4000000, got {b!r}",
            )

    def updated(self, **fields: Any) -> Faults:
        """These settings with some changed (the others stay); a bad value raises FaultError."""
        unknown = set(fields) - set(asdict(self))
        if unknown:
            names = ", ".join(sorted(unknown))
            raise FaultError(f"未知的故障设置：{names}", f"unknown fault setting(s): {names}")
        new = Faults(**{**asdict(self), **fields})
        new.check()
        return new


class Pty:
    """A raw pty pair; `path` (optional) is a stable symlink to the slave."""

    def __init__(self, path: Path | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self.slave)
        self.path = path
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            path.symlink_to(self.name)

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def new_counters() -> dict[str, int]:
    names = ("read", "written", "dropped", "corrupted", "unplugged", "overflow")
    return dict.fromkeys((*names, "paced_bytes", "paced_us"), 0)


class Lane:
    """One direction of the cable."""

    def __init__(
        self,
        cable: Cable | TcpCable,
        src: int,
        dst: int,
        counters: dict[str, int] | None = None,
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        self.cable = cable
        self.src = src
        self.dst = dst
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.wake = asyncio.Event()
        self.next_free = 0.0  # paced: when the line is free for the next byte
        self.last_write: tuple[float, int] | None = None  # paced: (when, bytes)
        self.counters = counters if counters is not None else new_counters()
        self.on_eof = on_eof  # a socket's end closed (a pty has none)
        self.task: asyncio.Task[None] | None = None

    def on_readable(self) -> None:
        try:
            data = os.read(self.src, READ_MAX)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if self.on_eof is not None:
                self.on_eof()
            return
        c = self.counters
        c["read"] += len(data)
        if not self.cable.plugged:
            c["unplugged"] += len(data)
            return
        f = self.cable.faults
        if f.drop or f.corrupt:
            data = self._noise(data, f)
        if not data:
            return
        if not f.delay_ms and not f.baud and not self.queue:
            self._write(data)
            return
        self.queue.append((time.monotonic() + f.delay_ms / 1000, data))
        self.wake.set()

    def _noise(self, data: bytes, f: Faults) -> bytes:
        rnd = self.cable.random
        out = bytearray()
        for b in data:
            if f.drop and rnd.random() < f.drop:
                self.counters["dropped"] += 1
                continue
            if f.corrupt and rnd.random() < f.corrupt:
                b ^= 1 << rnd.randrange(8)
                self.counters["corrupted"] += 1
            out.append(b)
        return bytes(out)

    def _write(self, data: bytes) -> None:
        try:
            n = os.write(self.dst, data)
        except OSError:  # BlockingIOError: nobody reads the other end
            n = 0
        self.counters["written"] += n
        self.counters["overflow"] += len(data) - n

    async def run(self) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            due, data = self.queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.queue.popleft()
            baud = self.cable.faults.baud
            if not baud:
                self._write(data)
                continue
            rate = baud / 10  # bytes per second
            piece = max(1, int(rate * PACE_S))
            if self.next_free < time.monotonic() - IDLE_S:  # the line was idle
                self.next_free = time.monotonic()
            for i in range(0, len(data), piece):
                now = time.monotonic()
                waited = self.next_free > now
                if waited:
                    await asyncio.sleep(self.next_free - now)
                if not self.cable.plugged:  # pulled while it was on the line
                    self.counters["unplugged"] += len(data) - i
                    break
                chunk = data[i : i + piece]
                t = time.monotonic()
                if waited and self.last_write is not None:
                    # The line was busy until now with the previous chunk: the rate as
                    # measured by the clock is paced_bytes / paced_us.
                    self.counters["paced_bytes"] += self.last_write[1]
                    self.counters["paced_us"] += int((t - self.last_write[0]) * 1e6)
                self.last_write = (t, len(chunk))
                self._write(chunk)
                # From the schedule, not from now: a late wake-up is made up, as a UART
                # keeps its bit clock however late the CPU feeds it.
                self.next_free += len(chunk) / rate

    def flush_queue(self) -> None:
        for _, data in self.queue:
            self.counters["unplugged"] += len(data)
        self.queue.clear()


class Cable:
    """Two ptys and the relay between them (see the module docstring)."""

    def __init__(self, agent_path: Path, *, seed: int | None = None) -> None:
        self.agent_end = Pty(agent_path)
        self.dev_end = Pty()
        self.plugged = True
        self.faults = Faults()
        self.random = random.Random(seed)
        self.up = Lane(self, self.dev_end.master, self.agent_end.master)  # device → agent
        self.down = Lane(self, self.agent_end.master, self.dev_end.master)  # agent → device
        self._started = False

    @property
    def agent_path(self) -> Path:
        assert self.agent_end.path is not None
        return self.agent_end.path

    @property
    def dev_path(self) -> str:
        """The device side's tty (device.json's transport.port)."""
        return self.dev_end.name

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for lane in (self.up, self.down):
            loop.add_reader(lane.src, lane.on_readable)
            lane.task = asyncio.create_task(lane.run())
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        loop = asyncio.get_running_loop()
        for lane in (self.up, self.down):
            loop.remove_reader(lane.src)
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
        self._started = False

    def plug(self, plugged: bool) -> None:
        self.plugged = plugged
        if not plugged:
            self.up.flush_queue()
            self.down.flush_queue()

    def set_faults(self, **fields: Any) -> Faults:
        """Change some fault settings (the others stay); a bad value changes nothing."""
        self.faults = self.faults.updated(**fields)
        return self.faults

    def snapshot(self) -> dict[str, Any]:
        return {
            "plugged": self.plugged,
            "faults": asdict(self.faults),
            "up": dict(self.up.counters),
            "down": dict(self.down.counters),
        }

    def close(self) -> None:
        self.agent_end.close()
        self.dev_end.close()


class TcpCable:
    """The network path of an MQTT device: a TCP relay on a local port in front of the
    broker, with the serial cable's faults. Pulling it closes the device's connections and
    refuses new ones (the device and the broker both see the link drop at once, as after a
    switch port goes down and the keepalive expires)."""

    def __init__(self, target: tuple[str, int], *, seed: int | None = None) -> None:
        self.target = target
        self.plugged = True
        self.faults = Faults()
        self.random = random.Random(seed)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])
        self.up_counters = new_counters()
        self.down_counters = new_counters()
        self.connections = 0
        self._pairs: list[tuple[socket.socket, socket.socket, Lane, Lane]] = []
        self._started = False

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.listener.fileno(), self._accept)
        self._started = True

    def _accept(self) -> None:
        try:
            dev, _ = self.listener.accept()
        except OSError:
            return
        if not self.plugged:
            dev.close()
            return
        try:
            broker = socket.create_connection(self.target, timeout=2)
        except OSError:
            dev.close()
            return
        self.connections += 1
        dev.setblocking(False)
        broker.setblocking(False)
        loop = asyncio.get_running_loop()
        holder: list[tuple[socket.socket, socket.socket, Lane, Lane]] = []

        def eof() -> None:  # either end closed: the other is closed too
            self._close(holder[0])

        up = Lane(self, dev.fileno(), broker.fileno(), self.up_counters, eof)
        down = Lane(self, broker.fileno(), dev.fileno(), self.down_counters, eof)
        holder.append((dev, broker, up, down))
        self._pairs.append(holder[0])
        for lane in (up, down):
            loop.add_reader(lane.src, lane.on_readable)
            lane.task = asyncio.create_task(lane.run())

    def _close(self, pair: tuple[socket.socket, socket.socket, Lane, Lane]) -> None:
        if pair not in self._pairs:
            return
        self._pairs.remove(pair)
        dev, broker, up, down = pair
        loop = asyncio.get_running_loop()
        for lane in (up, down):
            loop.remove_reader(lane.src)
            if lane.task is not None:
                lane.task.cancel()
        dev.close()
        broker.close()

    def plug(self, plugged: bool) -> None:
        self.plugged = plugged
        if not plugged:
            for pair in list(self._pairs):
                self._close(pair)

    def set_faults(self, **fields: Any) -> Faults:
        """Change some fault settings (the others stay); a bad value changes nothing."""
        self.faults = self.faults.updated(**fields)
        return self.faults

    def snapshot(self) -> dict[str, Any]:
        return {
            "plugged": self.plugged,
            "faults": asdict(self.faults),
            "relay_port": self.port,
            "connections": self.connections,
            "up": dict(self.up_counters),
            "down": dict(self.down_counters),
        }

    async def stop(self) -> None:
        if self._started:
            asyncio.get_running_loop().remove_reader(self.listener.fileno())
            self._started = False
        for pair in list(self._pairs):
            self._close(pair)

    def close(self) -> None:
        self.listener.close()
