"""``hcp provision …``: give a device on the bench its identity, key and position (一码一账号).

Strategy: every check that can refuse runs before the device is touched, so a refused
provisioning changes nothing on either side. Then the key is committed to the agent's store
first (quarantined as ``provisioning``), sent over the provisioning link only (PROVISION,
docs/protocol.md §10), and the device's PROVISIONED check proves it stored that key; only
then is the device bound and released. A run that dies half-way leaves a quarantined row
that the next run picks up by factory id with the same identity and key: running the
command twice is safe, and a device that is provisioned again keeps its identity unless
``--rekey`` asks for a new key.

What the device keeps locally and what the agent sends (the configuration bundle, written
under ``<data_dir>/devices/<device_id>/`` and copied by ``hcp flash``):
- ``device.json`` is what the firmware needs before any link exists: factory id, kind,
  board, transport. The identity and key are never in it (the firmware writes them to
  ``/hcp/identity.json`` and ``/hcp/key.bin`` when PROVISION arrives).
- ``offline.json`` has CONFIG's shape (version 0): window, staff, static QR matrix, reason
  catalogue, policy. The device shows it until the first CONFIG, so a QR unit shows its
  staff code and an evaluator takes 差评 reasons even before the agent answers. Every
  CONFIG replaces it; the agent stays the authority.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
    from edge_agent.store import Store

KEY_BYTES = 32  # protocol KEY_MAX
HELLO_TIMEOUT_S = 10.0  # the device repeats HELLO every 1…16 s
REPLY_TIMEOUT_S = 5.0
BUNDLE_VERSION = 1
KIND_PREFIX = {1: "EV", 2: "QR", 3: "CU"}

T = {
    "help": Text(
        "设备配网：身份、密钥、窗口与工作人员绑定（一码一账号）",
        "provision devices: identity, key, window and staff binding (one code, one account)",
    ),
    "device": Text("为台上设备配网（经配网链路）", "provision the device on the bench"),
    "staff_cmd": Text("把窗口改绑到另一名工作人员", "bind a window to another staff member"),
    "retire": Text("设备退役（保留历史）", "retire a device (history is kept)"),
    "history": Text("显示绑定历史", "show the binding history"),
    "bundle": Text("重新生成设备配置包", "write a device's configuration bundle again"),
    "port": Text("串口（设备路径或 pyserial URL）", "serial port (device path or pyserial URL)"),
    "baud": Text("波特率", "baud rate"),
    "window": Text("窗口标识", "window id"),
    "staff": Text("工作人员账号", "staff account id"),
    "name": Text("工作人员姓名（首次绑定时必填）", "staff name (required the first time)"),
    "number": Text("工号（首次绑定时必填）", "staff number (required the first time)"),
    "title": Text("职务", "title"),
    "department": Text("所属部门", "department"),
    "device_id": Text(
        "设备标识（默认：类型前缀-出厂编号）", "device id (default: kind prefix-factory id)"
    ),
    "board": Text("期望的板型（与设备不符则拒绝）", "expected board (refused if it differs)"),
    "replace": Text("替换此损坏设备（旧设备退役）", "replace this broken device (it is retired)"),
    "rekey": Text("生成新密钥（旧密钥作废）", "generate a new key (the old one stops working)"),
    "show_key": Text("打印密钥（仅在确有需要时）", "print the key (only when you must)"),
    "timeout": Text("等待设备的秒数", "seconds to wait for the device"),
    "json": Text("以 JSON 输出", "print JSON"),
}

E = {
    "wrong_board": Text(
        "设备是 {got} 板型，不是 {want}：换设备或改 --board",
        "the device is a {got} board, not {want}: use another device or --board",
    ),
    "unknown_board": Text(
        "设备报告的板型 {b} 不在 hardware/boards 中", "the device reports board {b}, unknown here"
    ),
    "id_mismatch": Text(
        "出厂编号 {f} 的设备已是 {d}，不能改名为 {n}（用 retire 后重新配网）",
        "the board with factory id {f} is already {d}, not {n} (retire it, then provision)",
    ),
    "window_unknown": Text(
        "没有窗口 {w}：先运行 hcp agent add-window", "no window {w}: run hcp agent add-window"
    ),
    "position": Text(
        "窗口 {w} 的该位置已有设备 {o}（一码一账号：每窗口一个评价器、一个二维码）；"
        "如要替换损坏设备请加 --replace {o}",
        "window {w} already has device {o} in that position (one evaluator and one QR code "
        "per window); to replace a broken device add --replace {o}",
    ),
    "replace_other": Text(
        "--replace {o}：该设备不在窗口 {w}", "--replace {o}: that device is not at window {w}"
    ),
    "no_reply": Text(
        "设备 {f} 在 {s} 秒内没有回复 PROVISIONED；密钥已存入代理（隔离中），重新运行即可",
        "device {f} did not answer PROVISIONED within {s} s; the key is in the agent's store "
        "(quarantined): run the command again",
    ),
    "bad_check": Text(
        "设备 {f} 的密钥校验值不符：它没有存下正确的密钥，设备保持隔离；重新运行",
        "device {f} answered with a wrong key check: it did not store the key; the device "
        "stays quarantined; run the command again",
    ),
    "bad_id": Text(
        "设备回复的标识是 {got}，应为 {want}", "the device answered as {got}, not {want}"
    ),
}

OK = {
    "hello": Text(
        "已连接：出厂编号 {f}，{k}，板型 {b}，固件 {v}",
        "connected: factory id {f}, {k}, board {b}, firmware {v}",
    ),
    "sent": Text(
        "已发送身份 {d}（序号从 {s} 起，会话从 {n} 起）",
        "identity {d} sent (ratings from seq {s}, sessions from {n})",
    ),
    "done": Text(
        "设备 {d} 已配网：窗口 {w}，工作人员 {st}，密钥校验通过",
        "device {d} provisioned: window {w}, staff {st}, key check passed",
    ),
    "retired": Text("设备 {d} 已退役（替换为 {n}）", "device {d} retired (replaced by {n})"),
    "bundle": Text("配置包：{p}", "configuration bundle: {p}"),
    "key": Text("密钥（请勿外传）：{k}", "key (keep it secret): {k}"),
    "same": Text("窗口 {w} 已绑定工作人员 {s}，无变化", "window {w} already has staff {s}"),
    "bound": Text("窗口 {w} → 工作人员 {s}", "window {w} → staff {s}"),
    "retire_done": Text("设备 {d} 已退役", "device {d} retired"),
    "reboot": Text("设备正在重启进入正常模式", "the device reboots into normal mode"),
}


def _agent() -> Any:
    import tools.agent_commands as agent_commands

    return agent_commands


def _open(state: State, args: argparse.Namespace) -> tuple[AgentConfig, Store]:
    ac = _agent()
    cfg = ac._load(args)
    return cfg, ac._store(state, cfg)


def _now() -> int:
    from edge_agent.store import now_ms

    return now_ms()


def _guard(fn: Any, /, **kwargs: Any) -> Any:
    """Call a registry function; its StoreError becomes an HcpError (both languages)."""
    from edge_agent.errors import AgentError

    try:
        return fn(**kwargs)
    except AgentError as e:
        raise _agent()._fail(e) from e


# ---------------------------------------------------------------- the bundle


def serial_transport(profile: dict[str, Any]) -> dict[str, Any]:
    """device.json's serial transport for a board (firmware/config.py): the profile's UART
    id on a board, its path on the simulator."""
    uart = profile.get("uart", {})
    port = uart.get("id", uart.get("path", 0))
    return {"type": "serial", "port": port, "baud": int(uart.get("baud", 115200))}


def bundle(store: Store, cfg: AgentConfig, device_id: str) -> dict[str, Any]:
    """{file name: JSON document} of a device's configuration bundle (see the module doc)."""
    from edge_agent import registry
    from edge_agent.downlink import clip
    from hardware import profiles
    from tools import labels

    dev = registry.device(store, device_id)
    row = store.one("SELECT factory_id FROM devices WHERE device_id = ?", device_id)
    if dev is None or row is None:
        raise HcpError(Text(f"没有设备 {device_id}", f"no device {device_id}"))
    board = dev.board or ""
    try:
        profile: dict[str, Any] = profiles.load(board)
    except (OSError, ValueError):
        profile = {}
    device_json = {
        "version": BUNDLE_VERSION,
        "factory_id": row["factory_id"],
        "kind": registry.KIND_NAMES.get(dev.kind or 0, "evaluator"),
        "board": board,
        "transport": serial_transport(profile),
    }
    window = registry.window(store, dev.window_id) if dev.window_id else None
    pos = registry.position(store, dev.window_id) if dev.window_id else None
    qr = None
    if pos is not None and cfg.policy.qr_base_url and dev.kind in registry.SHOWS_QR:
        code = labels.static_code(store, cfg, dev.window_id or "", pos)
        qr = {"size": code.size, "bits": code.bits.hex()}
    p = cfg.policy
    offline = {
        "version": 0,
        "window": clip(window["label"], 32) if window else "",
        "staff": (
            {"name": pos["name"], "number": pos["number"], "title": pos["title"]} if pos else None
        ),
        "qr": qr,
        "reasons": [
            {"code": r.code, "zh": r.zh, "en": r.en, "levels": r.levels} for r in p.reasons
        ],
        "policy": {
            "invite_s": p.invite_s,
            "reason_s": p.reason_s,
            "thanks_s": p.thanks_s,
            "heartbeat_s": cfg.heartbeat_s,
            "reason_required": p.reason_required,
        },
    }
    return {"device.json": device_json, "offline.json": offline}


