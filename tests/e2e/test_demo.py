"""``hcp demo`` as a newcomer runs it: one command, a scripted duration, the accounting line
and exit 0; Ctrl-C stops it cleanly. Afterwards no process of the demo is left and nothing
listens on the ports it printed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HCP = Path(sys.executable).parent / "hcp"


def _processes_in(path: Path) -> list[str]:
    """Command lines of running processes that name `path` (the demo's workspace)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmd and "pytest" not in cmd:
            out.append(f"{pid}: {cmd}")
    return out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ports(text: str) -> set[int]:
    return {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}


def test_demo_runs_for_a_duration_and_accounts(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    r = subprocess.run(
        [str(HCP), "--lang", "en", "demo", "--duration", "45", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "HCP_LANG": "en"},
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "12 virtual evaluators" in out and "6 serial, 6 MQTT" in out, out
    assert "first rating at the hub" in out, out
    m = re.search(
        r"accounting: (\d+) ratings thanked by the devices, (\d+) of them at the hub, "
        r"0 missing, 0 duplicated, 0 bound wrongly; 差评 (\d+), work orders (\d+)",
        out,
    )
    assert m is not None, out[-3000:]
    thanked, found, bad, orders = (int(g) for g in m.groups())
    assert thanked > 0 and found == thanked and orders == bad, out
    assert "stopped: every child process has exited" in out
    assert _processes_in(data) == []
    ports = _ports(out)
    assert len(ports) >= 4  # hub, agent, broker, technician UI
    assert [p for p in ports if _listening(p)] == []


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    # A session of its own: the signal goes to its whole process group, as Ctrl-C does.
    p = subprocess.Popen(
        [str(HCP), "demo", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "HCP_LANG": "zh-CN"},
    )
    assert p.stdout is not None
    out = ""
    try:
        end = time.monotonic() + 180
        for line in p.stdout:
            out += line
            if line.startswith("["):  # the first live summary: the hall is running
                break
            assert time.monotonic() < end, out
        assert "大厅开门" in out, out
        # While it runs, each printed URL answers: hub health, agent health, technician UI.
        hub = re.search(r"中心平台（SQLite）：(http://[0-9.:]+)", out)
        agent = re.search(r"大厅代理：(http://[0-9.:]+)", out)
        ui = re.search(r"技术员界面[^：]*：(http://[0-9.:]+)/", out)
        assert hub and agent and ui, out
        assert httpx.get(hub[1] + "/api/v1/health", timeout=10).status_code == 200
        health = httpx.get(agent[1] + "/healthz", timeout=10).json()
        assert health["hub_sync"] is not None and health["brokers"]["mqtt"]["state"] == "connected"
        page = httpx.get(ui[1] + "/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        devices = httpx.get(ui[1] + "/api/devices", timeout=10).json()
        assert len(devices) == 12
        os.killpg(p.pid, signal.SIGINT)
        rest, _ = p.communicate(timeout=60)
        out += rest
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, out[-3000:]
    assert "正在停止" in out and "已停止：全部子进程已退出" in out, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    assert _processes_in(data) == []
    assert [port for port in _ports(out) if _listening(port)] == []
