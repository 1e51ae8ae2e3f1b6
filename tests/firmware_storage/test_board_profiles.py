"""Board profiles (hardware/boards/*.json): the shipped ones are valid, broken ones are
refused with an error naming the file, the field and the reason, and the firmware reads
them with MicroPython's json and mounts the simulator's flash from its storage section."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firmware.storage import outbox
from hardware import profiles
from hardware.profiles import ProfileError, boards, load, main, validate
from tests.firmware_storage.conftest import micropython

REFERENCE = {"esp32-s3-devkitc-1", "pico-w", "unix-sim"}


def test_reference_boards_are_valid() -> None:
    assert set(boards()) >= REFERENCE
    for board in boards():
        p = load(board)
        assert p["id"] == board
        assert set(p["kinds"]) == {"evaluator", "qr", "combined"}


def test_wiring_notes_exist_for_every_real_board() -> None:
    for board in boards():
        if load(board)["port"] != "unix":
            note = profiles.BOARDS.parent / f"{board}.md"
            assert note.exists(), f"{note.name}: wiring note and bill of materials"
            text = note.read_text("utf-8")
            assert "Bill of materials" in text and "Wiring" in text


def test_simulator_profile_matches_the_outbox_defaults() -> None:
    # The simulator runs what a Pico W runs: the same outbox shape and LittleFS settings.
    sim, pico = load("unix-sim"), load("pico-w")
    assert sim["storage"]["outbox"] == {"segments": outbox.SEGMENTS, "records": outbox.RECORDS}
    for key in ("block_size", "readsize", "progsize", "lookahead", "outbox"):
        assert sim["storage"][key] == pico["storage"][key], key


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(p: dict[str, Any]) -> None:
        node = p
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return edit


_DELETE = object()

# (board, edit, field named in the error, words in the error)
BROKEN = [
    ("pico-w", _set("schema", 2), "schema", "not 1"),
    ("pico-w", _set("id", "Pico W"), "id", "a-z"),
    ("pico-w", _set("mcu", "stm32"), "mcu", "not one of"),
    ("pico-w", _set("port", "esp32"), "port", "rp2 port"),
    ("pico-w", _set("name", _DELETE), "name", "missing"),
    ("pico-w", _set("buttons.pins", [2, 3, 4, 5]), "buttons.pins", "needs 5"),
    ("pico-w", _set("buttons.pins.2", 24), "buttons.pins[2]", "CYW43"),
    ("pico-w", _set("buttons.pins.0", 30), "buttons.pins[0]", "does not exist"),
    ("pico-w", _set("led.pin", 3), "led.pin", "already buttons.pins[1]"),
    ("pico-w", _set("buttons.debounce_ms", 1), "buttons.debounce_ms", "outside"),
    ("pico-w", _set("buttons.active_low", 1), "buttons.active_low", "must be bool"),
    ("pico-w", _set("buttons.pull", "down"), "buttons.pull", "pull-up"),
    ("pico-w", _set("uart.tx", 2), "uart.tx", "cannot be TX of UART0"),
    ("pico-w", _set("uart.baud", 100000), "uart.baud", "standard rate"),
    ("pico-w", _set("displays.evaluator.i2c.sda", 7), "displays.evaluator.i2c.sda", "SDA of I2C0"),
    (
        "pico-w",
        _set("displays.qr.spi.rst", 10),
        "displays.qr.spi.rst",
        "already displays.qr.spi.sck",
    ),
    ("pico-w", _set("displays.qr.spi.dc", 16), "displays.qr.spi.dc", "already buzzer.pin"),
    ("pico-w", _set("displays.qr.width", 200), "displays.qr", "sold as"),
    ("pico-w", _set("displays.qr.colour", False), "displays.qr.colour", "colour panel"),
    (
        "pico-w",
        _set(
            "displays.qr",
            {
                "driver": "ssd1306",
                "width": 128,
                "height": 64,
                "colour": False,
                "bus": "i2c",
                "i2c": {"id": 0, "sda": 8, "scl": 9, "freq": 400000, "address": 60},
            },
        ),
        "displays.qr",
        "too small for a QR code",
    ),
    ("pico-w", _set("watchdog.timeout_ms", 9000), "watchdog.timeout_ms", "outside 1000..8388"),
    ("pico-w", _set("storage.outbox.records", 300), "storage.outbox.records", "outside"),
    ("pico-w", _set("storage.outbox.segments", 1000), "storage.outbox", "need about"),
    ("pico-w", _set("storage.size", 868353), "storage.size", "whole number"),
    ("pico-w", _set("storage.image", "x.img"), "storage.image", "only the simulator"),
    ("pico-w", _set("network.transports", ["serial", "lora"]), "network.transports[1]", "lora"),
    ("esp32-s3-devkitc-1", _set("uart.id", 0), "uart.id", "REPL"),
    ("esp32-s3-devkitc-1", _set("buttons.pins.4", 27), "buttons.pins[4]", "SPI flash"),
    ("esp32-s3-devkitc-1", _set("led.pin", 0), "led.pin", "strapping"),
    ("esp32-s3-devkitc-1", _set("storage.progsize", 48), "storage.progsize", "not one of"),
    ("unix-sim", _set("led.pin", 3), "led.pin", "simulator provides"),
    ("unix-sim", _set("buttons.pins", [1, 2, 3, 4, 5]), "buttons.pins", "0..4"),
    ("unix-sim", _set("storage.image", _DELETE), "storage.image", "missing"),
    ("unix-sim", _set("control", _DELETE), "control.path", "missing"),
    ("unix-sim", _set("network.wifi", True), "network.wifi", "through the host"),
]


@pytest.mark.parametrize(("board", "edit", "field", "words"), BROKEN)
def test_broken_profile_is_refused_naming_the_field(
    board: str, edit: Callable[[dict[str, Any]], None], field: str, words: str
) -> None:
    p = copy.deepcopy(load(board))
    edit(p)
    problems = validate(p, f"{board}.json")
    assert any(x.startswith(f"{field}: ") and words in x for x in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    p = copy.deepcopy(load("pico-w"))
    p["led"]["pin"] = 23
    p["watchdog"]["timeout_ms"] = 10
    path = tmp_path / "pico-w.json"
    path.write_text(json.dumps(p))
    with pytest.raises(ProfileError) as e:
        load(path)
    lines = str(e.value).splitlines()
    assert lines == [
        "pico-w.json: led.pin: GPIO 23 is the CYW43 radio (power)",
        "pico-w.json: watchdog.timeout_ms: 10 is outside 1000..8388",
    ]
    assert e.value.problems == [line.removeprefix("pico-w.json: ") for line in lines]


def test_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"schema": 1,\n "id": }')
    with pytest.raises(ProfileError, match=r"x.json: not JSON: line 2 column 8"):
        load(bad)
    with pytest.raises(ProfileError, match="cannot read it"):
        load("no-such-board")
    assert validate([1, 2]) == ["the profile must be a JSON object"]
    p = load("pico-w")
    assert any("differs from the file name" in x for x in validate(p, "pico.json"))


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "pico-w.json: ok" in capsys.readouterr().out
    broken = copy.deepcopy(load("pico-w"))
    broken["uart"]["baud"] = 1
    path = tmp_path / "pico-w.json"
    path.write_text(json.dumps(broken))
    assert main([str(path)]) == 1
    assert "pico-w.json: uart.baud: 1 is not a standard rate" in capsys.readouterr().err


def test_micropython_reads_every_profile_as_cpython_does(storage_build: Path) -> None:
    for board in boards():
        path = profiles.BOARDS / f"{board}.json"
        program = (
            "import json\n"
            f"p = json.load(open({str(path)!r}))\n"
            "print(json.dumps([p['id'], p['buttons'], p['storage'], p['displays']]))\n"
        )
        result = micropython(storage_build, ["-c", program])
        assert result.returncode == 0, result.stderr
        p = load(board)
        expected = [p["id"], p["buttons"], p["storage"], p["displays"]]
        assert json.loads(result.stdout) == expected


def test_firmware_mounts_the_simulator_flash_from_the_profile(
    storage_build: Path, tmp_path: Path
) -> None:
    path = profiles.BOARDS / "unix-sim.json"
    program = (
        "import json, os\n"
        f"os.chdir({str(tmp_path)!r})\n"
        f"p = json.load(open({str(path)!r}))\n"
        "from firmware.storage.mount import mount\n"
        "from firmware.storage.outbox import Outbox\n"
        "root = mount(p['storage'])\n"
        "o = p['storage']['outbox']\n"
        "ob = Outbox(root + '/outbox', o['segments'], o['records'])\n"
        "print(root, ob.capacity(), ob.add(None, 2, [], None, 0, 1, 0))\n"
    )
    for expected_seq in (1, 2):  # the second run finds the first one's rating
        result = micropython(storage_build, ["-c", program])
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["/flash", "1024", str(expected_seq)]
    image = tmp_path / "sim" / "flash.img"
    assert image.stat().st_size == load("unix-sim")["storage"]["size"]


def test_unix_rom_geometry_holds_the_flashed_firmware_and_a_full_outbox(tmp_path: Path) -> None:
    """The unix ROM mounts the unix-sim profile's geometry, and in it the firmware as
    `hcp flash` lays it out (every .mpy, the font) leaves room for the outbox's whole
    capacity: filled to it, nothing is dropped and no write fails."""
    import ast

    from tests.mpy import compile_to

    root = Path(__file__).resolve().parents[2]
    rom = ast.parse((root / "firmware" / "unix_rom.py").read_text())
    consts = {
        t.id: ast.literal_eval(n.value)
        for n in rom.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    st = load("unix-sim")["storage"]
    assert (consts["SIZE"], consts["BLOCK"], consts["MOUNT"]) == (
        st["size"],
        st["block_size"],
        st["mount"],
    )
    assert (consts["READSIZE"], consts["PROGSIZE"], consts["LOOKAHEAD"]) == (
        st["readsize"],
        st["progsize"],
        st["lookahead"],
    )
    build = tmp_path / "build"
    for package in ("protocol", "firmware"):
        for src in (root / package).rglob("*.py"):
            if src.name != "unix_rom.py":  # not flashed (tools/flash.py SKIP)
                compile_to(src, build / src.relative_to(root).with_suffix(".mpy"))
    (build / "fonts").mkdir()
    (build / "fonts" / "hcp12.bin").write_bytes(
        (root / "firmware" / "fonts" / "hcp12.bin").read_bytes()
    )
    image = tmp_path / "flash.img"
    program = f"""
