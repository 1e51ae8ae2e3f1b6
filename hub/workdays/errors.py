"""Errors of the working-day calendar: one small hierarchy, each error bilingual.

Every error carries a stable ``code`` (for programs and tests), a Simplified Chinese text
(shown first, DESIGN.md: user-facing text is zh-CN first) and an English text. ``str(error)``
is ``[code] 中文 / English``.
"""

from __future__ import annotations


class CalendarError(ValueError):
    """The calendar cannot answer: a date outside the known years, a naive datetime, a bad
    argument. Never a guess instead (DOMAIN.md: "must say clearly when a date is outside what
    it knows")."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(f"[{code}] {zh} / {en}")
        self.code = code
        self.zh = zh
        self.en = en


class HolidayTableError(CalendarError):
    """A holiday table file is unreadable or invalid; the message names the file and key."""

    def __init__(self, code: str, file: str, key: str, zh: str, en: str) -> None:
        where = f"{file}: {key}" if key else file
        super().__init__(code, f"{where}：{zh}", f"{where}: {en}")
        self.file = file
        self.key = key
