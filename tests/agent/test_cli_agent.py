"""``hcp agent …`` as a hall administrator uses it: the installed entry point, subprocesses.

Also the whole agent process once: ``hcp agent run`` with a device on a pty and a case over
HTTP, then SIGTERM; its log is JSON lines without the device key or unmasked personal data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge_agent import schema
from protocol import messages as M
from simulator.peer import DevicePeer
from tests.agent.helpers import Pty
from tools import cli

HCP = Path(sys.executable).parent / "hcp"


def hcp(*args: str, cwd: Path, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HCP_LANG": lang}
    return subprocess.run(
        [str(HCP), "agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def write_config(tmp_path: Path, extra: str = "", port: int = 0) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[agent]
hall_id = "H330201001"
data_dir = "data"
listen = "127.0.0.1:{port}"
heartbeat_s = 5

[policy]
invite_s = 30
qr_base_url = "https://hub.example.gov.cn/r"
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_admin_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process (tools.cli.main), as tests/test_cli.py does; the entry point is run as a
    subprocess by the tests below."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HCP_LANG", "en")
    monkeypatch.setenv("HCP_AGENT_CONFIG", "agent.toml")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["agent", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    write_config(tmp_path)
    code, out, err = run("init")
    assert code == 0 and f"schema version {schema.LATEST}" in out, err
    assert run("add-window", "W01", "--label", "综合窗口 01")[0] == 0
    code, out, err = run(
        "add-device", "EV-1", "--kind", "evaluator", "--window", "W01", "--generate-key", "ev1.key"
    )
    assert code == 0, err
    key_file = tmp_path / "ev1.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_hex = key_file.read_text().strip()
    assert len(key_hex) == 64 and key_hex not in out + err
    (tmp_path / "qr.key").write_text("00" * 16)
    assert run("add-device", "QR-1", "--kind", "qr", "--key-file", "qr.key")[0] == 0
    assert run("bind", "QR-1", "--window", "W01")[0] == 0
    code, out, err = run("add-device", "CB-1", "--kind", "combined", "--window", "W01")
    assert code == 1 and "one evaluator and one QR code per window" in err
    code, out, err = run("add-device", "EV-2", "--key-file", "missing.key")
    assert code == 1 and err.startswith("hcp: cannot read the key file")
    code, out, _ = run("devices", "--json")
    devices = {d["device_id"]: d for d in json.loads(out)}
    assert devices["EV-1"]["window_id"] == "W01" and devices["EV-1"]["has_key"]
    assert key_hex not in out and "key" not in devices["EV-1"] and "CB-1" not in devices
    assert run("quarantine", "EV-1")[0] == 0
    assert "quarantine=admin" in run("devices")[1]
    assert "EV-1,QR-1" in run("windows")[1]
    code, out, _ = run("qr-secret", "-o", "qr-secret.json")
    secret = json.loads((tmp_path / "qr-secret.json").read_text())
    assert code == 0 and secret["kid"] == 1 and len(secret["secret_hex"]) == 64
    assert secret["secret_hex"] not in out
    code, _, err = run("qr-secret", "-o", "qr-secret.json")
    assert code == 1 and "not overwritten" in err
    assert run("openapi", "--check")[0] == 0


def test_bad_configuration_stops_the_start(tmp_path: Path) -> None:
    write_config(tmp_path, extra="reason_s = 'sixty'")
    r = hcp("run", "-c", "agent.toml", cwd=tmp_path, lang="zh-CN")
    assert r.returncode == 1
    assert r.stderr.startswith("hcp: 配置错误：") and "policy.reason_s" in r.stderr
    r = hcp("check-config", "-c", "missing.toml", cwd=tmp_path)
    assert r.returncode == 1 and "cannot read" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        write_config(tmp_path, port=taken.getsockname()[1])
        r = hcp("run", "-c", "agent.toml", cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.startswith("hcp: cannot listen on 127.0.0.1:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_agent_process_logs_json_without_secrets(tmp_path: Path) -> None:
    pty = Pty(tmp_path / "tty-ev1")
    port = _free_port()
    write_config(tmp_path, extra=f'\n[[serial]]\ndevice = "EV-1"\nport = "{pty.path}"\n', port=port)
    key_hex = bytes(range(100, 132)).hex()
    (tmp_path / "ev1.key").write_text(key_hex)
    for args in (
        ("add-window", "W01", "--label", "综合窗口 01"),
        ("add-device", "EV-1", "--kind", "combined", "--window", "W01", "--key-file", "ev1.key"),
    ):
        assert hcp(*args, "-c", "agent.toml", cwd=tmp_path).returncode == 0
    log = tmp_path / "agent.log"
    proc = subprocess.Popen(
        [str(HCP), "agent", "run", "-c", "agent.toml"],
        cwd=tmp_path,
        stderr=log.open("wb"),
        stdout=subprocess.DEVNULL,
    )
    try:
        peer = DevicePeer(pty.master, bytes.fromhex(key_hex), device_id="EV-1")
        peer.connect()
        peer.run_until(lambda: peer.link_ups and peer.last(M.CONFIG), timeout=20)
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < end, "HTTP never came up"
                time.sleep(0.1)
        post = lambda p, b: httpx.post(base + p, json=b, timeout=5)  # noqa: E731
        assert (
            post(
                "/api/v1/windows/W01/sign-in", {"staff_id": "S1", "name": "王小明", "number": "1"}
            ).status_code
            == 200
        )
        r = post(
            "/api/v1/cases",
            {
                "case_no": "C-1",
                "window_id": "W01",
                "applicant_name": "张三丰",
                "applicant_phone": "13812345678",
            },
        )
        assert r.status_code == 201
        invite = post("/api/v1/cases/finish", {"case_no": "C-1"}).json()["invite_id"]
        peer.run_until(lambda: peer.invites())
        seq = peer.press(5, invite=invite, reasons=[501])
        peer.run_until(lambda: peer.acked >= seq)
        post("/api/v1/cases", {"case_no": "C-1", "window_id": "W01"})  # refused: logged
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        pty.close()
    text = log.read_text(encoding="utf-8")
    events = [json.loads(line)["event"] for line in text.splitlines()]
    for expected in ("agent.started", "port.attached", "link.up", "api.refused", "agent.stopped"):
        assert expected in events, (expected, events)
    for leaked in (key_hex, key_hex.upper(), "张三丰", "13812345678"):
        assert leaked not in text
