"""Read a batch request's body: content type, gzip, size limits, JSON, the envelope.

Everything here refuses the request as a whole (ApiError), before any item is looked at and
before anything is stored. The body is read as a stream and counted, so a client cannot
make the hub hold more than ``max_body_bytes``; gzip is inflated with a cap, so a small
compressed body cannot expand past ``max_decoded_bytes`` (a gzip bomb stops there).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from hub.errors import ApiError, Msg

GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib: expect a gzip header and trailer


def _too_large(code: str, limit: int, zh: str, en: str) -> ApiError:
    return ApiError(413, code, Msg(zh, en).fill(limit=limit), limit=limit)


async def read_items(
    request: Request, *, max_body_bytes: int, max_decoded_bytes: int, max_items: int
) -> list[Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            "request.unsupported_media_type",
            Msg(
                "请求体必须是 JSON（Content-Type: application/json），收到 {ct!r}",
                "the body must be JSON (Content-Type: application/json), got {ct!r}",
            ).fill(ct=content_type),
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(
            415,
            "request.unsupported_encoding",
            Msg(
                "不支持的 Content-Encoding {enc!r}：只接受 gzip 或不压缩",
                "unsupported Content-Encoding {enc!r}: send gzip or nothing",
            ).fill(enc=encoding),
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise _too_large(
            "request.too_large",
            max_body_bytes,
            "请求体超过 {limit} 字节，请拆分批次",
            "the body is over {limit} bytes; split the batch",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body_bytes:
            raise _too_large(
                "request.too_large",
                max_body_bytes,
                "请求体超过 {limit} 字节，请拆分批次",
                "the body is over {limit} bytes; split the batch",
            )
    data = gunzip(bytes(body), max_decoded_bytes) if encoding == "gzip" else bytes(body)
    return _items(_parse_json(data), max_items)


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate (possibly multi-member) gzip, refusing more than `limit` bytes of output."""
    out = bytearray()
    rest = data
    try:
        while True:
            inflater = zlib.decompressobj(GZIP_WBITS)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise _too_large(
                    "request.decoded_too_large",
                    limit,
                    "解压后的请求体超过 {limit} 字节，请拆分批次",
                    "the body inflates to more than {limit} bytes; split the batch",
                )
            if not inflater.eof:
                raise zlib.error("truncated gzip stream")
            rest = inflater.unused_data
            if not rest:
                return bytes(out)
    except zlib.error as e:
        raise ApiError(
            400,
            "request.bad_gzip",
            Msg("请求体不是有效的 gzip 数据：{e}", "the body is not valid gzip: {e}").fill(e=e),
        ) from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError too
        detail = str(e)[:200]
        raise ApiError(
            400,
            "request.bad_json",
            Msg("请求体不是有效的 UTF-8 JSON：{d}", "the body is not valid UTF-8 JSON: {d}").fill(
                d=detail
            ),
        ) from None


def _items(document: Any, max_items: int) -> list[Any]:
    if not isinstance(document, dict) or set(document) != {"items"}:
        raise ApiError(
            422,
            "request.invalid",
            Msg(
                '请求体必须是只含 "items" 列表的 JSON 对象：{"items": [...]}',
                'the body must be a JSON object with only an "items" list: {"items": [...]}',
            ),
            field="items",
        )
    items = document["items"]
    if not isinstance(items, list):
        raise ApiError(
            422,
            "request.invalid",
            Msg('"items" 必须是列表', '"items" must be a list'),
            field="items",
        )
    if len(items) > max_items:
        raise ApiError(
            413,
            "request.too_many_items",
            Msg(
                "一批最多 {limit} 项，收到 {n} 项", "a batch holds at most {limit} items; got {n}"
            ).fill(limit=max_items, n=len(items)),
            limit=max_items,
        )
    return items
