"""Helpers for the agent tests: configurations, an in-process agent thread, real ptys.

- ``make_config``: an AgentConfig over a temporary data dir (parsed from TOML-shaped data,
  so the tests go through the same validation as agent.toml).
- ``AgentThread``: the real ``Agent`` (HTTP server, links, sweeper, store) on its own event
  loop in a background thread, listening on an ephemeral port.
- ``Pty``: a real pseudo-terminal pair (os.openpty) with a stable path (a symlink to the
  slave), which can vanish and come back as a new pty, as a replugged USB adapter does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import tty
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, parse_config

T = TypeVar("T")
KEY = bytes(range(32))
HALL = "H330201001"


def config_data(data_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agent": {
            "hall_id": HALL,
            "data_dir": str(data_dir),
            "listen": "127.0.0.1:0",
            "heartbeat_s": 2,
        },
        "policy": {"invite_s": 60, "qr_base_url": "https://hub.example.gov.cn/r"},
    }
    for name, values in sections.items():
        if isinstance(values, list):
            data[name] = values
        else:
            data.setdefault(name, {}).update(values)
    return data


def make_config(data_dir: Path, **sections: Any) -> AgentConfig:
    return parse_config(config_data(data_dir, **sections), base=data_dir)


def wait_for(pred: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


class AgentThread:
    """The real agent on its own loop in a thread; HTTP on an ephemeral port."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.agent = Agent(cfg)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="agent", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.agent.run(install_signals=False)

        try:
            asyncio.run(main())
        except BaseException as e:  # reported by start()/stop()
            self.error = e

    def start(self) -> AgentThread:
        self.thread.start()
        wait_for(lambda: self.agent.port is not None or self.error is not None)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.agent.stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), "the agent did not stop"
        if self.error is not None:
            raise self.error

    def __enter__(self) -> AgentThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.call(self.agent.db.run(fn, *args, **kwargs))

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"http://127.0.0.1:{self.agent.port}{path}"
        return httpx.request(method, url, timeout=10, **kwargs)

    def link(self, device_id: str) -> Any:
        return next(link for link in self.agent.links if link.device_id == device_id)


class Pty:
    """A pty pair; ``path`` is a symlink to the slave that the agent is configured with."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing before the agent opens it
        tty.setraw(self.master)
        os.set_blocking(self.master, False)  # a dead agent must not block the device
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        """The adapter is pulled: the device node disappears, open ports fail."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.slave = -1

    def close(self) -> None:
        self.unplug()
