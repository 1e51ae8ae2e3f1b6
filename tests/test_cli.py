"""The `hcp` command line: the installed entry point (as a subprocess) and main() in-process."""

import argparse
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tools import cli
from tools.i18n import Text, lang_from_argv, parse_lang

HCP = Path(sys.executable).parent / "hcp"  # the console script uv installed into this venv
SILENT = Text("设备 {device} 未响应", "device {device} is silent")


def run_hcp(*args: str, lang_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HCP_LANG"}
    if lang_env is not None:
        env["HCP_LANG"] = lang_env
    return subprocess.run(
        [str(HCP), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture(autouse=True)
def _clean_lang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCP_LANG", raising=False)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, cli.Command]:
    """An empty command registry for this test (main() and register() use the module's)."""
    # The real commands register when their modules are first imported, which main() does:
    # import them now, into the real registry, or they would register into this test's
    # and be missing from every later main() in this process (seen with pytest-xdist).
    cli.load_commands()
    fresh: dict[str, cli.Command] = {}
    monkeypatch.setattr(cli, "COMMANDS", fresh)
    return fresh


# ---------------------------------------------------------------- the installed entry point


def test_entry_point_is_installed() -> None:
    assert HCP.exists(), f"{HCP} missing: run `uv sync` (pyproject [project.scripts])"


def test_version() -> None:
    result = run_hcp("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hcp {metadata.version('hcp')}\n"
    assert re.fullmatch(r"hcp \d+\.\d+\.\d+\S*\n", result.stdout)


def test_help_is_chinese_by_default() -> None:
    result = run_hcp("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("用法：hcp ")
    assert "显示此帮助信息并退出" in result.stdout
    assert "显示版本号并退出" in result.stdout
    assert "usage:" not in result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--help"], "en"), (["--lang", "en", "--help"], None), (["--lang=en", "--help"], "zh-CN")],
)
def test_help_in_english(args: list[str], env: str | None) -> None:
    result = run_hcp(*args, lang_env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: hcp ")
    assert "show this help message and exit" in result.stdout
    assert "用法" not in result.stdout


def test_lang_option_beats_environment() -> None:
    result = run_hcp("--lang", "zh-CN", "--help", lang_env="en")
    assert result.stdout.startswith("用法：hcp ")


def test_no_command_prints_help() -> None:
    result = run_hcp()
    assert result.returncode == 0
    assert result.stdout.startswith("用法：hcp ")


@pytest.mark.parametrize(
    ("env", "usage", "error"),
    [(None, "用法：hcp", "hcp: 错误："), ("en", "usage: hcp", "hcp: error: ")],
)
def test_unknown_command_is_a_usage_error(env: str | None, usage: str, error: str) -> None:
    result = run_hcp("no-such-command", lang_env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    first, second = result.stderr.splitlines()
    assert first.startswith(usage)
    assert second.startswith(error)
    assert "invalid choice: 'no-such-command'" in second  # argparse's own message


def test_bad_lang_option_is_a_usage_error() -> None:
    result = run_hcp("--lang", "fr", "--help")
    assert result.returncode == 2
    assert "hcp: 错误：argument --lang: 不支持的语言 'fr'" in result.stderr


def test_bad_lang_environment_is_an_hcp_error() -> None:
    result = run_hcp("--help", lang_env="fr")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "hcp: 环境变量 HCP_LANG='fr' 不是支持的语言（可用：zh-CN, en）\n"


# ---------------------------------------------------------------- main() and the registry


def _fail(state: cli.State, args: argparse.Namespace) -> int:
    raise cli.HcpError(SILENT.fill(device=args.device))


def _device_argument(parser: cli.HcpParser) -> None:
    parser.add_argument("device", help=parser.tr(Text("设备编号", "device id")))


def test_registered_command_shows_in_help(
    registry: dict[str, cli.Command], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.register("probe", help=Text("探测设备", "probe a device"), run=_fail)
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "probe" in out and "探测设备" in out and "尚无可用命令" not in out
    assert cli.main(["--lang", "en", "--help"]) == 0
    assert "probe a device" in capsys.readouterr().out
    assert cli.main(["probe", "--help"]) == 0
    assert capsys.readouterr().out.startswith("用法：hcp probe")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["probe", "d-7"], "hcp: 设备 d-7 未响应\n"),
        (["--lang", "en", "probe", "d-7"], "hcp: device d-7 is silent\n"),
        (["probe", "d-7", "--lang", "en"], "hcp: device d-7 is silent\n"),
    ],
)
def test_hcp_error_prints_one_line_and_exits_1(
    registry: dict[str, cli.Command],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    cli.register("probe", help=Text("探测", "probe"), arguments=_device_argument, run=_fail)
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == message
    assert captured.out == ""


def test_hcp_error_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HCP_LANG", "klingon")
    assert cli.main(["--version"]) == 1
    assert capsys.readouterr().err.startswith("hcp: 环境变量 HCP_LANG='klingon'")


def test_handler_gets_state_and_its_status_is_the_exit_code(
    registry: dict[str, cli.Command],
) -> None:
    seen: list[tuple[str, str]] = []
    closed: list[bool] = []

    def run(state: cli.State, args: argparse.Namespace) -> int:
        state.on_close(lambda: closed.append(True))
        seen.append((state.lang, args.device))
        return 3

    cli.register("probe", help=Text("探测", "probe"), arguments=_device_argument, run=run)
    assert cli.main(["--lang=en", "probe", "d-1"]) == 3
    assert seen == [("en", "d-1")]
    assert closed == [True]


def test_state_is_closed_when_the_command_fails(registry: dict[str, cli.Command]) -> None:
    closed: list[bool] = []

    def run(state: cli.State, args: argparse.Namespace) -> None:
        state.on_close(lambda: closed.append(True))
        raise cli.HcpError("boom")

    cli.register("boom", help=Text("爆", "boom"), run=run)
    assert cli.main(["boom"]) == 1
    assert closed == [True]


def test_interrupt_exits_130(
    registry: dict[str, cli.Command], capsys: pytest.CaptureFixture[str]
) -> None:
    def run(state: cli.State, args: argparse.Namespace) -> None:
        raise KeyboardInterrupt

    cli.register("wait", help=Text("等待", "wait"), run=run)
    assert cli.main(["wait"]) == 130
    assert capsys.readouterr().err == "hcp: 已中断\n"


def test_a_name_registers_once(registry: dict[str, cli.Command]) -> None:
    cli.register("probe", help=Text("探测", "probe"), run=_fail)
    with pytest.raises(ValueError, match="registered twice"):
        cli.register("probe", help=Text("探测", "probe"), run=_fail)


def test_unknown_command_in_process(
    registry: dict[str, cli.Command], capsys: pytest.CaptureFixture[str]
) -> None:
    cli.register("probe", help=Text("探测", "probe"), run=_fail)
    assert cli.main(["--lang", "en", "prob"]) == 2
    err = capsys.readouterr().err
    assert "hcp: error: argument <command>: invalid choice: 'prob'" in err


# ---------------------------------------------------------------- language helpers


@pytest.mark.parametrize(
    ("value", "lang"),
    [
        ("zh", "zh-CN"),
        ("zh-CN", "zh-CN"),
        ("zh_CN.UTF-8", "zh-CN"),
        ("en", "en"),
        ("en_US.UTF-8", "en"),
        ("EN-gb", "en"),
        ("fr", None),
        ("", None),
    ],
)
def test_parse_lang(value: str, lang: str | None) -> None:
    assert parse_lang(value) == lang


def test_lang_from_argv_stops_at_double_dash() -> None:
    assert lang_from_argv(["--lang", "en", "x", "--lang=zh"]) == "zh"
    assert lang_from_argv(["x", "--", "--lang", "en"]) is None