def bundle_dir(cfg: AgentConfig, device_id: str) -> Path:
    return cfg.data_dir / "devices" / device_id


def write_bundle(store: Store, cfg: AgentConfig, device_id: str) -> Path:
    out = bundle_dir(cfg, device_id)
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in bundle(store, cfg, device_id).items():
        tmp = out / (name + ".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n", "utf-8")
        tmp.replace(out / name)
    return out


# ---------------------------------------------------------------- provisioning


def _position_clash(store: Store, window_id: str, kind: int, skip: set[str]) -> str | None:
    """The device already holding that position at the window (一码一账号), if any."""
    from edge_agent import registry

    for d in registry.devices(store):
        if d.window_id != window_id or d.device_id in skip:
            continue
        if (kind in registry.BUTTONS and d.kind in registry.BUTTONS) or (
            kind in registry.SHOWS_QR and d.kind in registry.SHOWS_QR
        ):
            return d.device_id
    return None


def provision(
    state: State,
    *,
    store: Store,
    cfg: AgentConfig,
    port: str,
    baud: int,
    window_id: str,
    staff: dict[str, Any],
    device_id: str | None = None,
    board: str | None = None,
    replace: str | None = None,
    rekey: bool = False,
    timeout_s: float = HELLO_TIMEOUT_S,
) -> tuple[str, bytes]:
    """Provision the device on `port`; returns (device_id, key). Prints progress."""
    from edge_agent import registry
    from protocol import messages as M
    from protocol.packet import PROVISIONING_KEY
    from tools.provision_link import BenchLink, check_matches, message

    # 1. checks that need no device
    if registry.window(store, window_id) is None:
        raise HcpError(E["window_unknown"].fill(w=window_id))
    conflict = registry.position_conflict(store, window_id=window_id, staff_id=staff["staff_id"])
    if conflict is not None:
        raise _agent()._fail(conflict)
    known = store.one("SELECT 1 FROM staff WHERE staff_id = ?", staff["staff_id"])
    if known is None and (staff.get("name") is None or staff.get("number") is None):
        raise HcpError(
            Text(
                f"没有工作人员 {staff['staff_id']}：首次绑定请给出 --name 和 --number",
                f"no staff account {staff['staff_id']}: give --name and --number the first time",
            )
        )
    if replace is not None:
        old = registry.device(store, replace)
        if old is None or old.window_id != window_id:
            raise HcpError(E["replace_other"].fill(o=replace, w=window_id))

    # 2. the device says who it is
    with BenchLink(
        port,
        key=PROVISIONING_KEY,
        session=store.allocate_agent_session(),
        mode=M.PROVISIONING,
        baud=baud,
    ) as link:
        hello = link.wait_hello(timeout_s)
        factory_id, kind = hello.device_id, hello.kind
        print(
            state.text(
                OK["hello"],
                f=factory_id,
                k=registry.KIND_NAMES.get(kind, kind),
                b=hello.board,
                v=hello.firmware,
            ),
            flush=True,
        )
        if board is not None and hello.board != board:
            raise HcpError(E["wrong_board"].fill(got=hello.board, want=board))
        existing = registry.device_by_factory(store, factory_id)
        if existing is not None:
            if device_id is not None and device_id != existing.device_id:
                raise HcpError(
                    E["id_mismatch"].fill(f=factory_id, d=existing.device_id, n=device_id)
                )
            device_id = existing.device_id
        elif device_id is None:
            device_id = f"{KIND_PREFIX.get(kind, 'DV')}-{factory_id}"[:32]
        clash = _position_clash(store, window_id, kind, {device_id, replace or ""})
        if clash is not None:
            raise HcpError(E["position"].fill(w=window_id, o=clash))

        # 3. the key goes to the store first (quarantined), then over the link
        key = None if rekey else registry.device_key(store, device_id)
        if key is None:
            key = secrets.token_bytes(KEY_BYTES)
        seq, session = registry.seq_floor(store, device_id)
        _guard(
            registry.stage_provisioning,
            store=store,
            device_id=device_id,
            factory_id=factory_id,
            kind=kind,
            board=hello.board,
            key=key,
            now_ms=_now(),
        )
        link.send(
            message(
                M.PROVISION,
                device_id=device_id,
                hall=cfg.hall_id,
                key=key,
                seq_base=seq + 1,
                session_base=session + 1,
            )
        )
        print(state.text(OK["sent"], d=device_id, s=seq + 1, n=session + 1), flush=True)
        reply = link.wait(lambda: link.take(M.PROVISIONED), REPLY_TIMEOUT_S)
        if reply is None:
            raise HcpError(E["no_reply"].fill(f=factory_id, s=REPLY_TIMEOUT_S))
        if reply.device_id != device_id:
            raise HcpError(E["bad_id"].fill(got=reply.device_id, want=device_id))
        if not check_matches(reply.check, key):
            raise HcpError(E["bad_check"].fill(f=factory_id))

    # 4. confirmed: bind and release
    now = _now()
    _guard(
        registry.assign_staff,
        store=store,
        window_id=window_id,
        staff_id=staff["staff_id"],
        now_ms=now,
        name=staff.get("name"),
        number=staff.get("number"),
        title=staff.get("title"),
        department=staff.get("department"),
    )
    _guard(
        registry.finish_provisioning,
        store=store,
        device_id=device_id,
        window_id=window_id,
        session_base=session + 1,
        replaces=replace,
        now_ms=now,
    )
    if replace is not None:
        print(state.text(OK["retired"], d=replace, n=device_id))
    print(state.text(OK["done"], d=device_id, w=window_id, st=staff["staff_id"]))
    print(state.text(OK["reboot"]))
    return device_id, key


