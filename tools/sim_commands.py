"""``hcp sim …``: check hall scenarios and run them against a hall agent.

Strategy: one registered command, ``sim``, with subcommands. ``scenario --check`` validates
a scenario file (simulator.scenario) and summarises the day it plans (simulator.plan) without
touching anything. ``run`` plays the plan against a running agent through its case-system
API (simulator.engine), on a simulated clock at ``--speed`` (a factor, or ``max``), and
prints progress and the result. Presses need devices: with ``--peers DIR`` the simulator
makes one CPython device peer per ``DIR/<device>.key`` on a pty ``DIR/<device>.tty`` (name
those in agent.toml's [[serial]]); without it, only the case system is driven and planned
presses are recorded as not made. ``--store`` checks the agent's store against the run's
ground truth afterwards (simulator.accounting). ``devices`` starts a rack of real-firmware
virtual devices (simulator.rack), writes their manifest and serves the control API and the
technician UI (simulator.control_api) until Ctrl-C or ``--duration``. Heavy imports stay
inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Lang, Text

if TYPE_CHECKING:
    from simulator.engine import Engine
    from simulator.scenario import Scenario

PROGRESS_EVERY_S = 2.0
DEFAULT_HALL = "H330201001"  # hcp sim devices without --hall or --agent
LINK_WAIT_S = 30.0

T = {
    "help": Text(
        "模拟大厅：检查场景、驱动大厅代理", "hall simulator: check scenarios, drive an agent"
    ),
    "scenario": Text("检查场景文件并汇总", "check a scenario file and summarise it"),
    "check": Text("场景文件（TOML）", "scenario file (TOML)"),
    "run": Text(
        "按场景驱动运行中的大厅代理（案件接口 + 虚拟设备按键）",
        "drive a running hall agent from a scenario (case API + virtual device presses)",
    ),
    "scenario_file": Text("场景文件（TOML）", "scenario file (TOML)"),
    "agent": Text(
        "大厅代理地址，例如 http://127.0.0.1:8470", "the agent, e.g. http://127.0.0.1:8470"
    ),
    "duration": Text(
        "只运行开门后的这么多模拟秒（默认：整天）",
        "run only this many simulated seconds after opening (default: the whole day)",
    ),
    "seed": Text("随机种子（默认：场景中的 hall.seed）", "random seed (default: hall.seed)"),
    "speed": Text(
        "模拟时钟倍速（如 60 表示 1 秒 = 1 分钟），或 max 尽可能快（默认 60）",
        "simulated clock speed factor (60: one second is a minute), or max (default 60)",
    ),
    "tag": Text(
        "本次运行的标签，加在办件编号和事件编号前（默认按时间生成）",
        "run tag, prefixed to case numbers and event ids (default: from the time)",
    ),
    "peers": Text(
        "虚拟设备目录：每个 <设备>.key 一个 CPython 设备，串口为 <设备>.tty",
        "device directory: one CPython device per <device>.key, its serial port <device>.tty",
    ),
    "firmware": Text(
        "配合 --peers：运行真实固件（MicroPython unix 端口）而非 CPython 设备",
        "with --peers: run the real firmware (MicroPython unix port) instead of CPython peers",
    ),
    "invite_s": Text(
        "代理的 policy.invite_s（真实固件在此期间把后续按键记为重复；默认 60）",
        "the agent's policy.invite_s (the firmware takes presses as repeats for that long;"
        " default 60)",
    ),
    "store": Text(
        "运行后按实际情况核对此代理存储（agent.sqlite3）",
        "afterwards, check this agent store (agent.sqlite3) against the ground truth",
    ),
    "truth": Text("把实际情况（JSON）写入此文件", "write the ground truth (JSON) to this file"),
    "json": Text("以 JSON 输出", "print JSON"),
    "devices": Text(
        "启动虚拟设备（真实固件）及其控制接口和技术人员页面",
        "start virtual devices (the real firmware) with their control API and technician UI",
    ),
    "dir": Text(
        "设备目录：密钥 <设备>.key、闪存映像、串口 <设备>.tty、manifest.json",
        "device directory: keys <device>.key, flash images, ports <device>.tty, manifest.json",
    ),
    "count": Text(
        "没有密钥文件时新建这么多台设备（EV-S001…）",
        "with no key files there, make this many devices (EV-S001…)",
    ),
    "hall": Text(
        "大厅编号（写入设备身份；默认取自 --agent，否则 H330201001）",
        "hall id (written into the device identity; default: --agent's, else H330201001)",
    ),
    "hall_agent": Text(
        "从此大厅代理读取大厅编号，例如 http://127.0.0.1:8470",
        "read the hall id from this agent, e.g. http://127.0.0.1:8470",
    ),
    "kind": Text("设备类型（默认 evaluator）", "device kind (default evaluator)"),
    "mqtt": Text(
        "经 MQTT 代理 HOST:PORT 连接（经各自的 TCP 中继；默认：串口，经虚拟串口线）",
        "link over the MQTT broker HOST:PORT (each through its TCP relay; default: serial,"
        " through a virtual cable)",
    ),
    "listen": Text(
        "控制接口和页面的监听地址（默认 127.0.0.1:8480）",
        "listen address of the control API and UI (default 127.0.0.1:8480)",
    ),
    "run_for": Text("运行这么多秒后停止（默认：直到 Ctrl-C）", "stop after this many seconds"),
}

OUT = {
    "valid": Text("场景有效：{name}（{src}）", "scenario valid: {name} ({src})"),
    "shape": Text(
        "  {w} 个窗口，{s} 个班次，{st} 名工作人员，{i} 个事项；开门 {open}，最后下班 {end}",
        "  {w} windows, {s} shifts, {st} staff, {i} items; opens {open}, last shift ends {end}",
    ),
    "plan": Text("  种子 {seed} 的一天：", "  the day with seed {seed}:"),
    "cases": Text(
        "    办件 {cases}（未叫到号离开 {left}），按键评价 {first}，重复按键 {repeat}，"
        "手机扫码评价 {qr}，未评价离开 {no}，未邀请评价 {ni}，工作人员自评 {self}，暂停 {p}",
        "    cases {cases} (left unserved {left}), rated by press {first}, repeat presses "
        "{repeat}, rated by phone QR {qr}, walked away {no}, not invited {ni}, staff "
        "self-presses {self}, pauses {p}",
    ),
    "levels": Text(
        "    按键等级（1 非常满意 … 5 非常不满意）：{lv}",
        "    levels pressed (1 best … 5 worst): {lv}",
    ),
    "events": Text("    共 {n} 个事件", "    {n} events in all"),
    "linking": Text("等待 {n} 台虚拟设备连上代理…", "waiting for {n} virtual devices to link…"),
    "no_devices": Text(
        "未指定 --peers：只驱动案件系统，计划中的按键不会发生",
        "no --peers: only the case system is driven; planned presses are not made",
    ),
    "progress": Text(
        "模拟时钟 {clock} · 事件 {done}/{n} · 按键 {presses} · 被拒 {refused}",
        "simulated {clock} · events {done}/{n} · presses {presses} · refused {refused}",
    ),
    "done": Text(
        "完成：{n} 个事件，模拟 {sim:.0f} 秒用时 {wall:.1f} 秒（{x:.0f} 倍），"
        "接口调用 {calls}（被拒 {refused}），按键 {presses}",
        "done: {n} events, {sim:.0f} simulated s in {wall:.1f} s ({x:.0f}x), "
        "API calls {calls} ({refused} refused), presses {presses}",
    ),
    "refused": Text(
        "  被拒：{t} {w} {kind} → {code}：{msg}", "  refused: {t} {w} {kind} → {code}: {msg}"
    ),
    "account_ok": Text(
        "核对通过：设备致谢的 {n} 条评价都在代理中且绑定正确（计入 {c}，重复 {r}，无邀请按键 {u}）",
        "accounting ok: all {n} thanked ratings are in the agent, bound correctly (counted "
        "{c}, repeat {r}, unsolicited {u})",
    ),
    "account_bad": Text("核对发现 {n} 个问题：", "accounting found {n} problems:"),
    "rack_up": Text(
        "{n} 台虚拟设备已启动；清单 {manifest}\n控制接口 {url}/api/devices · 技术人员页面 {url}/",
        "{n} virtual devices started; manifest {manifest}\ncontrol API {url}/api/devices"
        " · technician UI {url}/",
    ),
    "rack_device": Text(
        "  {id}  {kind:10} {link:32} 控制端口 {port}",
        "  {id}  {kind:10} {link:32} control port {port}",
    ),
    "rack_down": Text("虚拟设备已停止", "virtual devices stopped"),
}

E = {
    "scenario": Text("场景错误：{m}", "scenario error: {m}"),
    "speed": Text(
        "倍速应为正数或 max，实际为 {v!r}", "speed must be a positive number or max, got {v!r}"
    ),
    "peers": Text("{p} 中没有 *.key 设备密钥文件", "no *.key device key files in {p}"),
    "key": Text(
        "密钥文件 {p} 应为 32…64 个十六进制字符", "the key file {p} must hold 32…64 hex characters"
    ),
    "links": Text(
        "这些虚拟设备未能连上代理：{d}（agent.toml 是否指向它们的串口？代理日志中有原因）",
        "these virtual devices did not link to the agent: {d} (does agent.toml name their"
        " ports? the agent's log says why)",
    ),
    "store": Text("无法读取代理存储 {p}：{e}", "cannot read the agent store {p}: {e}"),
    "agent": Text("无法连接大厅代理 {u}：{e}", "cannot reach the hall agent at {u}: {e}"),
    "listen": Text("监听地址应为 HOST:PORT，实际为 {v!r}", "listen must be HOST:PORT, got {v!r}"),
    "bind": Text("无法监听 {v}：{e}", "cannot listen on {v}: {e}"),
    "no_keys": Text(
        "{p} 中没有 *.key 设备密钥文件：用 --count 新建设备",
        "no *.key device key files in {p}: make devices with --count",
    ),
    "firmware": Text(
        "虚拟设备（真实固件）未能启动：{e}（见 {log}）",
        "the virtual devices (real firmware) did not start: {e} (see {log})",
    ),
}


def _speed(value: str, lang: Lang = "zh-CN") -> float | None:
    if value == "max":
        return None
    try:
        v = float(value)
    except ValueError:
        v = -1.0
    if not v > 0:
        raise argparse.ArgumentTypeError(E["speed"].format(lang, v=value))
    return v


def _load(state: State, path: str) -> Scenario:
    from simulator.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as e:
        raise HcpError(Text(f"场景错误：{e.zh}", f"scenario error: {e.en}")) from e


def _scenario(state: State, args: argparse.Namespace) -> int | None:
    from simulator.plan import plan, summary

    sc = _load(state, args.check)
    seed = sc.seed if args.seed is None else args.seed
    s = summary(plan(sc, seed))
    if args.json:
        print(json.dumps({"name": sc.name, "seed": seed, **s}, ensure_ascii=False, indent=2))
        return None
    shifts = [sh for w in sc.windows for sh in w.shifts]
    print(state.text(OUT["valid"], name=sc.name, src=args.check))
    print(
        state.text(
            OUT["shape"],
            w=len(sc.windows),
            s=len(shifts),
            st=len({sh.staff_id for sh in shifts}),
            i=len(sc.items),
            open=sc.clock(0)[:5],
            end=sc.clock(sc.end_s())[:5],
        )
    )
    print(state.text(OUT["plan"], seed=seed))
    print(
        state.text(
            OUT["cases"],
            cases=s["cases"],
            left=s["left_unserved"],
            first=s["presses_first"],
            repeat=s["presses_repeat"],
            qr=s["phone_qr"],
            no=s["no_rating"],
            ni=s["not_invited"],
            self=s["presses_self"],
            p=s["pauses"],
        )
    )
    print(state.text(OUT["levels"], lv=", ".join(f"{k}: {v}" for k, v in s["levels"].items())))
    print(state.text(OUT["events"], n=s["events"]))
    return None


def _read_keys(directory: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.key")):
        try:
            key = bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            key = b""
        if not 16 <= len(key) <= 32:
            raise HcpError(E["key"].fill(p=path))
        keys[path.stem] = key
    if not keys:
        raise HcpError(E["peers"].fill(p=directory))
    return keys


async def _hall_id(agent: str) -> str:
    """The agent's hall id (the firmware's identity carries it)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(agent.rstrip("/") + "/healthz")
            return str(r.json()["hall_id"])
    except (httpx.HTTPError, ValueError, KeyError) as e:
        raise HcpError(E["agent"].fill(u=agent, e=e)) from e


