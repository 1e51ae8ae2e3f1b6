"""The ``hcp`` command line: one registry of commands, one error type, zh-CN first.

Strategy (after mpremote): a command is a name, a help text, an argument-parser factory and
a handler. The module that owns a command registers it with one call,

    register("flash", help=Text("烧录固件", "flash the firmware"), arguments=_args, run=_run)

and names itself once in COMMAND_MODULES below. Command modules live in tools/ (tools may
use every package; edge_agent, hub and simulator must not import tools) and stay light to
import: heavy imports (database, web server, serial) go inside the handler, so
``hcp --help`` stays fast.

Handlers get the shared ``State`` of the invocation (language now; later issues add the
device link and agent/hub clients, opened on first use and released by ``State.close``) and
report failure by raising ``HcpError``. ``main()`` is the one place that catches it: it
prints ``hcp: <message>`` to stderr and exits 1. Usage errors are argparse's: exit 2.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, NoReturn

from tools.i18n import LANG_ENV, LANGS, Lang, Text, lang_from_argv, lang_from_env, parse_lang

PROG = "hcp"

# Modules under tools/ that register commands when imported (one entry per module).
COMMAND_MODULES: tuple[str, ...] = (
    "tools.agent_commands",
    "tools.hub_commands",
    "tools.provision",
    "tools.flash",
    "tools.factory_test",
    "tools.labels",
    "tools.sim_commands",
    "tools.demo",
)

EXIT_OK = 0
EXIT_ERROR = 1  # HcpError: the command failed
EXIT_USAGE = 2  # argparse: the command line is wrong
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

_CHOICES = ", ".join(LANGS)


class HcpError(Exception):
    """A command failed in a way the user should read: printed as ``hcp: <message>``.

    The message is a ``Text`` (shown in the user's language) or a plain string (for details
    that need no translation, such as a path or a device reply)."""

    def __init__(self, message: Text | str) -> None:
        super().__init__(message)
        self.message = message

    def render(self, lang: Lang) -> str:
        return self.message.get(lang) if isinstance(self.message, Text) else self.message


# Text of the command line itself; each command's own text lives with the command.
MSG = {
    "description": Text(
        "hcp：政务服务“好差评”柜台评价系统的命令行工具，用于评价器设备、大厅边缘代理和中心平台。",
        "hcp: command line of the counter-rating stack for government-service 好差评: "
        "evaluator devices, hall edge agent and hub.",
    ),
    "usage": Text("用法：", "usage: "),
    "commands": Text("命令", "commands"),
    "command_metavar": Text("<命令>", "<command>"),
    "no_commands": Text("（尚无可用命令）", "(no commands yet)"),
    "positionals": Text("参数", "positional arguments"),
    "options": Text("选项", "options"),
    "help": Text("显示此帮助信息并退出", "show this help message and exit"),
    "version": Text("显示版本号并退出", "show the version and exit"),
    "lang": Text(
        "界面语言：zh-CN（默认）或 en；也可用环境变量 " + LANG_ENV,
        "interface language: zh-CN (default) or en; or set " + LANG_ENV,
    ),
    "bad_lang": Text(
        "不支持的语言 {value!r}（可用：{choices}）",
        "unsupported language {value!r} (choose from {choices})",
    ),
    "bad_lang_env": Text(
        "环境变量 {env}={value!r} 不是支持的语言（可用：{choices}）",
        "{env}={value!r} is not a supported language (choose from {choices})",
    ),
    "error": Text("错误：", "error: "),
    "interrupted": Text("已中断", "interrupted"),
    "unknown_version": Text("版本未知（未安装）", "version unknown (not installed)"),
}


class State:
    """What the commands of one invocation share. Resources are opened on first use and
    released by ``close()``, which ``main()`` calls however the command ends."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self._cleanups: list[Callable[[], None]] = []

    def text(self, message: Text, /, **values: object) -> str:
        """A message in the user's language, with ``{name}`` fields filled in."""
        return message.format(self.lang, **values)

    def on_close(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def close(self) -> None:
        while self._cleanups:
            self._cleanups.pop()()


Handler = Callable[[State, argparse.Namespace], int | None]


@dataclass(frozen=True)
class Command:
    name: str
    help: Text
    arguments: Callable[[HcpParser], None]
    run: Handler


COMMANDS: dict[str, Command] = {}


def _no_arguments(parser: HcpParser) -> None:
    pass


def register(
    name: str,
    *,
    help: Text,
    run: Handler,
    arguments: Callable[[HcpParser], None] = _no_arguments,
) -> Command:
    """Add a command to ``hcp``; returns it. A name can be registered once."""
    if name in COMMANDS:
        raise ValueError(f"hcp command {name!r} is registered twice")
    command = Command(name=name, help=help, arguments=arguments, run=run)
    COMMANDS[name] = command
    return command


def load_commands(modules: Sequence[str] = COMMAND_MODULES) -> None:
    for module in modules:
        importlib.import_module(module)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str, *, lang: Lang) -> None:
        super().__init__(prog, max_help_position=30)
        self.lang = lang

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None = None,
    ) -> None:
        if prefix is None:
            prefix = MSG["usage"].get(self.lang)
        super().add_usage(usage, actions, groups, prefix)


