"""User-facing text: Simplified Chinese first, English available (DESIGN.md, quality bar).

Strategy: every string a user reads is a ``Text(zh, en)`` pair written next to the code that
shows it, so a message cannot exist in one language only and no catalogue drifts away from
its call site. There is no gettext machinery: two languages, chosen once per invocation by
``--lang`` or ``HCP_LANG``, default zh-CN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")
DEFAULT_LANG: Lang = "zh-CN"
LANG_ENV = "HCP_LANG"


class Text(NamedTuple):
    """One user-facing message in both languages."""

    zh: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh

    def format(self, lang: Lang, /, **values: object) -> str:
        """The message in `lang` with ``{name}`` fields filled in."""
        return self.get(lang).format(**values)

    def fill(self, **values: object) -> Text:
        """Both languages with ``{name}`` fields filled in (for a message shown later)."""
        return Text(self.zh.format(**values), self.en.format(**values))


def parse_lang(value: str) -> Lang | None:
    """'zh', 'zh-CN', 'zh_CN.UTF-8' -> 'zh-CN'; 'en', 'en-US', 'en_GB' -> 'en'; else None."""
    tag = value.strip().split(".")[0].replace("_", "-").lower()
    if tag in ("zh", "zh-cn", "zh-hans", "zh-hans-cn"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def lang_from_argv(argv: list[str]) -> str | None:
    """The raw value of the last ``--lang X`` / ``--lang=X`` before ``--``, if any.

    Read ahead of argparse because the parser itself (its help, its errors) is built in the
    chosen language."""
    found: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--lang="):
            found = arg.removeprefix("--lang=")
    return found


def lang_from_env(environ: Mapping[str, str]) -> tuple[Lang, str | None]:
    """The language HCP_LANG asks for, or the default; second item: the raw value when it
    names no supported language (the caller reports it)."""
    raw = environ.get(LANG_ENV, "").strip()
    if not raw:
        return DEFAULT_LANG, None
    lang = parse_lang(raw)
    if lang is None:
        return DEFAULT_LANG, raw
    return lang, None
