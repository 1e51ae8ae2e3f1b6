"""``hcp demo``: a whole service hall on this machine, with the code that runs in a real one.

Strategy: the demo is an administrator's day compressed into one command. In a throwaway
workspace (or ``--data DIR``) it

1. sets up the hub on SQLite the way the hub operator does (migrate, ``add-hall``,
   ``issue-token``, through the same service functions as ``hcp hub``) and starts
   ``hcp hub serve`` as a child process;
2. writes agent.toml (``[hub]`` sync with the token file, ``[mqtt] embedded = true``, one
   ``[[serial]]`` per serial device), registers the windows and devices in the agent's store
   (edge_agent.registry, what ``hcp agent add-window`` / ``add-device`` call) and starts
   ``hcp agent run``;
3. starts one real-firmware device per window (MicroPython unix port, ``unix-sim`` board):
   even windows over MQTT through the embedded broker, odd ones over a pty pair that stands
   in for the serial cable (``Fleet``);
4. plays the hall scenario (simulator.engine) at ``--speed`` against the agent's case API,
   pressing the devices' buttons through their control channel;
5. prints a live summary every few seconds, read from where each figure lives (the hub's
   database, the agent's health), and at the end an accounting line: every rating a device
   thanked a citizen for, found exactly once at the hub, and a work order for every 差评.

``Hall`` (hub + agent + fleet, each part stoppable and killable) is also the harness of
tests/e2e and tests/bench/bench_hall.py, so the demo and the fault test run the same setup.
Children run in their own session: Ctrl-C reaches only this process, which then stops the
engine, the devices, the agent and the hub in that order and waits for each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

if TYPE_CHECKING:
    from simulator.firmware import FirmwareDevice

HALL_ID = "H330203001"
HALL_NAME = "示范区政务服务中心"
AREA_CODE = "330203001"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = ROOT / "simulator" / "scenarios" / "default.toml"
START_WAIT_S = 60.0
LINK_WAIT_S = 90.0
DRAIN_WAIT_S = 60.0

T = {
    "help": Text(
        "一条命令运行整个模拟大厅：中心平台、大厅代理、真实固件评价器、办件系统和群众",
        "run a whole simulated hall: hub, agent, real-firmware evaluators, case system, citizens",
    ),
    "data": Text(
        "工作目录（默认：临时目录，结束后删除）",
        "workspace directory (default: a temporary one, removed afterwards)",
    ),
    "duration": Text(
        "运行这么多秒后自动结束（默认：直到 Ctrl-C）",
        "stop after this many seconds (default: run until Ctrl-C)",
    ),
    "windows": Text(
        "窗口（设备）数，至少 12（默认 12）", "windows (devices), at least 12 (default 12)"
    ),
    "speed": Text(
        "模拟时钟倍速（默认 60：1 秒 = 1 分钟）",
        "simulated clock speed factor (default 60: one second is a minute)",
    ),
    "seed": Text("随机种子（默认：场景中的 hall.seed）", "random seed (default: hall.seed)"),
    "every": Text("汇总间隔秒数（默认 5）", "seconds between summaries (default 5)"),
    "scenario": Text("场景文件（默认：内置示范大厅）", "scenario file (default: the demo hall)"),
}

OUT = {
    "workspace": Text("工作目录：{d}", "workspace: {d}"),
    "build": Text(
        "编译固件并准备 {n} 台设备的闪存…", "compiling the firmware, preparing {n} flash images…"
    ),
    "hub": Text(
        "中心平台（SQLite）：{u}  健康：{u}/api/v1/health",
        "hub (SQLite): {u}  health: {u}/api/v1/health",
    ),
    "agent": Text(
        "大厅代理：{u}  健康：{u}/healthz  指标：{u}/metrics  接口文档：{u}/docs",
        "hall agent: {u}  health: {u}/healthz  metrics: {u}/metrics  API docs: {u}/docs",
    ),
    "broker": Text(
        "内置 MQTT 代理：127.0.0.1:{p}（设备账号来自代理登记）",
        "embedded MQTT broker: 127.0.0.1:{p} (device accounts from the agent's registry)",
    ),
    "ui": Text(
        "技术员界面（设备屏幕、按键、故障注入）：{u}/",
        "technician UI (device screens, buttons, faults): {u}/",
    ),
    "devices": Text(
        "{n} 台虚拟评价器（真实固件，MicroPython unix 端口）：串口 {s} 台，MQTT {m} 台；等待连接…",
        "{n} virtual evaluators (real firmware, MicroPython unix port): {s} serial, {m} MQTT;"
        " waiting for their links…",
    ),
    "linked": Text("全部设备已连接（{s:.1f} 秒）", "all devices linked ({s:.1f} s)"),
    "logs": Text("日志：{d}", "logs: {d}"),
    "running": Text(
        "大厅开门：模拟时钟 {speed:g} 倍速；按 Ctrl-C 结束",
        "the hall opens: clock at {speed:g}x; Ctrl-C stops",
    ),
    "summary": Text(
        "[{t:5.0f}s] 模拟 {clock} · 中心评价 {total}（{levels}）· 差评工单 {orders} · "
        "设备在线 {online}/{n} · 代理待发 {queued}（同步 {sync}）",
        "[{t:5.0f}s] simulated {clock} · ratings at hub {total} ({levels}) · 差评 work orders "
        "{orders} · devices online {online}/{n} · agent outbox {queued} (sync {sync})",
    ),
    "first": Text(
        "第一条评价到达中心：启动后 {s:.1f} 秒", "first rating at the hub {s:.1f} s after start"
    ),
    "stopping": Text("正在停止…", "stopping…"),
    "draining": Text("等待代理把评价送到中心…", "waiting for the agent to deliver to the hub…"),
    "account": Text(
        "核对：设备致谢 {thanked} 条评价，中心收到其中 {found} 条，缺失 {missing}，重复 {dup}，"
        "绑定错误 {wrong}；差评 {bad} 条，工单 {orders} 张；"
        "其他按键（如技术员界面）{other} 条{extra}",
        "accounting: {thanked} ratings thanked by the devices, {found} of them at the hub, "
        "{missing} missing, {dup} duplicated, {wrong} bound wrongly; 差评 {bad}, work orders "
        "{orders}; other presses (e.g. the technician UI) {other}{extra}",
    ),
    "interrupted": Text(
        "（提前中断：按键进行中的评价可能尚未核对）",
        " (interrupted: presses in flight may be unaccounted)",
    ),
    "stopped": Text(
        "已停止：全部子进程已退出（用时 {s:.0f} 秒）",
        "stopped: every child process has exited ({s:.0f} s)",
    ),
    "kept": Text("工作目录保留在 {d}", "workspace kept in {d}"),
}

E = {
    "windows": Text("窗口数至少为 12，实际为 {n}", "at least 12 windows, got {n}"),
    "scenario_windows": Text(
        "场景 {p} 只有 {n} 个窗口，少于 {w}", "scenario {p} has {n} windows, fewer than {w}"
    ),
    "start": Text("{what} 未能启动（见 {log}）", "{what} did not start (see {log})"),
    "links": Text(
        "这些设备未能连上代理：{d}（见 {log}）",
        "these devices did not link to the agent: {d} (see {log})",
    ),
    "positive": Text("应为正数，实际为 {v!r}", "must be a positive number, got {v!r}"),
    "source": Text(
        "hcp demo 需要源码树（固件和 MicroPython 设备启动器）：{e}",
        "hcp demo needs the source tree (firmware and the MicroPython device launcher): {e}",
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hcp() -> list[str]:
    exe = Path(sys.executable).parent / "hcp"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("hcp")
    if found is None:
        raise HcpError(Text("找不到 hcp 命令", "the hcp command is not on PATH"))
    return [found]


class Proc:
    """A child ``hcp …`` process with its log file; start, stop (SIGTERM), kill -9."""

    def __init__(self, name: str, argv: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        env = {**os.environ, "HCP_LANG": "en", "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops us in order
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)


async def wait_http(url: str, proc: Proc, timeout: float = START_WAIT_S) -> None:
    import httpx

    end = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if not proc.alive():
                raise HcpError(E["start"].fill(what=proc.name, log=proc.log))
            try:
                if (await http.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise HcpError(E["start"].fill(what=proc.name, log=proc.log))
            await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- the hub


class HubPart:
    """``hcp hub serve`` on a SQLite file, the hall registered and its token issued."""

    def __init__(self, root: Path, hcp: list[str]) -> None:
        self.dir = root / "hub"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.dir / "hub.sqlite3"
        self.db_url = f"sqlite:///{self.db_path}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = self.dir / "hub-token"
        argv = [*hcp, "hub", "serve", "--database-url", self.db_url, "--port", str(self.port)]
        self.proc = Proc("hub", argv, root / "logs" / "hub.log", self.dir)

    def setup(self) -> None:
        """What the hub operator does once: migrate, register the hall, issue its token."""
        from datetime import UTC, datetime

        from hub.auth.service import issue_token
        from hub.db import migrate
        from hub.db.engine import make_engine
        from hub.registry.service import add_hall

        engine = make_engine(self.db_url)
        try:
            migrate.upgrade(engine)
            now = datetime.now(UTC)
            with engine.begin() as c:
                add_hall(
                    hall_id=HALL_ID,
                    name=HALL_NAME,
                    area_code=AREA_CODE,
                    connection=c,
                    now=now,
                    actor="cli:demo",
                )
            with engine.begin() as c:
                new = issue_token(
                    hall_id=HALL_ID,
                    expires_days=None,
                    note="hcp demo",
                    connection=c,
                    now=now,
                    actor="cli:demo",
                )
        finally:
            engine.dispose()
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new.token + "\n")

    async def start(self) -> None:
        self.proc.start()
        await wait_http(self.url + "/api/v1/health", self.proc)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the hub's database (read-only; the hub owns it)."""
        c = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return list(c.execute(sql, args).fetchall())
        finally:
            c.close()


