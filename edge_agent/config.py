"""agent.toml: the agent's configuration, read once at start and validated completely.

Strategy: the file is parsed with the standard library's ``tomllib`` and walked by a small
reader that knows, for every key, its type, its limits and its default. The first problem
stops the start with a ``ConfigError`` that names the key (``policy.invite_s``), what it
expects and what it got, zh-CN first; unknown keys are errors too, because a misspelt key
would otherwise silently fall back to its default. The result is a tree of frozen
dataclasses that the rest of the agent reads and never changes.

What is *not* here, on purpose: device keys (they live in the store, are written by
``hcp agent add-device`` and never appear in a file an operator might paste into a ticket),
and the hub token itself (``hub.token_file`` names a file readable by the agent only).
Windows, staff and device bindings are store data, changed at run time; this file holds the
hall's identity, the policy and where the devices are attached.

Limits follow the wire protocol where a value goes to a device (docs/protocol.md,
struct Policy): invite_s ≤ 3600, reason_s ≤ 600, thanks_s ≤ 60, heartbeat_s ≤ 3600,
at most 12 reasons of ≤ 24 bytes each.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_agent.errors import ConfigError, Msg

STORE_FILE = "agent.sqlite3"  # inside data_dir

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # protocol id rule: MQTT topic level, file name
REASONS_MAX = 12  # protocol REASONS_MAX: what one CONFIG carries
REASON_TEXT_MAX = 24  # bytes of UTF-8, protocol struct Reason
QR_URL_MAX = 80  # the case token (≈ 110 characters) must still fit QR version 10 beside it
SERIAL_SCHEMES = ("rfc2217", "socket", "loop", "spy", "alt", "hwgrep")  # pyserial URL handlers
OVERFLOW_POLICIES = ("block", "drop_oldest", "drop_newest")
LOG_LEVELS = ("debug", "info", "warning", "error")

Overflow = Literal["block", "drop_oldest", "drop_newest"]


@dataclass(frozen=True)
class Reason:
    """One entry of the reason catalogue shown for 差评 (DOMAIN.md: catalogue is config)."""

    code: int
    zh: str
    en: str | None
    levels: int  # bit (level - 1) set: offered for that level


# A small default catalogue (indicator codes 5xx as in the provincial examples); a hall
# configures its jurisdiction's catalogue with [[policy.reasons]].
DEFAULT_REASONS = (
    Reason(501, "服务态度差", "Poor attitude", 0x18),
    Reason(502, "办理效率低", "Slow service", 0x18),
    Reason(503, "办事流程繁琐", "Complicated process", 0x18),
    Reason(504, "服务不规范", "Non-standard service", 0x18),
)


@dataclass(frozen=True)
class Policy:
    invite_s: int = 60  # rating window after an invite (DOMAIN.md: product default 10 s)
    reason_s: int = 20  # reason screen timeout on the device
    thanks_s: int = 3
    reason_required: bool = True  # a 差评 must carry a reason (Zhouzhi practice)
    fast_press_ms: int = 1000  # a counted press sooner than this after the invite is flagged
    expire_grace_s: int = 30  # an invite is expired this long after its window (late frames)
    qr_base_url: str | None = None  # hub rating page; None: no QR is rendered
    staff_qr_ttl_s: int = 12 * 3600  # the static staff QR in CONFIG: one working day
    reasons: tuple[Reason, ...] = DEFAULT_REASONS


@dataclass(frozen=True)
class OutboxLimits:
    max_rows: int = 1_000_000  # ~0.5 GB of queued items at most on a hall box
    max_age_s: int = 30 * 86400  # a hub outage longer than this needs a person, not a queue
    overflow: Overflow = "block"  # block: stop acknowledging devices; they keep ratings on flash


@dataclass(frozen=True)
class HubConfig:
    url: str | None = None  # None: no sync (a hall that only collects, or a test)
    token_file: Path | None = None  # required with url; read at start and after a 401
    ca_file: Path | None = None  # a private CA for the hub's certificate (else the system's)
    batch: int = 500  # items per request (docs/performance.md, "Backlog drain")
    concurrency: int = 2  # requests in flight (docs/performance.md, "Backlog drain")
    timeout_s: int = 30  # one request, connect to answer
    health_s: int = 300  # device health sample interval (0: none sent)


@dataclass(frozen=True)
class SerialLink:
    device: str
    port: str  # a device path or a pyserial URL (rfc2217://, socket://)
    baud: int = 115200


@dataclass(frozen=True)
class MqttConfig:
    """The hall broker (docs/hall-admin.md, MQTT devices); devices attach through it."""

    host: str
    port: int = 1883
    tls: bool = False
    ca: Path | None = None  # a private CA for the broker's certificate (else the system's)
    username: str = "hcp-agent"  # the agent's own broker account (hcp agent broker-files)
    password_file: Path | None = None  # None: connect without a password (embedded demo)
    embedded: bool = False  # start the pure-Python demo broker in-process on host:port


@dataclass(frozen=True)
class AgentConfig:
    hall_id: str
    data_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8470
    heartbeat_s: int = 30
    utc_offset_min: int = 8 * 60  # China has one time zone and no daylight saving
    log_level: str = "info"
    policy: Policy = field(default_factory=Policy)
    outbox: OutboxLimits = field(default_factory=OutboxLimits)
    hub: HubConfig = field(default_factory=HubConfig)
    serial: tuple[SerialLink, ...] = ()
    mqtt: MqttConfig | None = None
    source: str = "agent.toml"

    @property
    def store_path(self) -> Path:
        return self.data_dir / STORE_FILE


# ------------------------------------------------------------------ messages

_M = {
    "required": Msg("{src}：缺少必填项 {key}", "{src}: {key} is required"),
    "unknown": Msg("{src}：未知配置项 {key}（拼写错误？）", "{src}: unknown key {key} (misspelt?)"),
    "int": Msg(
        "{src}：{key} 应为 {lo}…{hi} 的整数，实际为 {got}",
        "{src}: {key} must be an integer {lo}…{hi}, got {got}",
    ),
    "bool": Msg(
        "{src}：{key} 应为 true 或 false，实际为 {got}",
        "{src}: {key} must be true or false, got {got}",
    ),
    "text": Msg(
        "{src}：{key} 应为 {lo}…{hi} 字节的文本，实际为 {got}",
        "{src}: {key} must be text of {lo}…{hi} bytes, got {got}",
    ),
    "id": Msg(
        "{src}：{key} 应为 1…32 个字符的标识（A-Z a-z 0-9 _ -），实际为 {got}",
        "{src}: {key} must be an id of 1…32 characters [A-Za-z0-9_-], got {got}",
    ),
    "choice": Msg(
        "{src}：{key} 应为 {choices} 之一，实际为 {got}",
        "{src}: {key} must be one of {choices}, got {got}",
    ),
    "table": Msg(
        "{src}：{key} 应为表（[{key}]），实际为 {got}", "{src}: {key} must be a table, got {got}"
    ),
    "list": Msg(
        "{src}：{key} 应为表数组（[[{key}]]），实际为 {got}",
        "{src}: {key} must be an array of tables ([[{key}]]), got {got}",
    ),
    "listen": Msg(
        "{src}：{key} 应为 “主机:端口”（端口 0…65535），实际为 {got}",
        "{src}: {key} must be host:port (port 0…65535), got {got}",
    ),
    "offset": Msg(
        "{src}：{key} 应为 UTC 偏移，如 “+08:00”，实际为 {got}",
        "{src}: {key} must be a UTC offset such as +08:00, got {got}",
    ),
    "url": Msg(
        "{src}：{key} 应为 http:// 或 https:// 开头、不超过 {hi} 个字符的地址，实际为 {got}",
        "{src}: {key} must be an http:// or https:// URL of at most {hi} characters, got {got}",
    ),
    "port": Msg(
        "{src}：{key} 应为设备路径（/dev/…）或 pyserial 地址（{schemes}），实际为 {got}",
        "{src}: {key} must be a device path (/dev/...) or a pyserial URL ({schemes}), got {got}",
    ),
    "duplicate": Msg(
        "{src}：{key} 重复：{got} 已在前面配置过",
        "{src}: {key} repeats {got}, which is configured above",
    ),
    "levels": Msg(
        "{src}：{key} 应为 1…5 的评价等级列表，实际为 {got}",
        "{src}: {key} must be a list of rating levels 1…5, got {got}",
    ),
    "too_many": Msg(
        "{src}：{key} 最多 {hi} 项，实际 {got} 项",
        "{src}: {key} holds at most {hi} entries, got {got}",
    ),
    "unreadable": Msg(
        "无法读取配置文件 {src}：{got}", "cannot read the configuration {src}: {got}"
    ),
    "syntax": Msg("{src} 不是有效的 TOML：{got}", "{src} is not valid TOML: {got}"),
}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Table:
    """Reads one TOML table; every key read is remembered, so leftovers are reported."""

    def __init__(self, data: dict[str, Any], prefix: str, src: str) -> None:
        self.data = data
        self.prefix = prefix
        self.src = src
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, msg: str, got: object = None, **values: object) -> ConfigError:
        key = self.key(name)
        return ConfigError(key, _M[msg].fill(src=self.src, key=key, got=_show(got), **values))

    def get(self, name: str, default: object = ..., *, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "required")
            return default
        return self.data[name]

    def integer(self, name: str, lo: int, hi: int, default: int) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(name, "int", value, lo=lo, hi=hi)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, "bool", value)
        return value

    def text(self, name: str, lo: int, hi: int, default: object = ..., **kw: bool) -> Any:
        value = self.get(name, default, **kw)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not lo <= len(value.encode()) <= hi:
            raise self.fail(name, "text", value, lo=lo, hi=hi)
        return value

    def ident(self, name: str, *, required: bool = True) -> str:
        value = self.get(name, required=required)
        if not isinstance(value, str) or not ID_RE.match(value):
            raise self.fail(name, "id", value)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, default)
        if value not in choices:
            raise self.fail(name, "choice", value, choices=", ".join(choices))
        assert isinstance(value, str)
        return value

    def table(self, name: str) -> _Table:
        value = self.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, "table", value)
        return _Table(value, self.key(name) + ".", self.src)

    def tables(self, name: str) -> list[_Table]:
        value = self.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(name, "list", value)
        return [_Table(v, f"{self.key(name)}[{i}].", self.src) for i, v in enumerate(value)]

    def done(self) -> None:
        for name in self.data:
            if name not in self.seen:
                raise self.fail(name, "unknown")


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate agent.toml. Relative paths in it are relative to the file."""
    path = Path(path)
    src = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError("", _M["unreadable"].fill(src=src, got=e.strerror or str(e))) from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("", _M["syntax"].fill(src=src, got=str(e))) from e
    return parse_config(data, base=path.resolve().parent, source=src)


