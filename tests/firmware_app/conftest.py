"""Fixtures: the firmware build (.mpy) and a rig of one device app on a real pty with a
CPython agent end; the device's flash is a LittleFS image in tmp_path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.helpers import Pty
from tests.firmware_app.device import (
    KEY,
    AgentEnd,
    Device,
    build_firmware,
    device_json,
    seed_flash,
)


@pytest.fixture(scope="session")
def fw_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("fwapp_mpy"))


class Rig:
    def __init__(
        self,
        build: Path,
        tmp: Path,
        kind: str = "evaluator",
        *,
        heap: str = "256k",
        romfs: bool = True,
        **kw: Any,
    ) -> None:
        """`heap`, `romfs`: the Device's; other keywords go to seed_flash."""
        tmp.mkdir(parents=True, exist_ok=True)
        self.pty = Pty(tmp / "tty-dev")
        self.image = tmp / "flash.img"
        seed_flash(build, self.image, device_json(str(self.pty.path), kind), **kw)
        self.device = Device(build, self.image, heap=heap, romfs=romfs)
        self.agent = AgentEnd(self.pty.master, kw.get("key") or KEY)

    def start(self) -> Rig:
        self.device.start()
        self.ctl = self.device.control()
        return self

    def up(self) -> Rig:
        self.start()
        self.agent.run_until(lambda: self.agent.session.is_open())
        return self

    def state(self) -> dict[str, Any]:
        return self.ctl("state")

    def until(self, pred: Any, timeout: float = 15.0) -> Any:
        return self.agent.run_until(pred, timeout)

    def restart(self) -> None:
        self.ctl.close()
        self.device.kill()
        self.start()

    def close(self) -> None:
        print(self.device.output()[-4000:])  # shown with a failing test's captured output
        with contextlib.suppress(Exception):
            self.ctl.close()
        self.device.kill()
        self.pty.close()


@pytest.fixture
def rig(fw_build: Path, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(fw_build, tmp_path)
    yield r
    r.close()
