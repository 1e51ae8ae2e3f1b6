"""Errors the hub answers with: one shape, one hierarchy, converted in one place.

Strategy (after h11's ProtocolError): every refusal is an ``ApiError`` carrying a stable
machine code, the message in Simplified Chinese first and English beside it, the HTTP status
and, where it applies, the field and the limit that was hit. Per-item refusals in a batch are
``ItemError``s with the same fields minus the status. ``hub.app`` turns both (and FastAPI's
own errors) into the one JSON shape documented in docs/hub-api.md, "Errors":

    {"error": {"code": ..., "message": <zh-CN>, "message_en": ..., "field"?: ..., "limit"?: ...}}

The hub does not import ``tools`` (DESIGN.md dependency rule), so it has its own small
two-language message pair, ``Msg``, shaped like ``tools.i18n.Text``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Msg(NamedTuple):
    """A message in Simplified Chinese and English."""

    zh: str
    en: str

    def fill(self, **values: object) -> Msg:
        return Msg(self.zh.format(**values), self.en.format(**values))


class ItemError(Exception):
    """One item of a batch cannot be stored as sent (a permanent, per-item refusal)."""

    def __init__(
        self, code: str, message: Msg, *, field: str | None = None, limit: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message.en}")
        self.code = code
        self.message = message
        self.field = field
        self.limit = limit

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, field=self.field, limit=self.limit)


class ApiError(Exception):
    """The whole request is refused with an HTTP status; nothing of it was stored."""

    def __init__(
        self,
        status: int,
        code: str,
        message: Msg,
        *,
        field: str | None = None,
        limit: int | None = None,
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message.en}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.limit = limit
        self.headers = dict(headers or {})
        if retry_after_s is not None:
            self.headers["Retry-After"] = str(retry_after_s)

    def body(self) -> dict[str, Any]:
        return {"error": error_body(self.code, self.message, field=self.field, limit=self.limit)}


def error_body(
    code: str, message: Msg, *, field: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message.zh, "message_en": message.en}
    if field is not None:
        body["field"] = field
    if limit is not None:
        body["limit"] = limit
    return body
