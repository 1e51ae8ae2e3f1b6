"""Test helpers for the hub: sample items, a synchronous client over the real ASGI app."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
from fastapi import FastAPI

HALL = "hall-001"
AREA = "330203001"  # 宁波市海曙区 … (9-digit 行政区划)
DEPT = "11330200002950478P"  # a valid unified social credit code (GB 32100 check)
DEPT_2 = "91350100M000100Y43"


def rating(n: int, *, device: str = "ev-0001", hall: str = HALL, **fields: Any) -> dict[str, Any]:
    """A valid device-press rating with seq `n`; `fields` override or add fields."""
    seq = n
    item: dict[str, Any] = {
        "source": "device_press",
        "device_id": device,
        "seq": seq,
        "hall_id": hall,
        "window_id": f"w{seq % 3}",
        "staff_id": f"s{seq % 3}",
        "case_no": f"NB-2026-{seq:06d}",
        "item_code": "330203-000-XK-001",
        "item_name": "个体工商户设立登记",
        "dept_code": DEPT,
        "level": seq % 5 + 1,
        "reasons": [501, 502] if seq % 5 + 1 >= 4 else [],
        "text": None,
        "channel": "hall_terminal",
        "pf": 5,
        "flags": [],
        "rated_at": "2026-03-02T09:15:04.120+08:00",
        "invited_at": "2026-03-02T09:14:58+08:00",
        "assess_number": 1,
        "rater": {
            "name_masked": "张*明",
            "phone_masked": "138****5678",
            "real_name": True,
            "user_type": "person",
        },
    }
    item.update(fields)
    return item


def event(event_id: str, kind: str, *, hall: str = HALL, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event_id": event_id,
        "kind": kind,
        "hall_id": hall,
        "occurred_at": "2026-03-02T09:00:00+08:00",
    }
    item.update(fields)
    return item


def health(device: str, sampled_at: str, *, hall: str = HALL, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "device_id": device,
        "hall_id": hall,
        "sampled_at": sampled_at,
        "online": True,
        "kind": "evaluator",
        "firmware": "0.1.0",
        "uptime_s": 3600,
        "outbox_depth": 0,
        "link": "serial",
        "counters": {"frame_errors": 1, "replays": 0},
    }
    item.update(fields)
    return item


class SyncClient:
    """httpx over the real ASGI app (ASGITransport), driven from synchronous tests."""

    def __init__(self, app: FastAPI, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub.test"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        all_headers = {}
        bearer = token if token is not None else self.token
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        return self.loop.run_until_complete(
            self.client.request(method, path, content=content, headers=all_headers)
        )

    def post_items(
        self, path: str, items: list[Any], *, gzipped: bool = False, token: str | None = None
    ) -> httpx.Response:
        body = json.dumps({"items": items}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return self.request("POST", path, content=body, headers=headers, token=token)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


RATINGS = "/api/v1/ingest/ratings"
EVENTS = "/api/v1/ingest/case-events"
HEALTH = "/api/v1/ingest/device-health"
