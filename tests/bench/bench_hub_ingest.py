"""Hub ingest benchmark: batch rating ingest through the service layer, SQLite and PostgreSQL.

    uv run python -m tests.bench.bench_hub_ingest            # print the figures
    uv run python -m tests.bench.bench_hub_ingest --write    # also update docs/performance.md
    uv run python -m tests.bench.bench_hub_ingest --quick    # fewer ratings (a smoke run)

What is timed: ``hub.ingest.service.ingest_ratings`` on batches of 1,000 parsed JSON items
(what the HTTP layer hands it), one transaction and one commit per batch, into a freshly
migrated database: validation, device claims, reference rows, the idempotent insert and the
audit row. Baseline, in the same run, on the same schema: the driver's own ``executemany``
of exactly the rows the service stores (already validated and encoded), one commit per
batch, the same number of batches — the least any code could do to store them.

SQLite runs as the hub runs it (WAL, synchronous=FULL). PostgreSQL is a throwaway cluster
(tests/hub/pgcluster.py) with fsync on, local over TCP. Each figure is the best of several
runs, each run on a fresh database.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine

from hub.auth.service import issue_token
from hub.db import migrate
from hub.db.engine import make_engine
from hub.db.schema import departments, devices, items, ratings, staff_accounts, windows
from hub.ingest import service, validation
from hub.ingest.models import RatingItem
from hub.ingest.service import HALL_SOURCES, ingest_ratings, rating_key
from hub.registry.service import add_hall
from tests.bench.report import write_block
from tests.hub.helpers import AREA, HALL, rating
from tests.hub.pgcluster import PgCluster

ROOT = Path(__file__).resolve().parents[2]
GOAL_SQLITE = 20_000  # ratings/s, issue 5
BATCH = 1000  # hub.ingest.models.MAX_ITEMS: what an agent sends when it has a backlog
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CLOCK = time.perf_counter
DAY_START = datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(hours=8)))


def make_batches(total: int) -> list[list[dict[str, Any]]]:
    """Realistic device presses: 20 devices over 10 windows, every level, 差评 with reasons,
    masked raters, a press time and an invite time of its own for each; identities distinct."""
    out = []
    for b in range(total // BATCH):
        batch = []
        for i in range(BATCH):
            n = b * BATCH + i
            pressed = DAY_START + timedelta(seconds=3 * n)
            batch.append(
                rating(
                    n,
                    device=f"ev-{n % 20:04d}",
                    window_id=f"w{n % 10}",
                    rated_at=pressed.isoformat(timespec="milliseconds"),
                    invited_at=(pressed - timedelta(seconds=6)).isoformat(),
                )
            )
        out.append(batch)
    return out


def fresh(url_for: Callable[[], str]) -> Engine:
    engine = make_engine(url_for())
    migrate.upgrade(engine)
    with engine.begin() as connection:
        add_hall(connection=connection, hall_id=HALL, name="bench", area_code=AREA, now=NOW,
                 actor="bench")  # fmt: skip
        issue_token(connection=connection, hall_id=HALL, now=NOW, actor="bench")
    return engine


def run_service(engine: Engine, batches: list[list[dict[str, Any]]]) -> float:
    start = CLOCK()
    for batch in batches:
        with engine.begin() as connection:
            result = ingest_ratings(
                connection=connection, hall_id=HALL, items_in=batch, now=NOW, actor="bench"
            )
        assert result.counts["accepted"] == len(batch), result.counts
    return CLOCK() - start


def stored_rows(batches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The rows the service would store for these batches (built outside the timing)."""
    out = []
    for batch in batches:
        rows = []
        for raw in batch:
            item = validation.validate(RatingItem, "rating", raw)
            validation.check_rating(item, hall_id=HALL, sources=HALL_SOURCES)
            rows.append(service._rating_row(item, rating_key(item), NOW, None))
        out.append(rows)
    return out


