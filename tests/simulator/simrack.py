"""A real hall for the ``hcp sim devices`` tests: ``hcp agent run`` as a subprocess (heartbeat
1 s, so a pulled cable shows within seconds), one window per device with staff signed in,
and a DeviceRack of real-firmware devices with the control API served by uvicorn on a free
port, in a background thread's event loop (Playwright's sync API and the tests' httpx calls
run in the test thread)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from edge_agent import registry
from edge_agent.config import load_config
from edge_agent.store import Store, now_ms
from protocol import messages as M
from simulator.control_api import make_app
from simulator.rack import DeviceRack, new_specs
from simulator.vdevice import free_port

HCP = Path(sys.executable).parent / "hcp"
HALL_ID = "H330203001"


class SimHall:
    def __init__(self, root: Path, count: int = 2, *, mqtt: bool = False) -> None:
        """mqtt: the devices link over the agent's embedded broker (through their relays)."""
        self.root = root
        self.dev_dir = root / "devices"
        self.specs = new_specs(self.dev_dir, count)
        self.broker: tuple[str, int] | None = None
        if mqtt:
            self.broker = ("127.0.0.1", free_port())
            for spec in self.specs:
                spec.transport = "mqtt"
        self.windows = {s.device_id: f"W{i + 1:02d}" for i, s in enumerate(self.specs)}
        self.agent_port = free_port()
        self.agent_url = f"http://127.0.0.1:{self.agent_port}"
        links = "".join(
            f'\n[[serial]]\ndevice = "{s.device_id}"\nport = "{self.dev_dir / s.device_id}.tty"\n'
            for s in self.specs
            if s.transport == "serial"
        )
        if self.broker is not None:
            links += f'\n[mqtt]\nhost = "127.0.0.1"\nport = {self.broker[1]}\nembedded = true\n'

        self.config = root / "agent.toml"
        self.config.write_text(
            f"""
[agent]
hall_id = "{HALL_ID}"
data_dir = "data"
listen = "127.0.0.1:{self.agent_port}"
heartbeat_s = 1
log_level = "info"

[policy]
invite_s = 5
thanks_s = 1
qr_base_url = "https://hub.example.gov.cn/r"
{links}""",
            encoding="utf-8",
        )
        cfg = load_config(self.config)
        self.store_path = cfg.store_path
        store = Store(cfg.store_path)
        try:
            for s in self.specs:
                w = self.windows[s.device_id]
                registry.add_window(store, window_id=w, label=f"窗口 {w}", now_ms=now_ms())
                registry.add_device(
                    store,
                    device_id=s.device_id,
                    key=s.key,
                    kind=M.KIND_EVALUATOR,
                    window_id=w,
                    now_ms=now_ms(),
                )
        finally:
            store.close()
        self.agent_log = root / "agent.log"
        self.agent: subprocess.Popen[bytes] | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.rack: DeviceRack | None = None
        self.server: uvicorn.Server | None = None
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.http = httpx.Client(base_url=self.api, timeout=30)

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> SimHall:
        self.thread.start()
        self.agent = subprocess.Popen(
            [str(HCP), "agent", "run", "-c", str(self.config)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=self.agent_log.open("wb"),
            env={**os.environ, "HCP_LANG": "en"},
        )
        self.run(self._start())
        end = time.monotonic() + 30
        while True:
            assert self.agent.poll() is None, self.agent_log.read_text()
            try:
                httpx.get(self.agent_url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < end, "the agent's HTTP never came up"
                time.sleep(0.1)
        for s in self.specs:
            r = httpx.post(
                f"{self.agent_url}/api/v1/windows/{self.windows[s.device_id]}/sign-in",
                json={"staff_id": f"S-{s.device_id}", "name": "王小明", "number": "A0123"},
            )
            assert r.status_code == 200, r.text
        for s in self.specs:
            self.wait_state(s.device_id, lambda st: st["online"] and st["config_version"] > 0, 60)
        return self

    async def _start(self) -> None:
        self.rack = DeviceRack(
            self.dev_dir, self.specs, hall_id=HALL_ID, broker=self.broker, seed=1
        )
        await self.rack.start()
        self.server = uvicorn.Server(
            uvicorn.Config(
                make_app(self.rack),
                host="127.0.0.1",
                port=self.api_port,
                log_level="warning",
                lifespan="off",
            )
        )
        self.serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            await self.serving
        if self.rack is not None:
            await self.rack.stop()
            self.rack.close()

    def stop(self) -> None:
        self.http.close()
        try:
            self.run(self._stop(), 60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if self.agent is not None and self.agent.poll() is None:
                self.agent.send_signal(signal.SIGTERM)
                try:
                    self.agent.wait(20)
                except subprocess.TimeoutExpired:
                    self.agent.kill()
                    self.agent.wait(5)

    # ---- what the tests look at ----
    def state(self, device_id: str) -> dict[str, Any]:
        r = self.http.get(f"/api/devices/{device_id}")
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def wait_state(
        self, device_id: str, pred: Callable[[dict[str, Any]], Any], timeout: float = 30
    ) -> dict[str, Any]:
        end = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            d = self.state(device_id)
            last = d["state"]
            if last is not None and pred(last):
                return last
            assert time.monotonic() < end, f"{device_id}: state not reached, last {last}"
            time.sleep(0.1)

    def post(self, device_id: str, what: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"/api/devices/{device_id}/{what}", json=body)

    def ratings(self, device_id: str) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=10) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM ratings WHERE device_id = ? ORDER BY seq", (device_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def wait_ratings(self, device_id: str, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while True:
            rows = self.ratings(device_id)
            if len(rows) >= n:
                return rows
            assert time.monotonic() < end, f"{device_id}: {len(rows)} of {n} ratings stored"
            time.sleep(0.1)

    def refused(self, device_id: str) -> dict[str, int]:
        """The agent's frames_refused_total for this device, by code."""
        text = httpx.get(self.agent_url + "/metrics", timeout=10).text
        out: dict[str, int] = {}
        pat = re.compile(r"^hcp_agent_frames_refused_total\{(.*)\} (\d+)", re.M)
        for labels, n in pat.findall(text):
            if f'device="{device_id}"' in labels:
                code = re.search(r'code="([^"]+)"', labels)
                out[code.group(1) if code else "?"] = int(n)
        return out

    def press(self, device_id: str, level: int) -> None:
        """A citizen's press of `level` (1…3: no reason screen); waits for its thanks."""
        before = self.state(device_id)["state"]["next_seq"]
        r = self.post(device_id, "press", {"button": level - 1, "ms": 80})
        assert r.status_code == 200, r.text
        self.wait_state(device_id, lambda s: s["next_seq"] > before, 20)
        time.sleep(0.1)  # released long enough for the next edge