# --------------------------------------------------------------------------- the agent


@dataclass
class DeviceSpec:
    device_id: str
    window_id: str
    label: str
    link: str  # serial | mqtt
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))


class AgentPart:
    """``hcp agent run``: agent.toml, windows and devices registered in its store."""

    def __init__(
        self,
        root: Path,
        hcp: list[str],
        devices: list[DeviceSpec],
        *,
        hub: HubPart | None,
        mqtt_port: int,
        broker: str = "embedded",
        invite_s: int = 20,
        heartbeat_s: int = 5,
    ) -> None:
        """`broker`: "embedded" (amqtt inside the agent) or "external" (a mosquitto the caller
        runs on mqtt_port with the files ``broker_files`` writes)."""
        self.dir = root / "agent"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.devices = devices
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mqtt_port = mqtt_port
        self.config = self.dir / "agent.toml"
        ttys = (root / "devices").resolve()  # the rack's cables (simulator.bridge)
        serial = "".join(
            f'\n[[serial]]\ndevice = "{d.device_id}"\nport = "{ttys / d.device_id}.tty"\n'
            for d in devices
            if d.link == "serial"
        )
        hub_toml = (
            f'\n[hub]\nurl = "{hub.url}"\ntoken_file = "{hub.token_file}"\nbatch = 200\n'
            if hub is not None
            else ""
        )
        if broker == "embedded":
            mqtt = f'\n[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\nembedded = true\n'
        else:
            mqtt = (
                f'\n[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
                f'password_file = "{self.dir / "mqtt-password"}"\n'
            )
        self.config.write_text(
            f"""[agent]
hall_id = "{HALL_ID}"
data_dir = "data"
listen = "127.0.0.1:{self.port}"
heartbeat_s = {heartbeat_s}
log_level = "warning"

[policy]
invite_s = {invite_s}
thanks_s = 1
reason_s = 10
qr_base_url = "https://hub.example.gov.cn/r"
{hub_toml}{mqtt}{serial}""",
            encoding="utf-8",
        )
        self.proc = Proc(
            "agent",
            [*hcp, "agent", "run", "-c", str(self.config)],
            root / "logs" / "agent.log",
            self.dir,
        )
        self.store_path = self.dir / "data" / "agent.sqlite3"

    def register(self) -> None:
        """What the administrator does: windows, then each device with its key and window."""
        from edge_agent import registry
        from edge_agent.config import load_config
        from edge_agent.store import Store, now_ms
        from protocol import messages as M

        cfg = load_config(self.config)
        self.store_path = cfg.store_path
        store = Store(cfg.store_path)
        try:
            for d in self.devices:
                registry.add_window(store, window_id=d.window_id, label=d.label, now_ms=now_ms())
                registry.add_device(
                    store,
                    device_id=d.device_id,
                    key=d.key,
                    kind=M.KIND_EVALUATOR,
                    window_id=d.window_id,
                    now_ms=now_ms(),
                )
        finally:
            store.close()

    def broker_files(self, password_file: Path, acl_file: Path) -> None:
        """mosquitto's accounts and ACLs from the registry (``hcp agent broker-files``)."""
        from edge_agent.broker import agent_password, write_broker_files
        from edge_agent.config import load_config
        from edge_agent.store import Store

        cfg = load_config(self.config)
        assert cfg.mqtt is not None and cfg.mqtt.password_file is not None
        store = Store(cfg.store_path)
        try:
            write_broker_files(
                store,
                hall=cfg.hall_id,
                agent_user=cfg.mqtt.username,
                agent_secret=agent_password(cfg.mqtt.password_file),
                password_file=password_file,
                acl_file=acl_file,
            )
        finally:
            store.close()

    async def start(self) -> None:
        self.proc.start()
        await wait_http(self.url + "/healthz", self.proc)

    async def health(self) -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(timeout=5) as http:
            h: dict[str, Any] = (await http.get(self.url + "/healthz")).json()
            devs = (await http.get(self.url + "/api/v1/devices")).json()
        h["devices_online"] = sum(1 for d in devs if d.get("online"))
        return h