class HcpParser(argparse.ArgumentParser):
    """An ArgumentParser whose own words (usage, section titles, -h, errors) are in `lang`.

    Command factories use ``parser.tr(Text(...))`` for their help strings."""

    def __init__(self, *, lang: Lang, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", functools.partial(_Formatter, lang=lang))
        super().__init__(add_help=False, **kwargs)
        self.lang: Lang = lang
        self._positionals.title = self.tr(MSG["positionals"])
        self._optionals.title = self.tr(MSG["options"])
        self.add_argument("-h", "--help", action="help", help=self.tr(MSG["help"]))

    def tr(self, message: Text) -> str:
        return message.get(self.lang)

    def add_lang_option(self, *, default: object = argparse.SUPPRESS) -> None:
        self.add_argument(
            "--lang",
            type=self._lang_type,
            default=default,
            metavar="{" + ",".join(LANGS) + "}",
            help=self.tr(MSG["lang"]),
        )

    def _lang_type(self, value: str) -> Lang:
        lang = parse_lang(value)
        if lang is None:
            raise argparse.ArgumentTypeError(
                MSG["bad_lang"].format(self.lang, value=value, choices=_CHOICES)
            )
        return lang

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: {self.tr(MSG['error'])}{message}\n")


def _version(lang: Lang) -> str:
    try:
        return f"{PROG} {metadata.version('hcp')}"
    except metadata.PackageNotFoundError:
        return f"{PROG} {MSG['unknown_version'].get(lang)}"


def build_parser(lang: Lang, commands: Mapping[str, Command] | None = None) -> HcpParser:
    commands = COMMANDS if commands is None else commands
    parser = HcpParser(prog=PROG, lang=lang, description=MSG["description"].get(lang))
    parser.add_argument(
        "--version", action="version", version=_version(lang), help=parser.tr(MSG["version"])
    )
    parser.add_lang_option(default=lang)
    sub = parser.add_subparsers(
        dest="command",
        title=parser.tr(MSG["commands"]),
        metavar=parser.tr(MSG["command_metavar"]),
        description=None if commands else parser.tr(MSG["no_commands"]),
        help=None if commands else argparse.SUPPRESS,
        parser_class=HcpParser,
    )
    for command in commands.values():
        text = command.help.get(lang)
        child = sub.add_parser(command.name, help=text, description=text, lang=lang)
        child.add_lang_option()
        command.arguments(child)
    return parser


def _resolve_lang(argv: list[str], environ: Mapping[str, str]) -> Lang:
    """--lang (when valid; argparse reports a bad one) over HCP_LANG over zh-CN."""
    lang, bad_env = lang_from_env(environ)
    raw = lang_from_argv(argv)
    chosen = parse_lang(raw) if raw is not None else None
    if chosen is not None:
        return chosen
    if bad_env is not None:
        raise HcpError(MSG["bad_lang_env"].fill(env=LANG_ENV, value=bad_env, choices=_CHOICES))
    return lang


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hcp`` with `argv` (default: the process's arguments); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    lang: Lang = lang_from_env(os.environ)[0]
    state: State | None = None
    try:
        lang = _resolve_lang(args, os.environ)
        load_commands()
        parser = build_parser(lang)
        try:
            ns = parser.parse_args(args)
        except SystemExit as done:  # --help, --version, usage errors
            return done.code if isinstance(done.code, int) else EXIT_USAGE
        if ns.command is None:
            parser.print_help()
            return EXIT_OK
        lang = ns.lang
        state = State(lang)
        status = COMMANDS[ns.command].run(state, ns)
        return EXIT_OK if status is None else status
    except HcpError as e:
        print(f"{PROG}: {e.render(lang)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: {MSG['interrupted'].get(lang)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if state is not None:
            state.close()