def parse_config(data: dict[str, Any], *, base: Path, source: str = "agent.toml") -> AgentConfig:
    """Validate an already parsed TOML document (tests use this directly)."""
    root = _Table(data, "", source)
    agent = root.table("agent")
    hall_id = agent.ident("hall_id")
    data_dir_raw = agent.text("data_dir", 1, 4096, required=True)
    data_dir = (base / data_dir_raw).resolve()
    host, port = _listen(agent)
    heartbeat_s = agent.integer("heartbeat_s", 1, 3600, 30)
    offset = _utc_offset(agent)
    log_level = agent.choice("log_level", LOG_LEVELS, "info")
    agent.done()
    policy = _policy(root.table("policy"))
    outbox = _outbox(root.table("outbox"))
    hub = _hub(root.table("hub"), base)
    serial = _serial(root)
    mqtt = _mqtt(root.table("mqtt"), base) if "mqtt" in data else None
    root.done()
    return AgentConfig(
        hall_id=hall_id,
        data_dir=data_dir,
        listen_host=host,
        listen_port=port,
        heartbeat_s=heartbeat_s,
        utc_offset_min=offset,
        log_level=log_level,
        policy=policy,
        outbox=outbox,
        hub=hub,
        serial=serial,
        mqtt=mqtt,
        source=source,
    )


