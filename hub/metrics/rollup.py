"""Per-day rating totals kept by ingest (``rating_rollup``), so period reports read ~one row
per day, group and counting class instead of every rating of the period.

One stored rating adds 1 to one row of each stored dimension (ROLLUP_KEYS), keyed by:
- ``day``: the China calendar day of ``rated_at`` ('YYYY-MM-DD'; periods are whole China
  days, so a period is a range of days);
- ``dim`` and its group (``k1``, ``k2``), plus ``dept_code`` on every dimension, so a
  report narrowed to one department (a department handler's scope) is answered here too;
- the counting class: default rule or not, level, assess_number, repeat, unsolicited,
  real-name, everything the DOMAIN.md figures are conditions on (hub.metrics.queries).
NULL group values are stored as '' (a primary key column cannot be NULL; no id, code or
channel the hub accepts is empty).

Ratings are immutable and never deleted, so the totals only grow: one upsert per batch
(``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``, both databases) in the ingest
transaction. Excluded ratings stay in the totals; the report subtracts them at read time
from the small ``rating_exclusions`` table, exactly as before, so whichever code writes an
exclusion the figures stay right (hub.metrics.queries). Migration 0004 builds the totals
from the ratings already stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from hub.db.upsert import execute_rows

FLAG_REPEAT = 0x01
FLAG_UNSOLICITED = 0x02
DEFAULT_SOURCE = "default_rule"
CHINA_OFFSET = timedelta(hours=8)  # China has one offset and no daylight saving time
EPOCH_DAY = date(1970, 1, 1)
CHINA_EPOCH = datetime(1970, 1, 1, tzinfo=UTC) - CHINA_OFFSET  # 1970-01-01 00:00 China time

# dimension → the rating columns of (k1, k2); "department" also answers "all".
# (spelled out in rollup_counts, and in migration 0004's backfill)
ROLLUP_KEYS: dict[str, tuple[str | None, str | None]] = {
    "department": (None, None),
    "hall": ("hall_id", None),
    "window": ("hall_id", "window_id"),
    "staff": ("hall_id", "staff_id"),
    "item": ("item_code", None),
    "channel": ("channel", None),
}
CLASS_COLUMNS = ("is_default", "level", "assess_number", "repeat", "unsolicited", "real_name")
KEY_COLUMNS = ("dim", "day", "dept_code", "k1", "k2", *CLASS_COLUMNS)

RollupKey = tuple[str, str, str, str, str, int, int, int, int, int, int]


def china_day(at: datetime) -> str:
    """'YYYY-MM-DD' of the China calendar day of an aware datetime."""
    return (at.astimezone(UTC).replace(tzinfo=None) + CHINA_OFFSET).date().isoformat()


def rollup_counts(rows: Iterable[Mapping[str, Any]]) -> Counter[RollupKey]:
    """The rollup rows (key → count) that stored rating rows add. Ratings are first counted
    per full key (one tuple each), then each distinct key is spread over the dimensions."""
    full: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        flags = row["flags"]
        full[
            (
                (row["rated_at"] - CHINA_EPOCH).days,  # China day number (exact arithmetic)
                row["dept_code"] or "",
                row["hall_id"],
                row["window_id"] or "",
                row["staff_id"] or "",
                row["item_code"] or "",
                row["channel"],
                row["source"] == DEFAULT_SOURCE,
                row["level"],
                row["assess_number"],
                flags & FLAG_REPEAT,
                flags & FLAG_UNSOLICITED,
                row["rater_real_name"] is True,
            )
        ] += 1
    counts: Counter[RollupKey] = Counter()
    days: dict[int, str] = {}
    for key, n in full.items():
        number, dept, hall, window, staff, item, channel = key[:7]
        day = days.get(number)
        if day is None:
            day = days[number] = (EPOCH_DAY + timedelta(days=number)).isoformat()
        default, level, assess, repeat, unsolicited, real = key[7:]
        cls = (int(default), int(level), int(assess), int(bool(repeat)), int(bool(unsolicited)))
        cls_real = (*cls, int(real))
        counts[("department", day, dept, "", "", *cls_real)] += n
        counts[("hall", day, dept, hall, "", *cls_real)] += n
        counts[("window", day, dept, hall, window, *cls_real)] += n
        counts[("staff", day, dept, hall, staff, *cls_real)] += n
        counts[("item", day, dept, item, "", *cls_real)] += n
        counts[("channel", day, dept, channel, "", *cls_real)] += n
    return counts


def add_ratings(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add stored rating rows to the totals: one upsert per batch, in key order (two hub
    processes adding to the same rows on PostgreSQL take their row locks in one order)."""
    counts = rollup_counts(rows)
    if not counts:
        return
    params = [(*key, n) for key, n in sorted(counts.items())]
    columns = ", ".join((*KEY_COLUMNS, "n"))
    conflict = ", ".join(KEY_COLUMNS)
    tail = f" ON CONFLICT ({conflict}) DO UPDATE SET n = rating_rollup.n + excluded.n"
    head = f"INSERT INTO rating_rollup ({columns}) VALUES "
    execute_rows(connection, head, tail, params)


__all__ = [
    "CLASS_COLUMNS",
    "KEY_COLUMNS",
    "ROLLUP_KEYS",
    "add_ratings",
    "china_day",
    "rollup_counts",
]