def _run(state: State, args: argparse.Namespace) -> int | None:
    return asyncio.run(_run_async(state, args))


async def _run_async(state: State, args: argparse.Namespace) -> int | None:
    from simulator.engine import Engine, EngineError
    from simulator.plan import plan

    sc = _load(state, args.scenario)
    seed = sc.seed if args.seed is None else args.seed
    events = plan(sc, seed)
    tag = args.tag or time.strftime("r%m%d%H%M%S")
    peers: Any = None
    devices: dict[str, Any] = {}
    if args.peers and args.firmware:
        from simulator.firmware import FirmwareHall

        peers = FirmwareHall(
            Path(args.peers),
            _read_keys(Path(args.peers)),
            hall_id=await _hall_id(args.agent),
            invite_s=args.invite_s,
        )
        try:
            await peers.start()
        except OSError as e:
            await peers.stop()
            peers.close()
            raise HcpError(E["firmware"].fill(e=e, log=peers.log)) from e
        print(state.text(OUT["linking"], n=len(peers.devices)), flush=True)
        down = await peers.wait_linked(LINK_WAIT_S)
        if down:
            await peers.stop()
            peers.close()
            raise HcpError(E["links"].fill(d=", ".join(down)))
        devices = dict(peers.devices)
    elif args.peers:
        from simulator.devices import PeerHall

        peers = PeerHall(Path(args.peers), _read_keys(Path(args.peers)))
        await peers.start()
        print(state.text(OUT["linking"], n=len(peers.devices)), flush=True)
        down = await peers.wait_linked(LINK_WAIT_S)
        if down:
            await peers.stop()
            peers.close()
            raise HcpError(E["links"].fill(d=", ".join(down)))
        devices = dict(peers.devices)
    else:
        print(state.text(OUT["no_devices"]), file=sys.stderr)
    try:
        try:
            engine = Engine(
                sc,
                events,
                agent_url=args.agent,
                devices=devices,
                speed=args.speed,
                tag=tag,
                duration_s=args.duration,
            )
            progress = asyncio.create_task(_progress(state, engine))
            try:
                report = await engine.run()
            finally:
                progress.cancel()
        except EngineError as e:
            raise HcpError(Text(e.zh, e.en)) from e
    finally:
        if peers is not None:
            await peers.stop()
            peers.close()
    print(
        state.text(
            OUT["done"],
            n=report.events,
            sim=report.sim_s,
            wall=report.wall_s,
            x=report.speedup,
            calls=report.api_calls,
            refused=report.api_refused,
            presses=report.presses,
        )
    )
    for err in engine.truth.api_errors[:10]:
        print(
            state.text(
                OUT["refused"],
                t=sc.clock(err["t"]),
                w=err["window"],
                kind=err["kind"],
                code=err.get("code") or err.get("error"),
                msg=err.get("message") or "",
            )
        )
    if args.truth:
        Path(args.truth).write_text(
            json.dumps(engine.truth.as_json(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
    if args.store:
        since = peers.since_seq() if peers is not None else {}
        return _account(state, engine, Path(args.store), since)
    return None


def _account(state: State, engine: Engine, store: Path, since: dict[str, int]) -> int | None:
    import sqlite3

    from simulator.accounting import account

    try:
        acc = account(engine.truth, store, since_seq=since)
    except sqlite3.Error as e:
        raise HcpError(E["store"].fill(p=store, e=e)) from e
    if acc.ok:
        b = acc.bindings
        print(
            state.text(
                OUT["account_ok"],
                n=acc.thanked,
                c=b["counted"],
                r=b["repeat"],
                u=b["unsolicited"],
            )
        )
        return None
    print(state.text(OUT["account_bad"], n=len(acc.problems)))
    for p in acc.problems[:20]:
        print("  " + p)
    return 1


async def _progress(state: State, engine: Engine) -> None:
    n = len(engine.events)
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        done = sum(engine.kinds.values())
        print(
            state.text(
                OUT["progress"],
                clock=engine.sc.clock(engine.clock.now()),
                done=done,
                n=n,
                presses=sum(1 for p in engine.truth.presses if p.seq is not None),
                refused=len(engine.truth.api_errors),
            ),
            file=sys.stderr,
            flush=True,
        )


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(E["listen"].format("en", v=value))
    return host, int(port)


def _devices(state: State, args: argparse.Namespace) -> int | None:
    return asyncio.run(_devices_async(state, args))


async def _devices_async(state: State, args: argparse.Namespace) -> int | None:
    import uvicorn

    from simulator.control_api import make_app
    from simulator.rack import DeviceRack, DeviceSpec, RackError, new_specs
    from simulator.vdevice import SeedError, ToolMissing

    directory = Path(args.dir)
    transport = "mqtt" if args.mqtt else "serial"
    if args.count:
        specs = new_specs(directory, args.count, kind=args.kind)
    else:
        keys = _read_keys(directory) if directory.is_dir() and any(directory.glob("*.key")) else {}
        if not keys:
            raise HcpError(E["no_keys"].fill(p=directory))
        specs = [DeviceSpec(i, k, args.kind) for i, k in keys.items()]
    for spec in specs:
        spec.transport = transport
    hall = args.hall or (await _hall_id(args.agent) if args.agent else DEFAULT_HALL)
    host, port = args.listen
    url = f"http://{host}:{port}"
    # Bound here, before any device starts: a taken port is a clear error, not uvicorn's exit.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise HcpError(E["bind"].fill(v=f"{host}:{port}", e=e.strerror or e)) from e
    try:
        rack = DeviceRack(directory, specs, hall_id=hall, broker=args.mqtt)
    except (RackError, SeedError, ToolMissing, OSError) as e:
        sock.close()
        raise HcpError(E["firmware"].fill(e=e, log=directory / "device.log")) from e
    server = uvicorn.Server(uvicorn.Config(make_app(rack), log_level="warning", lifespan="off"))
    try:
        await rack.start()
        manifest = rack.write_manifest({"api": url})
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        print(state.text(OUT["rack_up"], n=len(rack.devices), manifest=manifest, url=url))
        for d in rack.manifest()["devices"]:
            link = d["tty"] or f"mqtt :{d['relay_port']} → {args.mqtt[0]}:{args.mqtt[1]}"
            print(
                state.text(
                    OUT["rack_device"],
                    id=d["device_id"],
                    kind=d["kind"],
                    link=link,
                    port=d["control_port"],
                )
            )
        sys.stdout.flush()
        await asyncio.wait({serving}, timeout=args.duration)
        server.should_exit = True
        await serving
    finally:
        await rack.stop()
        rack.close()
        print(state.text(OUT["rack_down"]), file=sys.stderr)
    return None


def _arguments(parser: HcpParser) -> None:
    sub = parser.add_subparsers(
        dest="sim_command", metavar="<subcommand>", required=True, parser_class=HcpParser
    )

    def add(name: str, help_text: Text, handler: Any) -> HcpParser:
        p: HcpParser = sub.add_parser(
            name, help=parser.tr(help_text), description=parser.tr(help_text), lang=parser.lang
        )
        p.set_defaults(sim_handler=handler)
        return p

    p = add("scenario", T["scenario"], _scenario)
    p.add_argument("--check", required=True, metavar="FILE", help=p.tr(T["check"]))
    p.add_argument("--seed", type=int, help=p.tr(T["seed"]))
    p.add_argument("--json", action="store_true", help=p.tr(T["json"]))
    p = add("run", T["run"], _run)
    p.add_argument("--scenario", required=True, metavar="FILE", help=p.tr(T["scenario_file"]))
    p.add_argument("--agent", required=True, metavar="URL", help=p.tr(T["agent"]))
    p.add_argument("--duration", type=float, metavar="S", help=p.tr(T["duration"]))
    p.add_argument("--seed", type=int, help=p.tr(T["seed"]))
    p.add_argument(
        "--speed",
        type=functools.partial(_speed, lang=p.lang),
        default=60.0,
        metavar="X",
        help=p.tr(T["speed"]),
    )
    p.add_argument("--tag", help=p.tr(T["tag"]))
    p.add_argument("--peers", metavar="DIR", help=p.tr(T["peers"]))
    p.add_argument("--firmware", action="store_true", help=p.tr(T["firmware"]))
    p.add_argument("--invite-s", type=int, default=60, metavar="S", help=p.tr(T["invite_s"]))
    p.add_argument("--store", metavar="FILE", help=p.tr(T["store"]))
    p.add_argument("--truth", metavar="FILE", help=p.tr(T["truth"]))
    p = add("devices", T["devices"], _devices)
    p.add_argument("--dir", required=True, metavar="DIR", help=p.tr(T["dir"]))
    p.add_argument("--count", type=int, metavar="N", help=p.tr(T["count"]))
    p.add_argument("--hall", metavar="ID", help=p.tr(T["hall"]))
    p.add_argument("--agent", metavar="URL", help=p.tr(T["hall_agent"]))
    p.add_argument(
        "--kind", choices=("evaluator", "combined", "qr"), default="evaluator", help=p.tr(T["kind"])
    )
    p.add_argument("--mqtt", type=_host_port, metavar="HOST:PORT", help=p.tr(T["mqtt"]))
    p.add_argument(
        "--listen",
        type=_host_port,
        default=("127.0.0.1", 8480),
        metavar="HOST:PORT",
        help=p.tr(T["listen"]),
    )
    p.add_argument("--duration", type=float, metavar="S", help=p.tr(T["run_for"]))


def _dispatch(state: State, args: argparse.Namespace) -> int | None:
    result: int | None = args.sim_handler(state, args)
    sys.stdout.flush()
    return result


register("sim", help=T["help"], arguments=_arguments, run=_dispatch)