def _listen(t: _Table) -> tuple[str, int]:
    value = t.get("listen", "127.0.0.1:8470")
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if sep and host and port.isdigit() and int(port) <= 65535:
            return host.strip("[]"), int(port)
    raise t.fail("listen", "listen", value)


def _utc_offset(t: _Table) -> int:
    value = t.get("utc_offset", "+08:00")
    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", value) if isinstance(value, str) else None
    if m is None or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        raise t.fail("utc_offset", "offset", value)
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return -minutes if m.group(1) == "-" else minutes


def _policy(t: _Table) -> Policy:
    url = t.get("qr_base_url", None)
    if url is not None and (
        not isinstance(url, str)
        or not re.fullmatch(r"https?://[!-~]+", url)
        or len(url) > QR_URL_MAX
    ):
        raise t.fail("qr_base_url", "url", url, hi=QR_URL_MAX)
    policy = Policy(
        invite_s=t.integer("invite_s", 1, 3600, 60),
        reason_s=t.integer("reason_s", 0, 600, 20),
        thanks_s=t.integer("thanks_s", 0, 60, 3),
        reason_required=t.boolean("reason_required", True),
        fast_press_ms=t.integer("fast_press_ms", 0, 60_000, 1000),
        expire_grace_s=t.integer("expire_grace_s", 0, 3600, 30),
        qr_base_url=url,
        staff_qr_ttl_s=t.integer("staff_qr_ttl_s", 60, 7 * 86400, 12 * 3600),
        reasons=_reasons(t),
    )
    t.done()
    return policy


