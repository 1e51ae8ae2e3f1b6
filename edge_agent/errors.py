"""Errors the agent raises and answers with: one shape, one small hierarchy.

Strategy (after h11's ProtocolError, as the hub does): every refusal a person or another
system reads is an ``AgentError`` with a stable machine ``code``, the message in Simplified
Chinese first and English beside it (``Msg``), and where it applies the field and the
limit. Subclasses say who gets it:

- ``ConfigError``: agent.toml is wrong; raised at start, names the key and what it expects.
- ``ApiError``: a case-system request is refused with an HTTP status; nothing changed.
  ``edge_agent.api`` converts it to JSON, in one place.
- ``StoreError``: the SQLite store cannot be used as asked (schema newer than the code,
  a device that is not registered, ...).

Wire errors stay ``protocol.errors.ProtocolError``; the link session turns them into
counters, never into exceptions here.

edge_agent does not import ``tools`` (DESIGN.md dependency rule), so it has its own
two-language pair, shaped like ``tools.i18n.Text``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Msg(NamedTuple):
    """A message in Simplified Chinese and English."""

    zh: str
    en: str

    def fill(self, **values: object) -> Msg:
        return Msg(self.zh.format(**values), self.en.format(**values))

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


class AgentError(Exception):
    """Base class: something the agent refuses, with a stable code and a bilingual message."""

    def __init__(
        self, code: str, message: Msg, *, field: str | None = None, limit: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message.en}")
        self.code = code
        self.message = message
        self.field = field
        self.limit = limit

    def body(self) -> dict[str, Any]:
        """The documented error object: code, message (zh-CN), message_en, field?, limit?."""
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message.zh,
            "message_en": self.message.en,
        }
        if self.field is not None:
            body["field"] = self.field
        if self.limit is not None:
            body["limit"] = self.limit
        return body


class ConfigError(AgentError):
    """agent.toml is invalid: the message names the key and what it expects."""

    def __init__(self, key: str, message: Msg) -> None:
        super().__init__("config.invalid", message, field=key)
        self.key = key


class StoreError(AgentError):
    """The store cannot do what was asked (schema too new, unknown device, ...)."""


class ApiError(AgentError):
    """A case-system request is refused as a whole, with an HTTP status. Nothing changed."""

    def __init__(
        self,
        status: int,
        code: str,
        message: Msg,
        *,
        field: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(code, message, field=field, limit=limit)
        self.status = status
