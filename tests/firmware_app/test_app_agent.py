"""The device app against the real hall agent (edge_agent.Agent, what `hcp agent run`
runs) over real ptys: the agent's serial port and the device's are two ptys joined by a
null-modem bridge (bytes copied both ways, as a cable does). The agent sends the window's
state on the handshake; the case API's INVITE reaches the device's screen; a press becomes
a counted rating in the agent's store, and the device's outbox empties on its ACK."""

from __future__ import annotations

import contextlib
import os
import select
import sqlite3
import threading
from pathlib import Path

from edge_agent import registry
from edge_agent.store import Store, now_ms
from protocol import messages as M
from tests.agent.helpers import KEY, AgentThread, Pty, make_config, wait_for
from tests.firmware_app.device import Device, device_json, seed_flash


class Bridge:
    """Copy bytes between two pty masters until stopped (a null-modem cable)."""

    def __init__(self, a: int, b: int) -> None:
        self.a, self.b = a, b
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        peer = {self.a: self.b, self.b: self.a}
        while not self.stop:
            r, _, _ = select.select([self.a, self.b], [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                with contextlib.suppress(OSError):  # a full buffer: the sessions resend
                    os.write(peer[fd], data)

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)


def test_device_app_with_the_real_agent(fw_build: Path, tmp_path: Path) -> None:
    agent_pty = Pty(tmp_path / "tty-agent")
    dev_pty = Pty(tmp_path / "tty-dev")
    bridge = Bridge(agent_pty.master, dev_pty.master)
    cfg = make_config(
        tmp_path / "data", serial=[{"device": "EV-0001", "port": str(agent_pty.path)}]
    )
    store = Store(cfg.store_path)
    registry.add_window(store, window_id="W01", label="综合窗口 01", now_ms=now_ms())
    registry.add_device(
        store, device_id="EV-0001", key=KEY, kind=M.KIND_EVALUATOR, window_id="W01",
        now_ms=now_ms(),
    )  # fmt: skip
    store.close()
    image = tmp_path / "flash.img"
    seed_flash(fw_build, image, device_json(str(dev_pty.path)))
    agent = AgentThread(cfg).start()
    dev = Device(fw_build, image).start()

    def sql(q: str) -> list[tuple[object, ...]]:
        c = sqlite3.connect(cfg.store_path)
        try:
            return c.execute(q).fetchall()
        finally:
            c.close()

    try:
        ctl = dev.control()
        wait_for(lambda: (s := ctl("state"))["online"] and s["config_version"] > 0, 20)
        wait_for(lambda: sql("SELECT online, board, kind FROM devices")[0] == (1, "unix-sim", 1))
        r = agent.http(
            "POST",
            "/api/v1/windows/W01/sign-in",
            json={"staff_id": "S001", "name": "王小明", "number": "A0123"},
        )
        assert r.status_code < 300, r.text
        r = agent.http(
            "POST",
            "/api/v1/cases",
            json={"case_no": "C-1", "window_id": "W01", "item_name": "居民身份证换领"},
        )
        assert r.status_code < 300, r.text
        r = agent.http("POST", "/api/v1/cases/finish", json={"case_no": "C-1"})
        assert r.status_code < 300, r.text
        wait_for(lambda: ctl("state")["ui"] == "invite", 15)
        assert ctl("click", button=0)["ok"]
        wait_for(lambda: sql("SELECT binding, case_no, staff_id, level FROM ratings"), 15)
        assert sql("SELECT binding, case_no, staff_id, level FROM ratings") == [
            ("counted", "C-1", "S001", 1)
        ]
        wait_for(lambda: ctl("state")["outbox_depth"] == 0, 15)
        ctl.close()
    finally:
        dev.kill()
        agent.stop()
        bridge.close()
        agent_pty.close()
        dev_pty.close()