def _reasons(t: _Table) -> tuple[Reason, ...]:
    if "reasons" not in t.data:
        t.seen.add("reasons")
        return DEFAULT_REASONS
    entries = t.tables("reasons")
    if len(entries) > REASONS_MAX:
        raise t.fail("reasons", "too_many", len(entries), hi=REASONS_MAX)
    out: list[Reason] = []
    codes: set[int] = set()
    for e in entries:
        code = e.integer("code", 0, 0xFFFF, 0) if "code" in e.data else None
        if code is None:
            raise e.fail("code", "required")
        if code in codes:
            raise e.fail("code", "duplicate", code)
        codes.add(code)
        zh = e.text("zh", 1, REASON_TEXT_MAX, required=True)
        en = e.text("en", 1, REASON_TEXT_MAX, None)
        levels = e.get("levels", [4, 5])
        if (
            not isinstance(levels, list)
            or not levels
            or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in levels
            )
        ):
            raise e.fail("levels", "levels", levels)
        mask = 0
        for level in levels:
            mask |= 1 << (level - 1)
        e.done()
        out.append(Reason(code, zh, en, mask))
    return tuple(out)


def _outbox(t: _Table) -> OutboxLimits:
    limits = OutboxLimits(
        max_rows=t.integer("max_rows", 100, 100_000_000, 1_000_000),
        max_age_s=t.integer("max_age_days", 1, 3650, 30) * 86400,
        overflow=t.choice("overflow", OVERFLOW_POLICIES, "block"),  # type: ignore[arg-type]
    )
    t.done()
    return limits


def _hub(t: _Table, base: Path) -> HubConfig:
    url = t.get("url", None)
    if url is not None and (not isinstance(url, str) or not re.fullmatch(r"https?://[!-~]+", url)):
        raise t.fail("url", "url", url, hi=200)
    token_file = t.text("token_file", 1, 4096, None)
    ca_file = t.text("ca_file", 1, 4096, None)
    hub = HubConfig(
        url=url,
        token_file=(base / token_file) if token_file else None,
        ca_file=(base / ca_file) if ca_file else None,
        batch=t.integer("batch", 1, 1000, 500),  # the hub takes at most 1000 per request
        concurrency=t.integer("concurrency", 1, 8, 2),
        timeout_s=t.integer("timeout_s", 1, 600, 30),
        health_s=t.integer("health_s", 0, 86400, 300),
    )
    if url is not None and token_file is None:
        raise t.fail("token_file", "required")
    t.done()
    return hub


def _mqtt(t: _Table, base: Path) -> MqttConfig:
    host = t.text("host", 1, 253, required=True)
    tls = t.boolean("tls", False)
    ca = t.text("ca", 1, 4096, None)
    password_file = t.text("password_file", 1, 4096, None)
    cfg = MqttConfig(
        host=host,
        port=t.integer("port", 0, 65535, 8883 if tls else 1883),
        tls=tls,
        ca=(base / ca) if ca else None,
        username=t.ident("username", required=False) if "username" in t.data else "hcp-agent",
        password_file=(base / password_file) if password_file else None,
        embedded=t.boolean("embedded", False),
    )
    t.done()
    return cfg


def _serial(root: _Table) -> tuple[SerialLink, ...]:
    out: list[SerialLink] = []
    devices: set[str] = set()
    ports: set[str] = set()
    for t in root.tables("serial"):
        device = t.ident("device")
        if device in devices:
            raise t.fail("device", "duplicate", device)
        port = t.get("port", required=True)
        if not isinstance(port, str) or not _is_port(port):
            raise t.fail("port", "port", port, schemes=", ".join(s + "://" for s in SERIAL_SCHEMES))
        if port in ports:
            raise t.fail("port", "duplicate", port)
        baud = t.integer("baud", 300, 4_000_000, 115200)
        t.done()
        devices.add(device)
        ports.add(port)
        out.append(SerialLink(device=device, port=port, baud=baud))
    return tuple(out)


def _is_port(port: str) -> bool:
    if "://" in port:
        scheme = port.split("://", 1)[0]
        return scheme in SERIAL_SCHEMES and len(port) > len(scheme) + 3
    return port.startswith("/") or re.fullmatch(r"COM\d{1,3}", port) is not None
