"""The real hub for the agent's sync tests: ``hcp hub serve`` on SQLite, as a subprocess.

``Hub(tmp)`` migrates a throwaway SQLite file, registers the agent tests' hall, issues a
token (written to a 0600 file, as an administrator would) and serves on a free port.
``stop()``/``start()`` take it down and bring it back on the same port and database (a hub
outage). The tests read what the hub stored straight from its database.

``Throttle`` is a small real HTTP server in front of the hub that answers the first requests
with 429/503 and Retry-After, then forwards everything, recording when each request came.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.agent.helpers import HALL

HCP = Path(sys.executable).parent / "hcp"
AREA = "330203001"
CODES = {413: "request.too_large", 429: "ingest.rate_limited", 503: "ingest.overloaded"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    def __init__(self, tmp: Path, *extra: str, port: int | None = None) -> None:
        self.dir = tmp / "hub"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.dir / "hub.sqlite3"
        self.url = f"sqlite:///{self.db_path}"
        self.extra = extra
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k != "HCP_LANG"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "hub.log"
        self._hcp("migrate")
        self._hcp("add-hall", HALL, "--name", "测试大厅", "--area-code", AREA)
        self.token = self._hcp("issue-token", "--hall", HALL).strip()
        self.token_file = self.dir / "token"
        self.token_file.write_text(self.token + "\n", encoding="utf-8")
        self.token_file.chmod(0o600)

    def _hcp(self, *args: str) -> str:
        out = subprocess.run(
            [str(HCP), "hub", *args, "--database-url", self.url],
            capture_output=True,
            env=self.env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()

    def start(self) -> Hub:
        assert self.proc is None, "the hub is already running"
        self.proc = subprocess.Popen(
            [
                HCP,
                "hub",
                "serve",
                "--database-url",
                self.url,
                "--port",
                str(self.port),
                *self.extra,
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise AssertionError(f"hub exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("hub did not start within 60 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Hub:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        c = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return list(c.execute(sql, args).fetchall())
        finally:
            c.close()

    def hub_config(self, base: str | None = None, **more: Any) -> dict[str, Any]:
        return {"url": base or self.base, "token_file": str(self.token_file), **more}


class Throttle:
    """A real HTTP server in front of the hub: scripted refusals first, then forwarding."""

    def __init__(self, target: str, script: list[tuple[int, str | None]]) -> None:
        self.target = target
        self.script = list(script)  # (status, Retry-After) answered before forwarding
        self.log: list[tuple[float, int]] = []  # (monotonic time, status answered)
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    scripted = owner.script.pop(0) if owner.script else None
                if scripted is not None:
                    status, after = scripted
                    code = CODES.get(status, "ingest.overloaded")
                    payload = json.dumps({"error": {"code": code}}).encode()
                    self.send_response(status)
                    if after is not None:
                        self.send_header("Retry-After", after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                else:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() in ("authorization", "content-type", "content-encoding")
                    }
                    r = httpx.post(owner.target + self.path, content=body, headers=headers)
                    status = r.status_code
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(r.content)))
                    self.end_headers()
                    self.wfile.write(r.content)
                with owner.lock:
                    owner.log.append((time.monotonic(), status))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Throttle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