# ---------------------------------------------------------------- handlers


def _staff_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "staff_id": args.staff,
        "name": args.name,
        "number": args.number,
        "title": args.title,
        "department": args.department,
    }


def _device(state: State, args: argparse.Namespace) -> int | None:
    cfg, store = _open(state, args)
    device_id, key = provision(
        state,
        store=store,
        cfg=cfg,
        port=args.port,
        baud=args.baud,
        window_id=args.window,
        staff=_staff_args(args),
        device_id=args.device_id,
        board=args.board,
        replace=args.replace,
        rekey=args.rekey,
        timeout_s=args.timeout,
    )
    print(state.text(OK["bundle"], p=write_bundle(store, cfg, device_id)))
    if args.show_key:
        print(state.text(OK["key"], k=key.hex()))
    return None


def _staff(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry

    cfg, store = _open(state, args)
    changed = _guard(
        registry.assign_staff,
        store=store,
        window_id=args.window,
        now_ms=_now(),
        **_staff_args(args),
    )
    print(state.text(OK["bound" if changed else "same"], w=args.window, s=args.staff))
    for d in registry.devices(store):
        if d.window_id == args.window:
            print(state.text(OK["bundle"], p=write_bundle(store, cfg, d.device_id)))
    return None


def _retire(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry

    _, store = _open(state, args)
    _guard(registry.retire_device, store=store, device_id=args.device_id, now_ms=_now())
    print(state.text(OK["retire_done"], d=args.device_id))
    return None


def _history(state: State, args: argparse.Namespace) -> int | None:
    import datetime as dt

    from edge_agent import registry

    _, store = _open(state, args)
    rows = registry.history(store, window_id=args.window)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return None
    tz = dt.timezone(dt.timedelta(hours=8))
    for r in rows:
        at = dt.datetime.fromtimestamp(r["at_ms"] / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{at}  {r['event']:<14} device={r['device_id'] or '-':<16} "
            f"window={r['window_id'] or '-':<8} staff={r['staff_id'] or '-':<10} "
            f"{r['detail'] or ''}".rstrip()
        )
    return None


def _bundle(state: State, args: argparse.Namespace) -> int | None:
    cfg, store = _open(state, args)
    print(state.text(OK["bundle"], p=write_bundle(store, cfg, args.device_id)))
    return None


def _arguments(parser: HcpParser) -> None:
    ac = _agent()
    sub = parser.add_subparsers(
        dest="provision_command", metavar="<subcommand>", required=True, parser_class=HcpParser
    )

    def add(name: str, help_text: Text, handler: Any) -> HcpParser:
        p: HcpParser = sub.add_parser(
            name, help=parser.tr(help_text), description=parser.tr(help_text), lang=parser.lang
        )
        p.add_argument("--config", "-c", metavar="FILE", help=p.tr(ac.T["config"]))
        p.set_defaults(provision_handler=handler)
        return p

    def staff_options(p: HcpParser) -> None:
        p.add_argument("--window", required=True, type=ac._check_id, help=p.tr(T["window"]))
        p.add_argument("--staff", required=True, type=ac._check_id, help=p.tr(T["staff"]))
        p.add_argument("--name", help=p.tr(T["name"]))
        p.add_argument("--number", help=p.tr(T["number"]))
        p.add_argument("--title", help=p.tr(T["title"]))
        p.add_argument("--department", help=p.tr(T["department"]))

    p = add("device", T["device"], _device)
    p.add_argument("--port", "-p", required=True, help=p.tr(T["port"]))
    p.add_argument("--baud", type=int, default=115200, help=p.tr(T["baud"]))
    staff_options(p)
    p.add_argument("--device-id", type=ac._check_id, help=p.tr(T["device_id"]))
    p.add_argument("--board", help=p.tr(T["board"]))
    p.add_argument("--replace", type=ac._check_id, metavar="DEVICE", help=p.tr(T["replace"]))
    p.add_argument("--rekey", action="store_true", help=p.tr(T["rekey"]))
    p.add_argument("--show-key", action="store_true", help=p.tr(T["show_key"]))
    p.add_argument("--timeout", type=float, default=HELLO_TIMEOUT_S, help=p.tr(T["timeout"]))
    p = add("staff", T["staff_cmd"], _staff)
    staff_options(p)
    p = add("retire", T["retire"], _retire)
    p.add_argument("device_id", type=ac._check_id)
    p = add("history", T["history"], _history)
    p.add_argument("--window", type=ac._check_id, help=p.tr(T["window"]))
    p.add_argument("--json", action="store_true", help=p.tr(T["json"]))
    p = add("bundle", T["bundle"], _bundle)
    p.add_argument("device_id", type=ac._check_id)


def _dispatch(state: State, args: argparse.Namespace) -> int | None:
    result: int | None = args.provision_handler(state, args)
    sys.stdout.flush()
    return result


register("provision", help=T["help"], arguments=_arguments, run=_dispatch)
