"""Storage: migrations build exactly the schema the code describes, on both databases; the
SQLite settings; concurrent migrations; the code checks (GB 32100, 行政区划); flag bits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from hub.db import migrate
from hub.db.engine import DatabaseUrlError, make_engine, normalize_url
from hub.db.schema import APPEND_ONLY, metadata
from hub.ingest.models import FLAG_BITS, Flag
from hub.registry.codes import CodeError, check_area_code, check_uscc, uscc_check_char
from tests.hub.conftest import HubDb
from tests.hub.pgcluster import PgCluster


def test_migrations_build_the_described_schema(db: HubDb) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == [], differences
    assert migrate.is_current(db.engine)


def test_every_table_and_append_only_trigger_exists(db: HubDb) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert set(metadata.tables) <= tables
    if db.kind == "sqlite":
        query = "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT event_object_table FROM information_schema.triggers"
    with db.engine.connect() as connection:
        guarded = {row[0] for row in connection.execute(text(query))}
    assert guarded == set(APPEND_ONLY)


def test_downgrade_and_upgrade_again(db: HubDb) -> None:
    migrate.downgrade(db.engine, "base")
    assert migrate.current_revision(db.engine) is None
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    assert migrate.upgrade(db.engine) == (None, migrate.head_revision())


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'hub.sqlite3'}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 2,  # FULL
            "busy_timeout": 10_000,
        }
    finally:
        engine.dispose()


def test_database_urls() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(DatabaseUrlError, match="unsupported database"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(DatabaseUrlError, match="cannot parse"):
        normalize_url("not a url")
    with pytest.raises(DatabaseUrlError, match="must be a file"):
        make_engine("sqlite://")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_migrations(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> None:
    """Several hub processes may run `serve --migrate` at once: one migrates, the others
    wait for its lock and find nothing to do."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.url(cluster.create_database())
    engines = [make_engine(url) for _ in range(3)]
    results: list[tuple[str | None, str | None]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results.append(migrate.upgrade(engines[index]))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    head = migrate.head_revision()
    assert sorted(results, key=str) == sorted([(None, head), (head, head), (head, head)], key=str)


# ---------------------------------------------------------------- codes

VALID_USCC = [
    "91350100M000100Y43",  # the GB 32100 worked example
    "11330200002950478P",
    "12100000400000624D",
    "91440300708461136T",
]


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_credit_codes(code: str) -> None:
    assert check_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91350100M000100Y44", "check character should be 3"),
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y4I", "character 'I'"),
        ("9135010OM000100Y43", "character 'O'"),
        ("91350100m000100Y43", "character 'm'"),
        ("91A50100M000100Y43", "area code"),
    ],
)
def test_invalid_credit_codes(code: str, message: str) -> None:
    with pytest.raises(CodeError, match=message) as raised:
        check_uscc(code)
    assert raised.value.zh and "统一社会信用代码" in raised.value.zh


def test_every_single_character_typo_is_caught() -> None:
    """The check character catches any one wrong character (GB 32100 mod-31 design)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    code = VALID_USCC[0]
    for position in range(17):
        for replacement in alphabet:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1 :]
            if not typo[2:8].isdigit():
                continue
            with pytest.raises(CodeError):
                check_uscc(typo)


def test_area_codes() -> None:
    assert check_area_code("330203001") == "330203001"
    for bad, message in [
        ("33020300", "9 digits"),
        ("3302030011", "9 digits"),
        ("33020300x", "9 digits"),
        ("３３０２０３００１", "9 digits"),  # full-width digits are not ASCII
        ("990203001", "province"),
        ("000000000", "province"),
    ]:
        with pytest.raises(CodeError, match=message):
            check_area_code(bad)


def test_flag_bits_match_the_protocol() -> None:
    from protocol import messages

    assert FLAG_BITS == {
        Flag.REPEAT: messages.FLAG_REPEAT,
        Flag.UNSOLICITED: messages.FLAG_UNSOLICITED,
        Flag.PAUSED: messages.FLAG_PAUSED,
        Flag.REASON_TIMEOUT: messages.FLAG_REASON_TIMEOUT,
        Flag.REASON_SKIPPED: messages.FLAG_REASON_SKIPPED,
        Flag.OFFLINE: messages.FLAG_OFFLINE,
    }
    assert sum(FLAG_BITS.values()) == messages.FLAGS_ALL


def test_channel_names_match_the_policy_code_maps() -> None:
    """The API's channel names are the keys of the jurisdictions' channel code maps
    (hub.policy.codes): a channel the API accepts must be one the export can translate."""
    from hub.ingest.models import Channel as ApiChannel
    from hub.policy.codes import Channel as PolicyChannel

    assert {c.value for c in ApiChannel} == {c.value for c in PolicyChannel}