# --------------------------------------------------------------------------- the devices


class Fleet:
    """One real-firmware device per spec in a ``DeviceRack`` (simulator.rack: flash images,
    processes, serial cables with their fault knobs), each pressed through a
    ``FirmwareDevice`` (simulator.firmware) the scenario engine drives. Serial devices'
    agent ends are ``<dir>/<device>.tty``; MQTT ones talk to the broker themselves."""

    def __init__(self, root: Path, specs: list[DeviceSpec], *, mqtt_port: int) -> None:
        try:
            from simulator.firmware import FirmwareDevice
            from simulator.rack import DeviceRack
            from simulator.rack import DeviceSpec as RackSpec
        except ImportError as e:  # an installed hcp without the source tree
            raise HcpError(E["source"].fill(e=e)) from e
        self.dir = (root / "devices").resolve()
        self.log = self.dir / "device.log"
        self.rack = DeviceRack(
            self.dir,
            [RackSpec(s.device_id, s.key, "evaluator", s.link) for s in specs],
            hall_id=HALL_ID,
            broker=("127.0.0.1", mqtt_port),
            seed=7,
        )
        reasons = {4: [501, 502, 503, 504], 5: [501, 502, 503, 504]}
        self.devices: dict[str, FirmwareDevice] = {
            i: FirmwareDevice(i, d.proc.control_port, reasons) for i, d in self.rack.devices.items()
        }

    async def start(self) -> None:
        await self.rack.start()
        for d in self.devices.values():
            await d.connect()

    async def wait_linked(self, timeout: float) -> list[str]:
        results = await asyncio.gather(*(d.wait_linked(timeout) for d in self.devices.values()))
        return [i for i, ok in zip(self.devices, results, strict=True) if not ok]

    async def power_cut(self, device_id: str, off_s: float) -> None:
        """Pull the plug (SIGKILL: no shutdown code runs), wait, power on from the same flash."""
        d = self.devices[device_id]
        await d.close()
        await self.rack.power(device_id, False)
        await asyncio.sleep(off_s)
        await self.rack.power(device_id, True)
        await d.connect()

    async def stop(self) -> None:
        for d in self.devices.values():
            with contextlib.suppress(Exception):
                await d.close()
        await self.rack.stop()

    def close(self) -> None:
        self.rack.close()


