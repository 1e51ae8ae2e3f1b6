"""Errors of the policy layer: one bilingual hierarchy.

``PolicyError``: a policy file (profile or reason catalogue) is missing, unreadable or invalid.
It names the file, the key path inside it (``deadlines.callback.within``,
``indicators[2].options[0].code``) and what was expected, in Simplified Chinese first and then
English (DESIGN.md: user-facing text is zh-CN first). ``CodeError``: a value from outside
(a provincial level or channel code) has no meaning in a profile's code map.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy file is invalid. ``str()`` is ``[code] file: key：中文 / file: key: English``."""

    def __init__(self, code: str, file: str, key: str, zh: str, en: str) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(f"[{code}] {where}：{zh} / {where}: {en}")
        self.code = code
        self.file = file
        self.key = key
        self.zh = zh
        self.en = en


class CodeError(ValueError):
    """An external code (level, channel) that a profile's code map does not define, or a
    canonical value the map cannot express."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(f"[{code}] {zh} / {en}")
        self.code = code
        self.zh = zh
        self.en = en
