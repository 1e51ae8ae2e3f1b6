"""The case API over the real ASGI app and a real SQLite store, for API and property tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge_agent import registry
from edge_agent.api import create_app
from edge_agent.service import HallService
from edge_agent.store import Database, Store, now_ms
from tests.agent.helpers import make_config


@dataclass
class Api:
    """httpx over the real ASGI app (ASGITransport), driven from synchronous tests."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    db: Database
    service: HallService

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kw))

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return self.request("POST", path, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        def read(s: Store) -> dict[str, list[tuple[Any, ...]]]:
            tables = [r[0] for r in s.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: [tuple(r) for r in s.all(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}

        return self.db.call(read)


@contextlib.contextmanager
def make_api(tmp_path: Path, **sections: Any) -> Iterator[Api]:
    cfg = make_config(tmp_path / "data", **sections)
    db = Database(cfg.store_path)
    db.open()
    for w, label in (("W01", "综合窗口 01"), ("W02", "综合窗口 02")):
        db.call(registry.add_window, window_id=w, label=label, now_ms=now_ms())
    db.call(registry.add_device, device_id="EV1", key=bytes(16), kind=1, window_id="W01", now_ms=1)
    service = HallService(cfg, db)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(service.start())
    transport = httpx.ASGITransport(app=create_app(service), raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://agent.test")
    try:
        yield Api(loop, client, db, service)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
        db.close()