def device_specs(
    n: int, labels: dict[str, str] | None = None, windows: list[str] | None = None
) -> list[DeviceSpec]:
    """n evaluators, one per window; even positions on MQTT, odd ones on a serial line."""
    ids = windows or [f"W{i:02d}" for i in range(1, n + 1)]
    out = []
    for i, w in enumerate(ids[:n]):
        link = "serial" if i % 2 == 0 else "mqtt"
        label = (labels or {}).get(w, f"综合窗口 {w[1:]}")
        out.append(DeviceSpec(f"EV-{w}", w, label, link))
    return out


# --------------------------------------------------------------------------- the hub's view


@dataclass
class HubAccount:
    thanked: int
    found: int
    missing: list[str]
    duplicated: list[str]
    wrong: list[str]
    bad: int
    orders: int
    extra: list[str]  # device ratings at the hub the run did not see thanked

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.wrong or self.extra) and (
            self.orders == self.bad
        )


def hub_account(hub: HubPart, expected: list[dict[str, Any]], since: dict[str, int]) -> HubAccount:
    """The hub's ratings from the devices of this run against what the devices thanked for.

    `expected`: one dict per thanked rating: device_id, seq, level, window_id, staff_id (None:
    not checked), case_no (None: no case). `since`: per device, the last seq before the run."""
    rows = hub.query(
        "SELECT device_id, seq, level, window_id, staff_id, case_no, flags, assess_number, id"
        " FROM ratings WHERE source = 'device_press'"
    )
    got: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    for r in rows:
        if int(r[1]) > since.get(str(r[0]), 0):
            got.setdefault((str(r[0]), int(r[1])), []).append(r)
    want = {(e["device_id"], int(e["seq"])): e for e in expected}
    missing = [f"{d}#{s}" for (d, s) in want if (d, s) not in got]
    dup = [f"{d}#{s}" for (d, s), v in got.items() if len(v) > 1]
    extra = [f"{d}#{s}" for (d, s) in got if (d, s) not in want]
    wrong = []
    for key, e in want.items():
        if key not in got:
            continue
        r = got[key][0]
        checks = [("level", r[2], e["level"]), ("window", r[3], e["window_id"])]
        if e.get("staff_id") is not None:
            checks.append(("staff", r[4], e["staff_id"]))
        checks.append(("case", r[5], e.get("case_no")))
        for name, have, should in checks:
            if have != should:
                wrong.append(f"{key[0]}#{key[1]} {name} {have!r} != {should!r}")
    ids = [int(v[0][8]) for k, v in got.items() if k in want]
    bad_ids = [
        int(v[0][8])
        for k, v in got.items()
        if k in want and v[0][2] in (4, 5) and int(v[0][7]) == 1 and not int(v[0][6]) & _not_case()
    ]
    orders = 0
    if bad_ids:
        marks = ",".join("?" * len(bad_ids))
        orders = int(
            hub.query(f"SELECT count(*) FROM work_orders WHERE rating_id IN ({marks})", *bad_ids)[
                0
            ][0]
        )
    del ids
    return HubAccount(
        thanked=len(want),
        found=sum(1 for k in want if k in got),
        missing=missing,
        duplicated=dup,
        wrong=wrong,
        bad=len(bad_ids),
        orders=orders,
        extra=extra,
    )


