"""A real hall for the simulator tests and benchmark: ``hcp agent run`` as a subprocess,
its windows and devices registered in its store, CPython device peers on real ptys.

``AgentHall(dir, scenario)`` registers every scenario window with one combined device
(``EV-<window>``, a random key), writes agent.toml naming the peers' pty symlinks as serial
ports, starts the agent process on a free port and waits until every link is up.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from edge_agent import registry
from edge_agent.config import load_config
from edge_agent.store import Store, now_ms
from protocol import messages as M
from simulator.devices import PeerHall
from simulator.scenario import Scenario

HCP = Path(sys.executable).parent / "hcp"
HALL_ID = "H330203001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentHall:
    def __init__(
        self,
        root: Path,
        scenario: Scenario,
        *,
        thanks_s: int = 1,
        invite_s: int = 60,
        peers: bool = True,
        kind: int = M.KIND_COMBINED,
    ) -> None:
        """peers=False: no devices here; their keys go to root/devices/<id>.key and the
        agent waits for ports root/devices/<id>.tty (``hcp sim run --peers`` makes them)."""
        self.root = root
        self.keys = {f"EV-{w.window_id}": secrets.token_bytes(32) for w in scenario.windows}
        self.device_dir = root / "devices"
        self.peers = PeerHall(self.device_dir, self.keys) if peers else None
        if not peers:
            self.device_dir.mkdir()
            for d, key in self.keys.items():
                (self.device_dir / f"{d}.key").write_text(key.hex())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        serial = "".join(
            f'\n[[serial]]\ndevice = "{d}"\nport = "{self.device_dir / f"{d}.tty"}"\n'
            for d in self.keys
        )
        self.config = root / "agent.toml"
        self.config.write_text(
            f"""
[agent]
hall_id = "{HALL_ID}"
data_dir = "data"
listen = "127.0.0.1:{self.port}"
heartbeat_s = 5
log_level = "warning"

[policy]
invite_s = {invite_s}
thanks_s = {thanks_s}
qr_base_url = "https://hub.example.gov.cn/r"
{serial}""",
            encoding="utf-8",
        )
        cfg = load_config(self.config)
        self.store_path = cfg.store_path
        store = Store(cfg.store_path)
        try:
            for w in scenario.windows:
                registry.add_window(store, window_id=w.window_id, label=w.label, now_ms=now_ms())
                registry.add_device(
                    store,
                    device_id=f"EV-{w.window_id}",
                    key=self.keys[f"EV-{w.window_id}"],
                    kind=kind,
                    window_id=w.window_id,
                    now_ms=now_ms(),
                )
        finally:
            store.close()
        self.log = root / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(HCP), "agent", "run", "-c", str(self.config)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            env={**os.environ, "HCP_LANG": "en"},
        )
        if self.peers is not None:
            await self.peers.start()
        end = time.monotonic() + 30
        async with httpx.AsyncClient() as http:
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    await http.get(self.url + "/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < end, "the agent's HTTP never came up"
                    await asyncio.sleep(0.1)
        if self.peers is not None:
            down = await self.peers.wait_linked(30)
            assert not down, f"links not up: {down}"

    def devices(self) -> dict[str, Any]:
        assert self.peers is not None
        return dict(self.peers.devices)

    async def stop(self) -> None:
        if self.peers is not None:
            await self.peers.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.peers is not None:
            self.peers.close()