def run_raw(engine: Engine, row_batches: list[list[dict[str, Any]]]) -> float:
    """Driver executemany of ready, encoded tuples: the floor for storing the same rows."""
    dialect = engine.dialect
    names = list(row_batches[0][0])
    processors = [ratings.c[n].type.bind_processor(dialect) for n in names]
    encoded = [
        [
            tuple(
                v if p is None else p(v)
                for v, p in zip((r[n] for n in names), processors, strict=True)
            )
            for r in rows
        ]
        for rows in row_batches
    ]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO ratings ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
    # Reference rows the foreign keys need, outside the timing.
    all_rows = [r for rows in row_batches for r in rows]
    with engine.begin() as connection:
        for table, values in (
            (devices, [{"device_id": d, "hall_id": HALL, "first_seen_at": NOW}
                       for d in sorted({r["device_id"] for r in all_rows})]),
            (windows, [{"hall_id": HALL, "window_id": w, "first_seen_at": NOW}
                       for w in sorted({r["window_id"] for r in all_rows})]),
            (staff_accounts, [{"hall_id": HALL, "staff_id": s, "first_seen_at": NOW}
                              for s in sorted({r["staff_id"] for r in all_rows})]),
            (items, [{"item_code": c, "item_name": None, "first_seen_at": NOW}
                     for c in sorted({r["item_code"] for r in all_rows})]),
            (departments, [{"dept_code": c, "first_seen_at": NOW}
                           for c in sorted({r["dept_code"] for r in all_rows})]),
        ):  # fmt: skip
            connection.execute(table.insert(), values)
    raw = engine.raw_connection()
    try:
        start = CLOCK()
        for rows in encoded:
            cursor = raw.cursor()
            if dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows)
            cursor.close()
            raw.commit()
        return CLOCK() - start
    finally:
        raw.close()


def measure(
    name: str, url_for: Callable[[], str], batches: list[list[dict[str, Any]]], repeats: int
) -> dict[str, float]:
    rows = stored_rows(batches)
    total = sum(len(b) for b in batches)
    best_service = best_raw = float("inf")
    for _ in range(repeats):
        engine = fresh(url_for)
        try:
            best_service = min(best_service, run_service(engine, batches))
        finally:
            engine.dispose()
        engine = fresh(url_for)
        try:
            best_raw = min(best_raw, run_raw(engine, rows))
        finally:
            engine.dispose()
    print(f"{name}: service {total / best_service:,.0f}/s, raw {total / best_raw:,.0f}/s",
          file=sys.stderr)  # fmt: skip
    return {"service": total / best_service, "raw": total / best_raw, "total": float(total)}


def report(figures: dict[str, dict[str, float]], pg_version: str) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, "
        f"CPython {platform.python_version()}, SQLite {sqlalchemy.__version__ and _sqlite()}, "
        f"PostgreSQL {pg_version} (local, fsync on), SQLAlchemy {sqlalchemy.__version__}; "
        f"{int(figures['SQLite']['total']):,} ratings in batches of {BATCH:,}, best of "
        f"{REPEATS} runs each on a fresh database; load average {LOAD[0]:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after (the machine is shared: absolute rates move with "
        "its load, the ratios much less).",
        "",
        "| database | service layer (ratings/s) | raw executemany, same rows (ratings/s) "
        "| service ÷ raw | goal |",
        "|---|---|---|---|---|",
    ]
    for name, goal in (("SQLite", f"≥ {GOAL_SQLITE:,}/s"), ("PostgreSQL", "")):
        f = figures[name]
        lines.append(
            f"| {name} | {f['service']:,.0f} | {f['raw']:,.0f} | "
            f"{f['service'] / f['raw']:.2f}× | {goal} |"
        )
    return "\n".join(lines)


def _sqlite() -> str:
    import sqlite3

    return sqlite3.sqlite_version


REPEATS = 3


LOAD = (0.0, 0.0, 0.0)


def main(argv: list[str]) -> int:
    global REPEATS, LOAD
    LOAD = os.getloadavg()
    quick = "--quick" in argv
    total = 5_000 if quick else 50_000
    REPEATS = 1 if quick else 3
    batches = make_batches(total)
    # The inputs of all runs live for the whole benchmark; a hub process holds one batch.
    # Freezing them keeps the garbage collector from rescanning 50,000 dicts on every full
    # collection, which would charge the service for memory the server never has.
    gc.collect()
    gc.freeze()
    tmp = Path(tempfile.mkdtemp(prefix="hcp-bench-"))
    counter = iter(range(1_000_000))
    cluster = PgCluster.start(durable=True)
    try:
        figures = {
            "SQLite": measure(
                "SQLite",
                lambda: f"sqlite:///{tmp / f'hub{next(counter)}.sqlite3'}",
                batches,
                REPEATS,
            ),
            "PostgreSQL": measure(
                "PostgreSQL", lambda: cluster.url(cluster.create_database()), batches, REPEATS
            ),
        }
        version = str(cluster.server_version())
        pg_version = f"{int(version[:-4])}.{int(version[-2:])}"
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(figures, pg_version)
    print(text)
    if "--write" in argv:
        write_block("hub_ingest", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
