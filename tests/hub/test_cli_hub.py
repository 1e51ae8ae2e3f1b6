"""``hcp hub …`` in-process and, end to end, real ``hcp hub serve`` processes under uvicorn.

The end-to-end tests start two hub processes over one database (SQLite and PostgreSQL),
post the same batches to both at the same moment from two threads, and check that every
rating was accepted by exactly one of them and stored once (DESIGN.md: nothing may assume a
single hub process).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.db import migrate
from hub.db.engine import make_engine
from hub.db.schema import audit_log, hall_credentials, ratings
from tests.hub.conftest import DB_KINDS, fresh_database
from tests.hub.helpers import AREA, HALL, RATINGS, rating
from tests.hub.pgcluster import PgCluster, free_port
from tools import cli

HCP = Path(sys.executable).parent / "hcp"


@pytest.fixture(params=DB_KINDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh' / 'hub.sqlite3'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCP_LANG", raising=False)
    monkeypatch.delenv("HCP_HUB_DATABASE_URL", raising=False)


def hcp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_admin_commands(capsys: pytest.CaptureFixture[str], empty_url: str) -> None:
    db = ["--database-url", empty_url]
    status, _, err = hcp(
        capsys, "hub", "add-hall", HALL, "--name", "大厅", "--area-code", AREA, *db
    )
    assert status == 1 and "hcp hub migrate" in err and err.startswith("hcp: ")

    status, out, _ = hcp(capsys, "hub", "migrate", *db)
    assert status == 0 and migrate.head_revision() in out
    status, out, _ = hcp(capsys, "hub", "migrate", *db)
    assert status == 0 and "已是最新版本" in out

    status, out, _ = hcp(
        capsys, "hub", "add-hall", HALL, "--name", "海曙大厅", "--area-code", AREA, *db
    )
    assert status == 0 and HALL in out
    status, _, err = hcp(capsys, "hub", "add-hall", HALL, "--name", "x", "--area-code", AREA, *db)
    assert status == 1 and "已存在" in err
    status, _, err = hcp(
        capsys, "--lang", "en", "hub", "add-hall", "h2", "--name", "x", "--area-code", "99", *db
    )
    assert status == 1 and "area code" in err and "9 digits" in err

    status, out, err = hcp(capsys, "hub", "issue-token", "--hall", HALL, "--note", "agent-1", *db)
    assert status == 0
    token = out.strip()
    assert token.startswith("hcpt_") and len(out.splitlines()) == 1
    token_id = token.split("_")[1]
    assert token_id in err and "只显示这一次" in err
    status, _, err = hcp(capsys, "hub", "issue-token", "--hall", "nowhere", *db)
    assert status == 1 and "nowhere" in err

    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(hall_credentials)).one()
            assert row.token_id == token_id and row.note == "agent-1"
            assert token not in row.token_sha256 and len(row.token_sha256) == 64
            actions = [r.action for r in connection.execute(select(audit_log))]
        assert actions == ["hall.add", "token.issue"]

        status, out, _ = hcp(capsys, "hub", "revoke-token", token_id, *db)
        assert status == 0 and token_id in out
        status, _, err = hcp(capsys, "hub", "revoke-token", token_id, *db)
        assert status == 1 and "已于" in err
        with engine.connect() as connection:
            assert connection.execute(select(hall_credentials.c.revoked_at)).scalar_one()
    finally:
        engine.dispose()


def test_bad_database_urls(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = hcp(capsys, "hub", "migrate", "--database-url", "mysql://x/y")
    assert status == 1 and "不支持的数据库" in err
    status, _, err = hcp(
        capsys,
        "--lang",
        "en",
        "hub",
        "migrate",
        "--database-url",
        f"postgresql://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2",
    )
    assert status == 1 and err.startswith("hcp: cannot use the database postgresql")


def test_serve_refuses_an_unmigrated_database(
    capsys: pytest.CaptureFixture[str], empty_url: str
) -> None:
    status, _, err = hcp(capsys, "hub", "serve", "--database-url", empty_url, "--port", "1")
    assert status == 1 and "hcp hub migrate" in err


# ---------------------------------------------------------------- end to end


class HubProcess:
    def __init__(self, url: str, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "HCP_LANG"}
        self.proc = subprocess.Popen(
            [str(HCP), "hub", "serve", "--database-url", url, "--port", str(self.port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                output = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"hcp hub serve exited {self.proc.returncode}:\n{output}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("hcp hub serve did not answer within 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def post(base: str, token: str, items: list[Any]) -> httpx.Response:
    body = gzip.compress(json.dumps({"items": items}).encode())
    return httpx.post(
        f"{base}{RATINGS}",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
        timeout=60,
    )


@pytest.mark.parametrize("kind", DB_KINDS)
def test_two_hub_processes_store_each_rating_once(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    databases = fresh_database(request, kind, tmp_path)
    url = next(databases)
    try:
        # Both processes migrate at start (--migrate): the migration lock makes that safe.
        engine = make_engine(url)
        engine.dispose()
        hubs: list[HubProcess] = []
        try:
            hubs = [HubProcess(url, "--migrate"), HubProcess(url, "--migrate")]
            for hub in hubs:  # started together: they also race to migrate
                hub.wait_ready()
            assert (
                hcp(
                    capsys,
                    "hub",
                    "add-hall",
                    HALL,
                    "--name",
                    "大厅",
                    "--area-code",
                    AREA,
                    "--database-url",
                    url,
                )[0]
                == 0
            )
            status, token, _ = hcp(
                capsys, "hub", "issue-token", "--hall", HALL, "--database-url", url
            )
            assert status == 0
            token = token.strip()

            unauthorized = httpx.post(f"{hubs[0].base}{RATINGS}", json={"items": []}, timeout=10)
            assert unauthorized.status_code == 401
            assert unauthorized.json()["error"]["code"] == "auth.missing"

            batches = [[rating(n, device=f"ev-{b}") for n in range(200)] for b in range(3)]
            answers: list[list[dict[str, Any]]] = [[], []]
            barrier = threading.Barrier(2)
            failures: list[str] = []

            def client(slot: int) -> None:
                barrier.wait()
                for batch in batches:
                    response = post(hubs[slot].base, token, batch)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:300]}")
                        return
                    answers[slot].extend(response.json()["results"])

            threads = [threading.Thread(target=client, args=(s,)) for s in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not failures, failures
            assert len(answers[0]) == len(answers[1]) == 600
            for a, b in zip(*answers, strict=True):
                assert a["key"] == b["key"]
                assert sorted([a["status"], b["status"]]) == ["accepted", "duplicate"], (a, b)
        finally:
            for hub in hubs:
                hub.stop()
        engine = make_engine(url)
        try:
            assert migrate.is_current(engine)
            with engine.connect() as connection:
                keys = connection.execute(select(ratings.c.rating_key)).scalars().all()
            assert len(keys) == len(set(keys)) == 600
        finally:
            engine.dispose()
    finally:
        next(databases, None)