import os
from firmware.storage.blockdev import FileBlockDev
from firmware.storage.mount import mount_lfs
mount_lfs(FileBlockDev({str(image)!r}, {st["block_size"]}, {st["size"] // st["block_size"]}),
          "/flash", {st["readsize"]}, {st["progsize"]}, {st["lookahead"]})
def copy(a, b):
    for name, t, *_ in os.ilistdir(a):
        if t == 0x4000:
            os.mkdir(b + "/" + name)
            copy(a + "/" + name, b + "/" + name)
        else:
            with open(a + "/" + name, "rb") as f:
                d = f.read()
            with open(b + "/" + name, "wb") as f:
                f.write(d)
for d in ("firmware", "protocol", "fonts"):
    os.mkdir("/flash/" + d)
    copy({str(build)!r} + "/" + d, "/flash/" + d)
os.mkdir("/flash/hcp")
from firmware.storage.outbox import Outbox
ob = Outbox("/flash/hcp/outbox", {st["outbox"]["segments"]}, {st["outbox"]["records"]})
for i in range(ob.capacity()):
    ob.add(None, 1, (), None, 0, 1, 0)
s = os.statvfs("/flash")
print(ob.depth(), ob.dropped(), s[0] * s[3] // 1024)
"""
    r = micropython(build, ["-c", program], heap="1m")
    assert r.returncode == 0, r.stdout + r.stderr
    depth, dropped, free_kib = (int(x) for x in r.stdout.split())
    cap = st["outbox"]["segments"] * st["outbox"]["records"]
    assert (depth, dropped) == (cap, 0)
    assert free_kib >= 16  # and some room to spare (LittleFS copies on write)
