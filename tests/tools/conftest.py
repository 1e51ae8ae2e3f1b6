"""Fixtures for the tools tests: an agent configuration on disk and the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent import registry
from edge_agent.store import Store, now_ms
from tools import cli

Run = Callable[..., tuple[int, str, str]]


def write_config(root: Path, extra: str = "") -> Path:
    path = root / "agent.toml"
    path.write_text(
        f"""
[agent]
hall_id = "H330201001"
data_dir = "data"
listen = "127.0.0.1:0"
heartbeat_s = 5

[policy]
invite_s = 30
qr_base_url = "https://hub.example.gov.cn/r"
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def hall_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hall's agent.toml with windows W01..W03 in its store; cwd and HCP_* set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HCP_LANG", "en")
    monkeypatch.setenv("HCP_AGENT_CONFIG", str(tmp_path / "agent.toml"))
    write_config(tmp_path)
    store = Store(tmp_path / "data" / "agent.sqlite3")
    for i, label in enumerate(("社保窗口 01", "医保窗口 02", "综合窗口 03"), 1):
        registry.add_window(store, window_id=f"W0{i}", label=label, now_ms=now_ms())
    store.close()
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    def call(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    yield call


def store_at(root: Path) -> Store:
    return Store(root / "data" / "agent.sqlite3")
