"""``hcp sim`` as a technician uses it: the installed entry point, in subprocesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.simulator.hall import AgentHall
from tests.simulator.scenarios import BUSY_HOUR, busy_hour
from tests.simulator.test_scenario import DEFAULT

HCP = Path(sys.executable).parent / "hcp"


def hcp(*args: str, lang: str = "zh-CN", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HCP), "sim", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HCP_LANG": lang},
        timeout=timeout,
        check=False,
    )


def test_scenario_check_summarises_in_both_languages() -> None:
    zh = hcp("scenario", "--check", str(DEFAULT))
    assert zh.returncode == 0, zh.stderr
    assert "场景有效" in zh.stdout and "12 个窗口" in zh.stdout and "工作人员自评" in zh.stdout
    en = hcp("scenario", "--check", str(DEFAULT), "--seed", "5", lang="en")
    assert en.returncode == 0 and "12 windows, 24 shifts" in en.stdout
    assert "the day with seed 5" in en.stdout
    assert hcp("scenario", "--check", str(DEFAULT), "--seed", "5", lang="en").stdout == en.stdout


def test_a_bad_scenario_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "hall.toml"
    bad.write_text(BUSY_HOUR.replace('distribution = "exponential"', 'distribution = "gamma"'))
    r = hcp("scenario", "--check", str(bad))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("hcp: 场景错误：") and "service.distribution" in r.stderr
    r = hcp("run", "--scenario", str(bad), "--agent", "http://127.0.0.1:1", lang="en")
    assert r.returncode == 1 and r.stderr.startswith("hcp: scenario error: ")


def test_run_refuses_an_unreachable_agent_and_a_bad_speed() -> None:
    r = hcp("run", "--scenario", str(DEFAULT), "--agent", "http://127.0.0.1:1", lang="en")
    assert r.returncode == 1 and "cannot reach the hall agent" in r.stderr
    r = hcp("run", "--scenario", str(DEFAULT), "--agent", "x", "--speed", "fast", lang="en")
    assert r.returncode == 2 and "positive number or max" in r.stderr


def test_run_with_peers_drives_the_agent_and_accounts(tmp_path: Path) -> None:
    sc = busy_hour()
    hall = AgentHall(tmp_path, sc, peers=False)
    scenario = tmp_path / "busy.toml"
    scenario.write_text(BUSY_HOUR, encoding="utf-8")
    asyncio.run(hall.start())

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return hcp(
            "run",
            "--scenario",
            str(scenario),
            "--agent",
            hall.url,
            "--peers",
            str(hall.device_dir),
            "--speed",
            "max",
            "--store",
            str(hall.store_path),
            *extra,
            lang="en",
            timeout=120,
        )

    try:
        r = run("--duration", "900", "--truth", str(tmp_path / "truth.json"))
        # A second run: the devices come back with a new boot session and their next seq
        # (kept in <device>.state, as on flash), or the agent would refuse them.
        again = run("--duration", "300", "--seed", "99")
    finally:
        asyncio.run(hall.stop())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "waiting for 3 virtual devices to link" in r.stdout
    assert "(0 refused)" in r.stdout
    assert "accounting ok: all" in r.stdout, r.stdout
    assert (tmp_path / "truth.json").stat().st_size > 1000
    assert again.returncode == 0, again.stdout + again.stderr
    assert "accounting ok: all" in again.stdout
