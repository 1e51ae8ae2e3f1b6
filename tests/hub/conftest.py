"""Hub test fixtures: every storage and ingest test runs on SQLite and on a real PostgreSQL.

- ``pg_cluster``: one throwaway PostgreSQL cluster per test session (tests/hub/pgcluster.py).
  If it cannot start, the tests that need it FAIL with the reason; they are never skipped.
- ``db``: parametrized ``sqlite`` / ``postgresql``: a fresh, migrated database per test (a
  copy of a migrated SQLite file; ``CREATE DATABASE … TEMPLATE`` of a migrated one).
- ``hall``: a registered hall with a freshly issued token; ``api``: a synchronous client
  over the real ASGI app bound to that database and token; ``make_api`` for other settings.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, select

from hub.app import create_app
from hub.auth.service import issue_token
from hub.db import migrate
from hub.db.engine import make_engine
from hub.registry.service import add_hall
from hub.settings import HubSettings
from tests.hub.helpers import AREA, HALL, SyncClient
from tests.hub.pgcluster import PgCluster, PgUnavailable

DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = PgCluster.start()
    except PgUnavailable as e:
        pytest.fail(
            f"PostgreSQL is required by the hub tests and could not be started: {e}",
            pytrace=False,
        )
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    name = pg_cluster.create_database(name="hub_template")
    engine = make_engine(pg_cluster.url(name))
    migrate.upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub-template") / "hub.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@dataclass
class HubDb:
    kind: str
    url: str
    engine: Engine

    def count(self, table: Table) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def fresh_database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        path = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database(template=request.getfixturevalue("pg_template"))
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture(params=DB_KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubDb]:
    databases = fresh_database(request, request.param, tmp_path)
    url = next(databases)
    engine = make_engine(url)
    try:
        yield HubDb(request.param, url, engine)
    finally:
        engine.dispose()
        next(databases, None)


NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class Hall:
    hall_id: str
    token: str
    token_id: str


def make_hall(engine: Engine, hall_id: str = HALL, area: str = AREA) -> Hall:
    with engine.begin() as connection:
        add_hall(
            connection=connection,
            hall_id=hall_id,
            name=f"{hall_id} 政务服务中心",
            area_code=area,
            now=NOW,
            actor="test",
        )
        new = issue_token(connection=connection, hall_id=hall_id, now=NOW, actor="test")
    return Hall(hall_id, new.token, new.token_id)


@pytest.fixture
def hall(db: HubDb) -> Hall:
    return make_hall(db.engine)


@pytest.fixture
def make_api(db: HubDb) -> Iterator[Callable[..., SyncClient]]:
    clients: list[SyncClient] = []

    def make(token: str | None = None, **settings: Any) -> SyncClient:
        app = create_app(HubSettings(database_url=db.url, **settings), engine=db.engine)
        client = SyncClient(app, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(make_api: Callable[..., SyncClient], hall: Hall) -> SyncClient:
    return make_api(hall.token)
