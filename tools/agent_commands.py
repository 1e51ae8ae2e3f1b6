"""``hcp agent …``: run the hall edge agent and administer its store.

Strategy: one registered command, ``agent``, with subcommands (run, init, check-config,
add-window, add-device, bind, quarantine, devices, windows, qr-secret, broker-files,
openapi). Each opens the store through edge_agent's own functions, so the CLI and the
running agent apply the same rules; SQLite's lock orders a CLI write against the running
agent's writer. Heavy imports happen inside the handlers, so ``hcp --help`` stays fast.

Keys are read from files and written to files with mode 0600, never taken on the command
line (it would land in shell history and ``ps``) and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
    from edge_agent.store import Store

CONFIG_ENV = "HCP_AGENT_CONFIG"
OPENAPI_DOC = Path(__file__).resolve().parent.parent / "docs" / "agent-case-api.openapi.json"
KEY_BYTES = 32  # generated device keys: the protocol's KEY_MAX

T = {
    "help": Text("大厅边缘代理：运行与管理", "hall edge agent: run and administer"),
    "config": Text(
        "配置文件（默认 $" + CONFIG_ENV + " 或 agent.toml）",
        "configuration file (default $" + CONFIG_ENV + " or agent.toml)",
    ),
    "run": Text("运行代理（直到 SIGTERM/SIGINT）", "run the agent (until SIGTERM/SIGINT)"),
    "init": Text("创建或升级存储", "create or migrate the store"),
    "check": Text("检查配置文件并退出", "validate the configuration and exit"),
    "add_window": Text("登记或改名一个窗口", "register or relabel a window"),
    "add_device": Text("登记设备并保存其密钥", "register a device and store its key"),
    "bind": Text("把设备绑定到窗口", "bind a device to a window"),
    "quarantine": Text("隔离或放行设备", "quarantine or release a device"),
    "devices": Text("列出设备（不含密钥）", "list devices (without keys)"),
    "windows": Text("列出窗口", "list windows"),
    "qr_secret": Text(
        "把二维码令牌密钥写入文件（交给中心平台用于验证）",
        "write the QR token secret to a file (for the hub to verify tokens)",
    ),
    "openapi": Text("生成案件接口的 OpenAPI 文档", "write the case API's OpenAPI document"),
    "broker_files": Text(
        "按设备登记生成 mosquitto 的密码文件和 ACL 文件",
        "write mosquitto's password and ACL files from the device registry",
    ),
    "password_out": Text(
        "mosquitto password_file（默认 <data_dir>/mosquitto.passwd）",
        "mosquitto password_file (default <data_dir>/mosquitto.passwd)",
    ),
    "acl_out": Text(
        "mosquitto acl_file（默认 <data_dir>/mosquitto.acl）",
        "mosquitto acl_file (default <data_dir>/mosquitto.acl)",
    ),
    "reload_pid": Text(
        "写完后向此 pid 文件中的 mosquitto 发送 SIGHUP 以重新加载",
        "then send SIGHUP to the mosquitto whose pid is in this file, so it reloads",
    ),
    "id": Text("标识（A-Z a-z 0-9 _ -，1…32 个字符）", "id ([A-Za-z0-9_-], 1…32 characters)"),
    "label": Text(
        "窗口名称（设备上显示，≤ 32 字节）", "window label (shown on devices, ≤ 32 bytes)"
    ),
    "kind": Text("设备类型", "device kind"),
    "window": Text("绑定的窗口", "window to bind to"),
    "unbind": Text("解除绑定", "remove the binding"),
    "key_file": Text(
        "从文件读取设备密钥（十六进制，16…32 字节）",
        "read the device key from a file (hex, 16…32 bytes)",
    ),
    "generate_key": Text(
        "生成新密钥并写入此文件（权限 0600）",
        "generate a new key and write it to this file (mode 0600)",
    ),
    "release": Text("解除隔离", "release from quarantine"),
    "output": Text("输出文件", "output file"),
    "check_doc": Text("只检查文件是否最新", "only check that the file is current"),
    "json": Text("以 JSON 输出", "print JSON"),
}

E = {
    "config": Text("配置错误：{m}", "configuration error: {m}"),
    "store": Text("存储错误：{m}", "store error: {m}"),
    "key_file": Text("无法读取密钥文件 {p}：{e}", "cannot read the key file {p}: {e}"),
    "key_format": Text(
        "密钥文件 {p} 应包含 32…64 个十六进制字符（16…32 字节）",
        "the key file {p} must hold 32…64 hex characters (16…32 bytes)",
    ),
    "exists": Text("文件 {p} 已存在，不会覆盖", "{p} exists; it is not overwritten"),
    "id": Text("{v!r} 不是有效的标识", "{v!r} is not a valid id"),
    "stale": Text("{p} 已过期：运行 hcp agent openapi", "{p} is stale: run hcp agent openapi"),
    "no_mqtt": Text(
        "{p} 没有 [mqtt] 节：代理的 MQTT 用户名和密码文件从那里读取",
        "{p} has no [mqtt] section: the agent's MQTT username and password file come from it",
    ),
    "mqtt_password_file": Text(
        "{p} 的 [mqtt] 缺少 password_file：代理需要自己的 MQTT 账号",
        "[mqtt] in {p} needs password_file: the agent needs its own broker account",
    ),
    "reload": Text("无法通知 mosquitto 重新加载（{p}）：{e}", "cannot reload mosquitto ({p}): {e}"),
    "key_choice": Text(
        "请二选一：--key-file 或 --generate-key", "give one of --key-file or --generate-key"
    ),
}

OK = {
    "init": Text("存储就绪：{p}（结构版本 {v}）", "store ready: {p} (schema version {v})"),
    "check": Text(
        "配置有效：大厅 {h}，{n} 条串口链路，存储 {p}",
        "configuration valid: hall {h}, {n} serial links, store {p}",
    ),
    "window": Text("窗口 {w} 已登记", "window {w} registered"),
    "device": Text("设备 {d} 已登记", "device {d} registered"),
    "key": Text(
        "新密钥已写入 {p}（0600）：请通过配网流程写入设备，然后删除此文件",
        "new key written to {p} (0600): provision it to the device, then delete the file",
    ),
    "bind": Text("设备 {d} → 窗口 {w}", "device {d} → window {w}"),
    "quarantine": Text("设备 {d}：{s}", "device {d}: {s}"),
    "secret": Text(
        "二维码令牌密钥（key id {k}）已写入 {p}（0600）",
        "QR token secret (key id {k}) written to {p} (0600)",
    ),
    "openapi": Text("已写入 {p}", "wrote {p}"),
    "broker_files": Text(
        "已写入 {pw} 和 {acl}：{n} 个设备账号和代理账号 {u}；未开户：{x}",
        "wrote {pw} and {acl}: {n} device accounts and the agent's {u}; no account: {x}",
    ),
    "reloaded": Text("已通知 mosquitto（pid {pid}）重新加载", "mosquitto (pid {pid}) reloaded"),
    "current": Text("{p} 是最新的", "{p} is current"),
}


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get(CONFIG_ENV) or "agent.toml")


def _load(args: argparse.Namespace) -> AgentConfig:
    from edge_agent.config import load_config
    from edge_agent.errors import AgentError

    try:
        return load_config(_config_path(args))
    except AgentError as e:
        raise _fail(e, E["config"]) from e


def _store(state: State, cfg: AgentConfig) -> Store:
    from edge_agent.errors import AgentError
    from edge_agent.store import Store

    try:
        store = Store(cfg.store_path)
    except AgentError as e:
        raise _fail(e, E["store"]) from e
    state.on_close(store.close)
    return store


def _fail(e: Any, template: Text | None = None) -> HcpError:
    """An edge_agent AgentError as an HcpError (both languages kept)."""
    if template is None:
        return HcpError(Text(e.message.zh, e.message.en))
    return HcpError(Text(template.zh.format(m=e.message.zh), template.en.format(m=e.message.en)))


def _now() -> int:
    from edge_agent.store import now_ms

    return now_ms()


def _check_id(value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", value):
        raise argparse.ArgumentTypeError(E["id"].format("en", v=value))
    return value


def _write_secret_file(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise HcpError(E["exists"].fill(p=path)) from e
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


# ---------------------------------------------------------------- handlers


def _run(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent.agent import run_agent
    from edge_agent.errors import AgentError
    from edge_agent.logs import setup_logging

    cfg = _load(args)
    setup_logging(cfg.log_level)
    try:
        run_agent(cfg)
    except AgentError as e:
        raise _fail(e) from e
    return None


def _init(state: State, args: argparse.Namespace) -> int | None:
    cfg = _load(args)
    store = _store(state, cfg)
    print(state.text(OK["init"], p=cfg.store_path, v=store.schema_version()))
    return None


def _check(state: State, args: argparse.Namespace) -> int | None:
    cfg = _load(args)
    print(state.text(OK["check"], h=cfg.hall_id, n=len(cfg.serial), p=cfg.store_path))
    return None


def _add_window(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry
    from edge_agent.errors import AgentError

    store = _store(state, _load(args))
    try:
        registry.add_window(store, window_id=args.window_id, label=args.label, now_ms=_now())
    except AgentError as e:
        raise _fail(e) from e
    print(state.text(OK["window"], w=args.window_id))
    return None


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise HcpError(E["key_file"].fill(p=path, e=e.strerror or e)) from e
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if not 16 <= len(key) <= 32:
        raise HcpError(E["key_format"].fill(p=path))
    return key


def _add_device(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry
    from edge_agent.errors import AgentError

    if args.key_file and args.generate_key:
        raise HcpError(E["key_choice"])
    key: bytes | None = None
    if args.key_file:
        key = _read_key(Path(args.key_file))
    elif args.generate_key:
        key = secrets.token_bytes(KEY_BYTES)
        _write_secret_file(Path(args.generate_key), key.hex())
    store = _store(state, _load(args))
    kind = registry.KIND_BY_NAME[args.kind] if args.kind else None
    try:
        registry.add_device(
            store,
            device_id=args.device_id,
            key=key,
            kind=kind,
            window_id=args.window,
            now_ms=_now(),
        )
    except AgentError as e:
        raise _fail(e) from e
    print(state.text(OK["device"], d=args.device_id))
    if args.generate_key:
        print(state.text(OK["key"], p=args.generate_key))
    return None


def _bind(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry
    from edge_agent.errors import AgentError

    store = _store(state, _load(args))
    window = None if args.unbind else args.window
    try:
        registry.bind_device(store, device_id=args.device_id, window_id=window, now_ms=_now())
    except AgentError as e:
        raise _fail(e) from e
    print(state.text(OK["bind"], d=args.device_id, w=window or "-"))
    return None


def _quarantine(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry
    from edge_agent.errors import AgentError

    store = _store(state, _load(args))
    reason = None if args.release else registry.QUARANTINE_ADMIN
    try:
        registry.set_quarantine(store, device_id=args.device_id, reason=reason, now_ms=_now())
    except AgentError as e:
        raise _fail(e) from e
    shown = Text("已放行", "released") if args.release else Text("已隔离", "quarantined")
    print(state.text(OK["quarantine"], d=args.device_id, s=state.text(shown)))
    return None


def _devices(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry

    store = _store(state, _load(args))
    rows = [d.public() for d in registry.devices(store)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return None
    for d in rows:
        print(
            f"{d['device_id']:<16} {d['kind'] or '-':<9} {d['window_id'] or '-':<10} "
            f"{'online' if d['online'] else 'offline':<8} key={'yes' if d['has_key'] else 'no':<3} "
            f"quarantine={d['quarantine'] or '-'} committed={d['committed_seq']}"
        )
    return None


def _windows(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent import registry

    store = _store(state, _load(args))
    rows = registry.windows(store)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return None
    for w in rows:
        print(
            f"{w['window_id']:<10} {w['label']:<16} staff={w['staff_id'] or '-':<10} "
            f"{'paused' if w['paused'] else 'open':<6} devices={','.join(w['devices']) or '-'}"
        )
    return None


def _qr_secret(state: State, args: argparse.Namespace) -> int | None:
    from edge_agent.service import QR_KID

    cfg = _load(args)
    store = _store(state, cfg)
    secret = store.secret(f"qr.{QR_KID}")
    _write_secret_file(
        Path(args.output),
        json.dumps({"hall_id": cfg.hall_id, "kid": QR_KID, "secret_hex": secret.hex()}),
    )
    print(state.text(OK["secret"], k=QR_KID, p=args.output))
    return None


def _broker_files(state: State, args: argparse.Namespace) -> int | None:
    import signal

    from edge_agent.broker import agent_password, write_broker_files
    from edge_agent.errors import AgentError

    cfg = _load(args)
    if cfg.mqtt is None:
        raise HcpError(E["no_mqtt"].fill(p=_config_path(args)))
    if cfg.mqtt.password_file is None:
        raise HcpError(E["mqtt_password_file"].fill(p=_config_path(args)))
    store = _store(state, cfg)
    pw = Path(args.password_file) if args.password_file else cfg.data_dir / "mosquitto.passwd"
    acl = Path(args.acl_file) if args.acl_file else cfg.data_dir / "mosquitto.acl"
    try:
        result = write_broker_files(
            store,
            hall=cfg.hall_id,
            agent_user=cfg.mqtt.username,
            agent_secret=agent_password(cfg.mqtt.password_file),
            password_file=pw,
            acl_file=acl,
        )
    except AgentError as e:
        raise _fail(e) from e
    except OSError as e:
        raise HcpError(Text(str(e), str(e))) from e
    excluded = ", ".join(f"{d} ({why})" for d, why in sorted(result.excluded.items())) or "-"
    print(
        state.text(
            OK["broker_files"],
            pw=pw,
            acl=acl,
            n=len(result.devices),
            u=cfg.mqtt.username,
            x=excluded,
        )
    )
    if args.reload_pid:
        try:
            pid = int(Path(args.reload_pid).read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as e:
            raise HcpError(E["reload"].fill(p=args.reload_pid, e=e)) from e
        print(state.text(OK["reloaded"], pid=pid))
    return None


def openapi_document() -> str:
    from edge_agent.api import create_app

    schema = create_app(None).openapi()
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _openapi(state: State, args: argparse.Namespace) -> int | None:
    path = Path(args.output) if args.output else OPENAPI_DOC
    text = openapi_document()
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise HcpError(E["stale"].fill(p=path))
        print(state.text(OK["current"], p=path))
        return None
    path.write_text(text, encoding="utf-8")
    print(state.text(OK["openapi"], p=path))
    return None


# ---------------------------------------------------------------- parser


def _arguments(parser: HcpParser) -> None:
    sub = parser.add_subparsers(
        dest="agent_command", metavar="<subcommand>", required=True, parser_class=HcpParser
    )

    def add(name: str, help_text: Text, handler: Any, config: bool = True) -> HcpParser:
        p: HcpParser = sub.add_parser(
            name, help=parser.tr(help_text), description=parser.tr(help_text), lang=parser.lang
        )
        if config:
            p.add_argument("--config", "-c", metavar="FILE", help=p.tr(T["config"]))
        p.set_defaults(agent_handler=handler)
        return p

    add("run", T["run"], _run)
    add("init", T["init"], _init)
    add("check-config", T["check"], _check)
    p = add("add-window", T["add_window"], _add_window)
    p.add_argument("window_id", type=_check_id, help=p.tr(T["id"]))
    p.add_argument("--label", required=True, help=p.tr(T["label"]))
    p = add("add-device", T["add_device"], _add_device)
    p.add_argument("device_id", type=_check_id, help=p.tr(T["id"]))
    p.add_argument("--kind", choices=("evaluator", "qr", "combined"), help=p.tr(T["kind"]))
    p.add_argument("--window", type=_check_id, help=p.tr(T["window"]))
    p.add_argument("--key-file", metavar="FILE", help=p.tr(T["key_file"]))
    p.add_argument("--generate-key", metavar="FILE", help=p.tr(T["generate_key"]))
    p = add("bind", T["bind"], _bind)
    p.add_argument("device_id", type=_check_id, help=p.tr(T["id"]))
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--window", type=_check_id, help=p.tr(T["window"]))
    group.add_argument("--unbind", action="store_true", help=p.tr(T["unbind"]))
    p = add("quarantine", T["quarantine"], _quarantine)
    p.add_argument("device_id", type=_check_id, help=p.tr(T["id"]))
    p.add_argument("--release", action="store_true", help=p.tr(T["release"]))
    p = add("devices", T["devices"], _devices)
    p.add_argument("--json", action="store_true", help=p.tr(T["json"]))
    p = add("windows", T["windows"], _windows)
    p.add_argument("--json", action="store_true", help=p.tr(T["json"]))
    p = add("qr-secret", T["qr_secret"], _qr_secret)
    p.add_argument("--output", "-o", required=True, metavar="FILE", help=p.tr(T["output"]))
    p = add("broker-files", T["broker_files"], _broker_files)
    p.add_argument("--password-file", metavar="FILE", help=p.tr(T["password_out"]))
    p.add_argument("--acl-file", metavar="FILE", help=p.tr(T["acl_out"]))
    p.add_argument("--reload-pid", metavar="PIDFILE", help=p.tr(T["reload_pid"]))
    p = add("openapi", T["openapi"], _openapi, config=False)
    p.add_argument("--output", "-o", metavar="FILE", help=p.tr(T["output"]))
    p.add_argument("--check", action="store_true", help=p.tr(T["check_doc"]))


def _dispatch(state: State, args: argparse.Namespace) -> int | None:
    handler = args.agent_handler
    result: int | None = handler(state, args)
    sys.stdout.flush()
    return result


register("agent", help=T["help"], arguments=_arguments, run=_dispatch)
