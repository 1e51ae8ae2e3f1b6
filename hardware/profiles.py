"""Board profiles: load hardware/boards/<id>.json and check it against what the board can do.

A profile is data, read by the firmware (MicroPython's json) and by tools (this module).
The checks here are what a wrong profile would otherwise cost on the bench: a pin the
MCU does not have or has given to flash, USB or the radio; a pin used twice in one
device kind; an I2C, SPI or UART pin the RP2040 cannot route to that peripheral; a
watchdog period the MCU cannot time; an outbox that LittleFS cannot fit in the
filesystem. Every problem is reported at once, each naming the file and the field:

    pico-w.json: displays.evaluator.i2c.sda: GPIO 7 cannot be SDA of I2C0 (use 0, 4, 8, ...)

    python -m hardware.profiles [PROFILE.json ...]    # no arguments: every board here

Pure standard library, so tools, the simulator and CI can all use it; the firmware
reads the same JSON and trusts it, because this check ran first (tests/firmware_storage).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BOARDS = Path(__file__).resolve().parent / "boards"
SCHEMA = 1
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")  # HELLO.board is text <= 24 bytes
KINDS = ("evaluator", "qr", "combined")  # protocol kinds 1, 2, 3
BUTTONS = 5  # 非常满意 ... 非常不满意, left to right (GB/T 39046-2020 A.8 order)
TRANSPORTS = ("serial", "mqtt")
BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
DISPLAYS = {  # driver -> (colour, sizes it is sold in)
    "ssd1306": (False, ((128, 64), (128, 32))),
    "sh1106": (False, ((128, 64),)),
    "st7789": (True, ((240, 240), (320, 240), (240, 320), (135, 240), (240, 135))),
}
LFS_ATTR_MAX = 1022  # LittleFS default; caps the inline file size
FS_RESERVE = {"unix": 64 * 1024, "esp32": 256 * 1024, "rp2": 256 * 1024}
# ^ room for config, counters and (on boards) the firmware's own .mpy files


class Mcu:
    """What one MCU offers: GPIO numbers, pins it keeps for itself, fixed peripheral pins."""

    def __init__(
        self,
        name: str,
        gpios: Iterable[int],
        reserved: dict[int, str],
        watchdog_max_ms: int,
        routes: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.name = name
        self.gpios = frozenset(gpios)
        self.reserved = reserved
        self.watchdog_max_ms = watchdog_max_ms
        self.routes = routes  # None: any GPIO reaches any peripheral (a GPIO matrix)


MCUS = {
    # ESP32-S3-WROOM-1 on the DevKitC-1: GPIO matrix, so any free GPIO does any job.
    "esp32s3": Mcu(
        "ESP32-S3",
        [*range(0, 22), *range(26, 49)],
        {
            **{p: "SPI flash/PSRAM" for p in range(26, 33)},
            **{p: "octal PSRAM on N8R8 modules" for p in range(33, 38)},
            0: "a strapping pin (BOOT button)",
            3: "a strapping pin (JTAG source)",
            45: "a strapping pin (flash voltage)",
            46: "a strapping pin (boot mode)",
            19: "USB D-",
            20: "USB D+",
            38: "the board's RGB LED (DevKitC-1 v1.1)",
            43: "UART0 TX (the REPL on the USB-UART bridge)",
            44: "UART0 RX (the REPL on the USB-UART bridge)",
        },
        watchdog_max_ms=60 * 60 * 1000,
    ),
    # RP2040 on the Pico W: fixed function pins per peripheral instance.
    "rp2040": Mcu(
        "RP2040",
        range(30),  # 23, 24, 25 and 29 are wired to the radio inside the Pico W
        {
            23: "the CYW43 radio (power)",
            24: "the CYW43 radio (data)",
            25: "the CYW43 radio (chip select)",
            29: "the CYW43 radio (clock) and VSYS sense",
        },
        watchdog_max_ms=8388,  # 24-bit counter at 2 ticks per microsecond (RP2040-E1)
        routes={  # RP2040 datasheet, 1.4.3 GPIO functions (pins on the Pico W header)
            "uart0.tx": (0, 12, 16, 28),
            "uart0.rx": (1, 13, 17),
            "uart1.tx": (4, 8, 20),
            "uart1.rx": (5, 9, 21),
            "i2c0.sda": (0, 4, 8, 12, 16, 20),
            "i2c0.scl": (1, 5, 9, 13, 17, 21),
            "i2c1.sda": (2, 6, 10, 14, 18, 26),
            "i2c1.scl": (3, 7, 11, 15, 19, 27),
            "spi0.sck": (2, 6, 18, 22),
            "spi0.mosi": (3, 7, 19),
            "spi1.sck": (10, 14, 26),
            "spi1.mosi": (11, 15, 27),
        },
    ),
    "unix": Mcu("unix port", (), {}, watchdog_max_ms=60 * 60 * 1000),
}
PORTS = {"esp32s3": "esp32", "rp2040": "rp2", "unix": "unix"}


class ProfileError(ValueError):
    """A profile that must not be used; .problems lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class _Check:
    def __init__(self, profile: dict[str, Any]) -> None:
        self.p = profile
        self.problems: list[str] = []

    def bad(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def get(self, where: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
        node: Any = self.p
        for key in where.split("."):
            if not isinstance(node, dict) or key not in node:
                if required:
                    self.bad(where, "missing")
                return None
            node = node[key]
        if isinstance(node, bool) and kind in (int, (int,)):
            self.bad(where, f"must be an integer, not {node!r}")
            return None
        if not isinstance(node, kind):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = " or ".join(k.__name__ for k in kinds)
            self.bad(where, f"must be {names}, not {node!r}")
            return None
        return node

    def int_in(self, where: str, low: int, high: int, required: bool = True) -> int | None:
        v: int | None = self.get(where, int, required)
        if v is not None and not low <= v <= high:
            self.bad(where, f"{v} is outside {low}..{high}")
            return None
        return v

    def one_of(self, where: str, allowed: Iterable[Any], required: bool = True) -> Any:
        v = self.get(where, (str, int), required)
        allowed = tuple(allowed)
        if v is not None and v not in allowed:
            self.bad(where, f"{v!r} is not one of {', '.join(map(repr, allowed))}")
            return None
        return v


def validate(profile: Any, source: str = "profile") -> list[str]:
    """Every problem with profile (an already parsed JSON object); [] if it is usable."""
    if not isinstance(profile, dict):
        return ["the profile must be a JSON object"]
    c = _Check(profile)
    if c.get("schema", int) not in (None, SCHEMA):
        c.bad("schema", f"{profile['schema']} is not {SCHEMA}, the version this code reads")
    pid = c.get("id", str)
    if pid is not None and not ID_RE.match(pid):
        c.bad("id", f"{pid!r} must be 1-24 of a-z, 0-9 and '-' (it is HELLO's board field)")
    stem = Path(source).stem
    if pid is not None and source.endswith(".json") and stem != pid:
        c.bad("id", f"{pid!r} differs from the file name {stem}.json")
    c.get("name", str)
    mcu_name = c.one_of("mcu", MCUS)
    port = c.one_of("port", PORTS.values())
    if mcu_name is not None and port is not None and PORTS[mcu_name] != port:
        c.bad("port", f"{mcu_name} runs MicroPython's {PORTS[mcu_name]} port, not {port}")
    mcu = MCUS.get(mcu_name) if mcu_name else None
    sim = port == "unix"
    kinds = c.get("kinds", list) or []
    for i, k in enumerate(kinds):
        if k not in KINDS:
            c.bad(f"kinds[{i}]", f"{k!r} is not one of {', '.join(KINDS)}")
    if not kinds:
        c.bad("kinds", "must name at least one device kind")

    common: dict[int, str] = {}  # pin -> the field that uses it, for every kind

    def pin(where: str, value: Any, used: dict[int, str], route: str | None = None) -> None:
        if sim or mcu is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            c.bad(where, f"must be a GPIO number, not {value!r}")
            return
        if value not in mcu.gpios:
            c.bad(where, f"GPIO {value} does not exist on the {mcu.name} board")
        elif value in mcu.reserved:
            c.bad(where, f"GPIO {value} is {mcu.reserved[value]}")
        if route is not None and mcu.routes is not None:
            instance, _, role = route.partition(".")
            allowed = mcu.routes.get(route)
            if allowed is None:
                c.bad(where, f"{mcu.name} has no {instance.upper()} {role.upper()}")
            elif value not in allowed:
                c.bad(
                    where,
                    f"GPIO {value} cannot be {role.upper()} of {instance.upper()} "
                    f"(use {', '.join(map(str, allowed))})",
                )
        if value in used:
            c.bad(where, f"GPIO {value} is already {used[value]}")
        else:
            used[value] = where

    # buttons: five, in level order
    pins = c.get("buttons.pins", list) or []
    if len(pins) != BUTTONS:
        c.bad("buttons.pins", f"needs {BUTTONS} buttons (levels 1..5), has {len(pins)}")
    if sim and pins and sorted(pins) != list(range(len(pins))):
        c.bad("buttons.pins", "the simulator numbers its buttons 0..4")
    for i, p in enumerate(pins):
        pin(f"buttons.pins[{i}]", p, common)
    c.get("buttons.active_low", bool)
    c.one_of("buttons.pull", ("up", "down", "none"))
    c.int_in("buttons.debounce_ms", 5, 200)  # DESIGN.md: ~50 ms, first edge acts at once
    c.int_in("buttons.safe_boot", 0, BUTTONS - 1)
    if c.get("buttons.active_low", bool) and c.get("buttons.pull", str) == "down":
        c.bad("buttons.pull", "active-low buttons need a pull-up (or none with external ones)")

    # LED, buzzer, UART: shared by every kind
    if sim:
        for where in ("led.pin", "buzzer.pin", "uart.tx", "uart.rx", "uart.id"):
            if c.get(where, object, required=False) is not None:
                c.bad(where, "the simulator provides this; a sim profile names no pins")
        c.get("uart.path", str)
        c.get("control.path", str)
    else:
        pin("led.pin", c.get("led.pin", int), common)
        pin("buzzer.pin", c.get("buzzer.pin", int), common)
        uid = c.int_in("uart.id", 0, 2)
        pin("uart.tx", c.get("uart.tx", int), common, None if uid is None else f"uart{uid}.tx")
        pin("uart.rx", c.get("uart.rx", int), common, None if uid is None else f"uart{uid}.rx")
        if mcu is MCUS["esp32s3"] and uid == 0:
            c.bad("uart.id", "UART0 is the REPL on this board; use UART1 for the agent link")
    c.get("led.active_low", bool)
    c.one_of("buzzer.kind", ("passive", "active"))
    c.int_in("buzzer.freq_hz", 100, 10000)
    baud = c.get("uart.baud", int)
    if baud is not None and baud not in BAUDS:
        c.bad("uart.baud", f"{baud} is not a standard rate ({', '.join(map(str, BAUDS))})")

    # displays, one per kind; their pins must not collide with the common ones
    for kind in kinds:
        if kind not in KINDS:
            continue
        base = f"displays.{kind}"
        if c.get(base, dict) is None:
            continue
        driver = c.one_of(f"{base}.driver", DISPLAYS)
        w = c.get(f"{base}.width", int)
        h = c.get(f"{base}.height", int)
        colour = c.get(f"{base}.colour", bool)
        if driver is not None:
            is_colour, sizes = DISPLAYS[driver]
            if w is not None and h is not None and (w, h) not in sizes:
                c.bad(f"{base}", f"{driver} panels are sold as {sizes}, not {(w, h)}")
            if colour is not None and colour != is_colour:
                c.bad(
                    f"{base}.colour", f"{driver} is {'a colour' if is_colour else 'a mono'} panel"
                )
        if kind in ("qr", "combined") and w is not None and h is not None and min(w, h) < 128:
            # QR version 10 (57 modules) plus quiet zone needs >= 2 px a module to scan.
            c.bad(f"{base}", f"{w}x{h} is too small for a QR code phones can scan")
        bus = c.one_of(f"{base}.bus", ("sim",) if sim else ("i2c", "spi"))
        used = dict(common)
        if bus == "i2c":
            bid = c.int_in(f"{base}.i2c.id", 0, 1)
            i2c = None if bid is None else f"i2c{bid}"
            pin(f"{base}.i2c.sda", c.get(f"{base}.i2c.sda", int), used, i2c and i2c + ".sda")
            pin(f"{base}.i2c.scl", c.get(f"{base}.i2c.scl", int), used, i2c and i2c + ".scl")
            c.one_of(f"{base}.i2c.freq", (100000, 400000))
            c.one_of(f"{base}.i2c.address", (0x3C, 0x3D))
        elif bus == "spi":
            # RP2040: SPI0 and SPI1; ESP32-S3: SPI2 and SPI3 are MicroPython's SPI(1), SPI(2)
            low, high = (0, 1) if mcu is MCUS["rp2040"] else (1, 2)
            bid = c.int_in(f"{base}.spi.id", low, high)
            spi = None if bid is None else f"spi{bid}"
            pin(f"{base}.spi.sck", c.get(f"{base}.spi.sck", int), used, spi and spi + ".sck")
            pin(f"{base}.spi.mosi", c.get(f"{base}.spi.mosi", int), used, spi and spi + ".mosi")
            for role in ("cs", "dc", "rst", "backlight"):
                pin(f"{base}.spi.{role}", c.get(f"{base}.spi.{role}", int), used)
            c.int_in(f"{base}.spi.baudrate", 1_000_000, 80_000_000)
            c.one_of(f"{base}.rotation", (0, 1, 2, 3))
            c.int_in(f"{base}.x_offset", 0, 80)
            c.int_in(f"{base}.y_offset", 0, 80)
            c.get(f"{base}.invert", bool)

    # network
    if c.get("network.wifi", bool) and sim:
        c.bad("network.wifi", "the simulator reaches the broker through the host")
    transports = c.get("network.transports", list) or []
    for i, t in enumerate(transports):
        if t not in TRANSPORTS:
            c.bad(f"network.transports[{i}]", f"{t!r} is not one of {', '.join(TRANSPORTS)}")
    if "mqtt" in transports and not sim and c.get("network.wifi", bool) is False:
        c.bad("network.transports", "mqtt needs a network (wifi is false)")

    # storage: LittleFS v2 and the outbox in it
    _storage(c, sim, port)

    # watchdog
    if mcu is not None:
        c.int_in("watchdog.timeout_ms", 1000, mcu.watchdog_max_ms)
    return c.problems


def _storage(c: _Check, sim: bool, port: str | None) -> None:
    c.get("storage.mount", str)
    if sim:
        c.get("storage.image", str)
    elif c.get("storage.image", object, required=False) is not None:
        c.bad("storage.image", "only the simulator keeps its flash in a file")
    block = c.get("storage.block_size", int)
    if block is not None and block not in (4096, 8192, 16384, 32768, 65536):
        c.bad("storage.block_size", f"{block} is not an erase-block size of NOR flash (4096...)")
        block = None
    size = c.get("storage.size", int)
    read = c.one_of("storage.readsize", (16, 32, 64, 128, 256))
    prog = c.one_of("storage.progsize", (16, 32, 64, 128, 256))
    c.one_of("storage.lookahead", (8, 16, 32, 64, 128))
    segments = c.int_in("storage.outbox.segments", 2, 1024)
    records = c.int_in("storage.outbox.records", 1, 255)  # firmware/storage/outbox.py
    if None in (block, size, read, prog, segments, records):
        return
    assert block and size and read and prog and segments and records  # for mypy
    if size % block:
        c.bad("storage.size", f"{size} is not a whole number of {block}-byte blocks")
        return
    # A segment of records x 32 bytes lives inline in its directory's metadata when it
    # is at most LittleFS's inline limit (no block of its own); otherwise it takes a
    # block, and a second one while an append is copied (copy-on-write). Metadata pairs
    # are two blocks each. Count every segment at twice its footprint, plus a reserve.
    cache = min(block, 4 * max(read, prog))  # how MicroPython's VfsLfs2 sets cache_size
    inline = min(cache, LFS_ATTR_MAX, block // 8)
    seg_bytes = records * 32
    footprint = seg_bytes if seg_bytes <= inline else block
    need = 2 * segments * footprint + FS_RESERVE.get(port or "", 0)
    if need > size:
        c.bad(
            "storage.outbox",
            f"{segments} segments of {records} ratings need about {need} bytes of the "
            f"{size}-byte filesystem",
        )


def load(name_or_path: str | Path) -> dict[str, Any]:
    """A board's profile by id (hardware/boards/<id>.json) or path; ProfileError if unusable."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BOARDS / f"{name_or_path}.json"
    try:
        profile = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ProfileError(path.name, [f"cannot read it: {e.strerror}"]) from e
    except json.JSONDecodeError as e:
        raise ProfileError(
            path.name, [f"not JSON: line {e.lineno} column {e.colno}: {e.msg}"]
        ) from e
    problems = validate(profile, path.name)
    if problems:
        raise ProfileError(path.name, problems)
    assert isinstance(profile, dict)
    return profile


def boards() -> list[str]:
    """The ids of the reference boards shipped in hardware/boards/."""
    return sorted(p.stem for p in BOARDS.glob("*.json"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted(BOARDS.glob("*.json"))
    failed = 0
    for path in paths:
        try:
            load(path)
        except ProfileError as e:
            failed += 1
            print(e, file=sys.stderr)
        else:
            print(f"{path.name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