def _not_case() -> int:
    from hub.workflow.service import NOT_A_CASE_RATING

    return int(NOT_A_CASE_RATING)


def expected_from_truth(truth: Any) -> list[dict[str, Any]]:
    """The engine's ground truth as what the hub must hold (thanked presses only)."""
    out = []
    for p in truth.presses:
        if not p.thanked or p.seq is None:
            continue
        out.append(
            {
                "device_id": p.device_id,
                "seq": p.seq,
                "level": p.level,
                "window_id": p.window_id,
                "staff_id": p.expect_staff,
                "case_no": p.expect_case if p.expect in ("counted", "repeat", "paused") else None,
            }
        )
    return out


# --------------------------------------------------------------------------- the hall


class Hall:
    """Hub + agent + fleet in one workspace."""

    def __init__(
        self,
        root: Path,
        specs: list[DeviceSpec],
        *,
        broker: str = "embedded",
        mqtt_port: int | None = None,
        invite_s: int = 20,
        hub: bool = True,
    ) -> None:
        self.root = root
        (root / "logs").mkdir(parents=True, exist_ok=True)
        hcp = _hcp()
        self.mqtt_port = mqtt_port or free_port()
        self.hub = HubPart(root, hcp) if hub else None
        self.agent = AgentPart(
            root,
            hcp,
            specs,
            hub=self.hub,
            mqtt_port=self.mqtt_port,
            broker=broker,
            invite_s=invite_s,
        )
        self.specs = specs
        keys = root / "devices"
        keys.mkdir(parents=True, exist_ok=True)
        for spec in specs:  # a rerun on the same --data keeps each device's key and flash
            path = keys / f"{spec.device_id}.key"
            if path.exists():
                spec.key = bytes.fromhex(path.read_text().strip())
            else:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(spec.key.hex() + "\n")
        self.fleet: Fleet | None = None
        self._ui: Any = None
        self._ui_task: asyncio.Task[Any] | None = None

    def prepare(self) -> None:
        if self.hub is not None and not self.hub.token_file.exists():
            self.hub.setup()
        self.agent.register()
        self.fleet = Fleet(self.root, self.specs, mqtt_port=self.mqtt_port)

    async def start(self) -> None:
        assert self.fleet is not None
        if self.hub is not None:
            await self.hub.start()
        await self.agent.start()
        await self.fleet.start()

    async def serve_ui(self) -> str:
        """The technician UI and control API of the rack (simulator.control_api), in this
        process: each device's face, its buttons, its faults."""
        import uvicorn

        from simulator.control_api import make_app

        assert self.fleet is not None
        port = free_port()
        self._ui = uvicorn.Server(
            uvicorn.Config(
                make_app(self.fleet.rack),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        self._ui_task = asyncio.create_task(self._ui.serve())
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._ui is not None and self._ui_task is not None:
            self._ui.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ui_task, 10)
        if self.fleet is not None:
            await self.fleet.stop()
        self.agent.proc.stop()
        if self.hub is not None:
            self.hub.proc.stop()
        if self.fleet is not None:
            self.fleet.close()

    async def drained(self, timeout: float) -> bool:
        """The devices' outboxes and the agent's outbox to the hub are empty."""
        assert self.fleet is not None
        end = time.monotonic() + timeout
        oks = await asyncio.gather(*(d.wait_acked(timeout) for d in self.fleet.devices.values()))
        if not all(oks):
            return False
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                h = await self.agent.health()
                if h["outbox_depth"] == 0:
                    return True
            await asyncio.sleep(0.2)
        return False


# --------------------------------------------------------------------------- the command


def _levels_text(counts: dict[int, int]) -> str:
    return " ".join(f"{lv}:{counts.get(lv, 0)}" for lv in range(1, 6))


async def _summary(state: State, hall: Hall, engine: Any, t0: float, first: list[float]) -> str:
    assert hall.hub is not None and hall.fleet is not None
    levels = {
        int(a): int(b)
        for a, b in hall.hub.query("SELECT level, count(*) FROM ratings GROUP BY level")
    }
    orders = int(hall.hub.query("SELECT count(*) FROM work_orders")[0][0])
    total = sum(levels.values())
    if len(first) == 1 and total > first[0]:  # first[0]: ratings of earlier runs
        first.append(time.monotonic() - t0)
        print(state.text(OUT["first"], s=first[1]), flush=True)
    try:
        h = await hall.agent.health()
        sync = h.get("hub_sync") or {}
        online, queued, sync_state = h["devices_online"], h["outbox_depth"], sync.get("state", "-")
    except Exception:
        online, queued, sync_state = 0, "?", "?"
    return state.text(
        OUT["summary"],
        t=time.monotonic() - t0,
        clock=engine.sc.clock(engine.clock.now())[:5] if engine is not None else "--:--",
        total=total,
        levels=_levels_text(levels),
        orders=orders,
        online=online,
        n=len(hall.fleet.devices),
        queued=queued,
        sync=sync_state,
    )


def _run(state: State, args: argparse.Namespace) -> int | None:
    if args.windows < 12:
        raise HcpError(E["windows"].fill(n=args.windows))
    if args.data:
        root = Path(args.data).resolve()
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        root = Path(tempfile.mkdtemp(prefix="hcp-demo-"))
        keep = False
    try:
        return asyncio.run(_demo(state, args, root))
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(state.text(OUT["kept"], d=root))


async def _demo(state: State, args: argparse.Namespace, root: Path) -> int | None:
    from simulator.engine import Engine
    from simulator.plan import plan
    from simulator.scenario import ScenarioError, load_scenario

    t0 = time.monotonic()
    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as e:
        raise HcpError(Text(f"场景错误：{e.zh}", f"scenario error: {e.en}")) from e
    if len(sc.windows) < args.windows:
        raise HcpError(
            E["scenario_windows"].fill(p=args.scenario, n=len(sc.windows), w=args.windows)
        )
    windows = sc.windows[: args.windows]
    import dataclasses

    sc = dataclasses.replace(sc, windows=windows)
    specs = device_specs(
        len(windows), {w.window_id: w.label for w in windows}, [w.window_id for w in windows]
    )
    print(state.text(OUT["workspace"], d=root), flush=True)
    print(state.text(OUT["build"], n=len(specs)), flush=True)
    hall = Hall(root, specs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    interrupted = False
    engine: Engine | None = None
    run: asyncio.Task[Any] | None = None
    result: int | None = 0
    try:
        prepare = asyncio.create_task(asyncio.to_thread(hall.prepare))
        if not await _or_stop(asyncio.shield(prepare), stop):
            await prepare  # a thread cannot be cancelled: let it finish, then stop
            return 0
        await prepare
        assert hall.hub is not None and hall.fleet is not None
        if not await _or_stop(hall.start(), stop):
            return 0
        print(state.text(OUT["hub"], u=hall.hub.url))
        print(state.text(OUT["agent"], u=hall.agent.url))
        print(state.text(OUT["broker"], p=hall.mqtt_port))
        print(state.text(OUT["ui"], u=await hall.serve_ui()))
        n_serial = sum(1 for s in specs if s.link == "serial")
        print(
            state.text(OUT["devices"], n=len(specs), s=n_serial, m=len(specs) - n_serial),
            flush=True,
        )
        linked = asyncio.create_task(hall.fleet.wait_linked(LINK_WAIT_S))
        if not await _or_stop(linked, stop):
            return 0
        down = linked.result()
        if down:
            raise HcpError(E["links"].fill(d=", ".join(down), log=root / "logs"))
        print(state.text(OUT["linked"], s=time.monotonic() - t0))
        print(state.text(OUT["logs"], d=root / "logs"))
        seed = sc.seed if args.seed is None else args.seed
        events = plan(sc, seed)
        duration = (
            None if args.duration is None else max(0.0, args.duration - (time.monotonic() - t0))
        )
        engine = Engine(
            sc,
            events,
            agent_url=hall.agent.url,
            devices=dict(hall.fleet.devices),
            speed=args.speed,
            tag=time.strftime("d%H%M%S"),
            duration_s=None if duration is None else duration * args.speed,
        )
        print(state.text(OUT["running"], speed=args.speed), flush=True)
        run = asyncio.create_task(engine.run())
        first = [float(hall.hub.query("SELECT count(*) FROM ratings")[0][0])]
        while True:
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {run, waiter}, timeout=args.every, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if stop.is_set():
                interrupted = True
                break
            print(await _summary(state, hall, engine, t0, first), flush=True)
            if run in done:
                break
        print(state.text(OUT["stopping"]), flush=True)
        if interrupted and not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
        elif run.done():
            run.result()
        if not interrupted:
            print(state.text(OUT["draining"]), flush=True)
            await hall.drained(DRAIN_WAIT_S)
            print(await _summary(state, hall, engine, t0, first), flush=True)
        acc = hub_account(hall.hub, expected_from_truth(engine.truth), hall_since(hall))
        print(
            state.text(
                OUT["account"],
                thanked=acc.thanked,
                found=acc.found,
                missing=len(acc.missing),
                dup=len(acc.duplicated),
                wrong=len(acc.wrong),
                bad=acc.bad,
                orders=acc.orders,
                other=len(acc.extra),
                extra=state.text(OUT["interrupted"]) if interrupted else "",
            ),
            flush=True,
        )
        for p in (acc.missing + acc.duplicated + acc.wrong)[:10]:
            print("  " + p)
        # Presses made in the technician UI are not the engine's: shown, not judged.
        acc.extra = []
        result = 0 if interrupted or acc.ok else 1
    finally:
        if stop.is_set() and engine is None:
            print(state.text(OUT["stopping"]), flush=True)
        if run is not None and not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
        await hall.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print(state.text(OUT["stopped"], s=time.monotonic() - t0), flush=True)
    return result


async def _or_stop(aw: Any, stop: asyncio.Event) -> bool:
    """Await `aw` unless `stop` is set first (then cancel it): True if it completed."""
    task = asyncio.ensure_future(aw)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False


def hall_since(hall: Hall) -> dict[str, int]:
    assert hall.fleet is not None
    return {i: d.first_seq - 1 for i, d in hall.fleet.devices.items()}


def _positive(value: str, lang: Any = "zh-CN") -> float:
    try:
        v = float(value)
    except ValueError:
        v = -1.0
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(E["positive"].format(lang, v=value))
    return v


def _arguments(parser: HcpParser) -> None:
    parser.add_argument("--data", metavar="DIR", help=parser.tr(T["data"]))
    positive = functools.partial(_positive, lang=parser.lang)
    parser.add_argument("--duration", type=positive, metavar="S", help=parser.tr(T["duration"]))
    parser.add_argument(
        "--windows", type=int, default=12, metavar="N", help=parser.tr(T["windows"])
    )
    parser.add_argument(
        "--speed", type=positive, default=60.0, metavar="X", help=parser.tr(T["speed"])
    )
    parser.add_argument("--seed", type=int, help=parser.tr(T["seed"]))
    parser.add_argument(
        "--every", type=positive, default=5.0, metavar="S", help=parser.tr(T["every"])
    )
    parser.add_argument(
        "--scenario", default=str(DEFAULT_SCENARIO), metavar="FILE", help=parser.tr(T["scenario"])
    )


register("demo", help=T["help"], arguments=_arguments, run=_run)
