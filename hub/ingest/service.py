"""Batch ingest: validate each item, store the good ones exactly once, answer every item.

Strategy, per batch and in the caller's one transaction (docs/hub-api.md):
1. validate item by item (hub.ingest.validation): a bad item gets its own rejection and the
   rest carry on;
2. claim devices: ``INSERT … ON CONFLICT DO NOTHING`` of (device, hall), then one read of the
   owners; an item naming another hall's device is rejected, so no hall can pre-empt another
   hall's ``(device_id, seq)`` identities;
3. register what the items name (windows, staff accounts, 事项, departments), the same way;
4. insert the items with ``ON CONFLICT DO NOTHING … RETURNING key``: the keys returned were
   stored now (accepted); for the others one read of the stored content hash tells duplicate
   (same content) from identity conflict (different content: rejected and audited).
Rows are written in key order, so concurrent transactions lock in the same order and cannot
deadlock each other. Nothing reads before writing to decide whether to write, so two hub
processes ingesting the same batch at once store each item exactly once (DESIGN.md).
Nothing here ever updates or deletes a rating, and nothing looks at a level or a flag to
decide whether to keep an item (DOMAIN.md, fraud patterns).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import Connection, Table, select

from hub import audit
from hub.db.schema import (
    case_events,
    cases,
    departments,
    device_health,
    devices,
    items,
    ratings,
    staff_accounts,
    windows,
)
from hub.db.upsert import execute_rows, insert_ignore, insert_new_keys, upsert_fill
from hub.errors import ItemError, Msg
from hub.ingest import validation
from hub.ingest.models import (
    FLAG_BITS,
    CaseEvent,
    CaseEventKind,
    DeviceHealth,
    Flag,
    RatingItem,
    Source,
    UserType,
)
from hub.metrics import rollup
from hub.policy.codes import Channel

# What a hall credential may send (docs/hub-api.md): phone ratings come through the hub's
# rating page, default ratings from the hub's job, imports from the operator.
HALL_SOURCES = frozenset({Source.DEVICE_PRESS})
ALL_SOURCES = frozenset(Source)

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(slots=True)
class Outcome:
    index: int
    key: str | None
    status: Status
    error: ItemError | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "key": self.key, "status": self.status}
        if self.error is not None:
            body["error"] = self.error.body()
        return body


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    counts: dict[Status, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.counts.get("accepted", 0),
            "duplicate": self.counts.get("duplicate", 0),
            "rejected": self.counts.get("rejected", 0),
            "results": [o.as_json() for o in self.outcomes],
        }


@dataclass(slots=True)
class _Pending:
    index: int
    key: str
    row: dict[str, Any]
    device_id: str | None


MSG_OTHER_HALL = Msg(
    "设备 {device} 属于大厅 {owner}，不能由大厅 {hall} 提交；设备换大厅须由管理员操作",
    "device {device} belongs to hall {owner}, not to hall {hall}; "
    "moving a device between halls is an operator action",
)
MSG_CONFLICT = Msg(
    "标识 {key} 已存有内容不同的记录；已存记录保留不变，此项被拒绝并记入审计日志",
    "identity {key} is already stored with different content; the stored record is kept, "
    "this item is refused and the conflict is audited",
)
MSG_CONFLICT_IN_BATCH = Msg(
    "同一批中标识 {key} 出现两次且内容不同（第 {first} 项）",
    "identity {key} appears twice in this batch with different content (item {first})",
)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


# --- ratings ---

# The content compared when an identity arrives again: equal is a duplicate, different
# is an identity conflict (everything the sender said; not what the hub added).
RATING_CONTENT = (
    "rating_key",
    "source",
    "hall_id",
    "window_id",
    "staff_id",
    "device_id",
    "seq",
    "origin_id",
    "case_no",
    "item_code",
    "item_name",
    "dept_code",
    "level",
    "reasons",
    "text",
    "channel",
    "pf",
    "flags",
    "rated_at",
    "invited_at",
    "assess_number",
    "rater_name_masked",
    "rater_phone_masked",
    "rater_real_name",
    "rater_user_type",
)


# Enum member -> stored text, by dict lookup (Enum.value is a descriptor call per access).
_TEXT: dict[StrEnum, str] = {m: m.value for e in (Source, Channel, UserType) for m in e}


def rating_key(item: RatingItem) -> str:
    if item.source is Source.DEVICE_PRESS:
        return f"device:{item.device_id}:{item.seq}"
    return f"{_TEXT[item.source]}:{item.hall_id}:{item.origin_id}"


_NO_RATER = {
    "rater_name_masked": None,
    "rater_phone_masked": None,
    "rater_real_name": None,
    "rater_user_type": None,
}


def _rating_row(item: RatingItem, key: str, now: datetime, token_id: str | None) -> dict[str, Any]:
    # A copy of the validated fields (one C-level copy; reading 22 attributes one by one
    # into a new dict cost twice as much), then the values stored differently than sent.
    row = item.__dict__.copy()
    flags = 0
    for flag in item.flags:
        flags |= FLAG_BITS[flag]
    row["flags"] = flags
    row["reasons"] = ",".join(map(str, item.reasons))
    row["source"] = _TEXT[item.source]
    row["channel"] = _TEXT[item.channel]
    # rated_at and invited_at stay aware datetimes; the column type stores them as UTC
    # (hub.db.types).
    rater = row.pop("rater")
    if rater is None:
        row.update(_NO_RATER)
    else:
        row["rater_name_masked"] = rater.name_masked
        row["rater_phone_masked"] = rater.phone_masked
        row["rater_real_name"] = rater.real_name
        row["rater_user_type"] = _TEXT[rater.user_type]
    row["rating_key"] = key
    row["received_at"] = now
    row["token_id"] = token_id
    return row


AfterStore = Callable[[Connection, list[dict[str, Any]], datetime], None]


def ingest_ratings(
    *,
    connection: Connection,
    hall_id: str,
    items_in: Sequence[object],
    now: datetime,
    actor: str,
    token_id: str | None = None,
    sources: frozenset[Source] = HALL_SOURCES,
    after_store: AfterStore | None = None,
) -> BatchResult:
    """Store a batch of ratings from hall `hall_id`; one outcome per item, in order.
    ``after_store`` gets the rows stored for the first time, in this transaction (the 差评
    workflow opens its work orders there: hub.workflow.service.WorkflowConfig.after_ratings)."""
    outcomes, pending = _validate_items(
        items_in,
        RatingItem,
        "rating",
        key_of=rating_key,
        check=lambda item: validation.check_rating(item, hall_id=hall_id, sources=sources),
        row_of=lambda item, key: _rating_row(item, key, now, token_id),
        device_of=lambda item: item.device_id,
    )

    pending = _claim_devices(connection, hall_id, pending, outcomes, now)
    rows = [p.row for p in pending]
    _register_refs(connection, hall_id, rows, now)
    stored = _store(
        connection, ratings, "rating_key", RATING_CONTENT, pending, outcomes, now=now, actor=actor
    )
    # The rows stored now, once each (a key repeated in the batch is stored once).
    new_rows, seen = [], set()
    for p in pending:
        if p.key in stored and p.key not in seen:
            seen.add(p.key)
            new_rows.append(p.row)
    _mark_rated_cases(connection, new_rows)
    rollup.add_ratings(connection, new_rows)  # the per-day totals the reports read
    if after_store is not None and stored:
        after_store(connection, new_rows, now)
    return _finish(connection, "ingest.ratings", hall_id, outcomes, now=now, actor=actor)


# A case rating: the first rating of a case, not a follow-up, repeat or unsolicited press
# (hub.metrics.queries, counting rules); the bits are FLAG_BITS repeat and unsolicited.
_NOT_COUNTED_FLAGS = FLAG_BITS[Flag.REPEAT] | FLAG_BITS[Flag.UNSOLICITED]


def _mark_rated_cases(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Keep ``cases.first_rated_at`` / ``first_active_rated_at`` (the earliest case rating,
    and the earliest not from the default rule) for the ratings stored now: one upsert per
    batch, earliest wins whatever order ratings arrive in. Creates the case row when the
    rating comes before the case's events."""
    marks: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row["case_no"] is None or row["assess_number"] != 1 or row["flags"] & _NOT_COUNTED_FLAGS:
            continue
        at = row["rated_at"]
        key = (row["hall_id"], row["case_no"])
        mark = marks.get(key)
        if mark is None:
            mark = marks[key] = {
                "hall_id": key[0],
                "case_no": key[1],
                "first_event_at": at,
                "first_rated_at": at,
                "first_active_rated_at": None,
            }
        elif at < mark["first_rated_at"]:
            mark["first_rated_at"] = mark["first_event_at"] = at
        if row["source"] != "default_rule":
            active = mark["first_active_rated_at"]
            if active is None or at < active:
                mark["first_active_rated_at"] = at
    if marks:
        _upsert_earliest(
            connection,
            [marks[k] for k in sorted(marks)],  # key order: no deadlock between batches
            ("first_rated_at", "first_active_rated_at"),
        )


_MARK_COLUMNS = ("hall_id", "case_no", "first_event_at", "first_rated_at", "first_active_rated_at")


def _upsert_earliest(
    connection: Connection, rows: list[dict[str, Any]], columns: Sequence[str]
) -> None:
    """Insert case rows; on conflict keep, per column, the earliest non-NULL value (and
    leave every other column alone). Sent as driver SQL with values encoded by the columns'
    own bind processors (as hub.db.upsert.insert_new_keys does): SQLAlchemy's generic
    executemany cost more per rating than the rest of this step."""
    dialect = connection.dialect
    postgres = dialect.name == "postgresql"
    quote = dialect.identifier_preparer.quote
    sets = []
    for name in columns:
        col, new = quote(name), f"excluded.{quote(name)}"
        # PostgreSQL's LEAST ignores NULLs; SQLite's two-argument min() returns NULL if
        # either is NULL, so each side falls back to the other first.
        sets.append(
            f"{col} = LEAST(cases.{col}, {new})"
            if postgres
            else f"{col} = min(coalesce(cases.{col}, {new}), coalesce({new}, cases.{col}))"
        )
    head = f"INSERT INTO cases ({', '.join(quote(n) for n in _MARK_COLUMNS)}) VALUES "
    tail = f" ON CONFLICT (hall_id, case_no) DO UPDATE SET {', '.join(sets)}"
    encode = cases.c.first_rated_at.type.bind_processor(dialect)
    cache: dict[int, Any] = {}

    def enc(value: Any) -> Any:
        if value is None or encode is None:
            return value
        key = id(value)
        if key not in cache:
            cache[key] = encode(value)
        return cache[key]

    params = [
        (
            row["hall_id"],
            row["case_no"],
            enc(row["first_event_at"]),
            enc(row["first_rated_at"]),
            enc(row["first_active_rated_at"]),
        )
        for row in rows
    ]
    execute_rows(connection, head, tail, params)


# --- case events ---

EVENT_CONTENT = (
    "event_key",
    "hall_id",
    "event_id",
    "kind",
    "occurred_at",
    "window_id",
    "staff_id",
    "device_id",
    "case_no",
    "item_code",
    "item_name",
    "dept_code",
    "applicant_user_type",
    "applicant_name_masked",
    "applicant_phone_masked",
    "applicant_real_name",
    "invited",
)

# Case summary columns each kind fills (first value wins; docs/hub-api.md "Case events").
_CASE_FILL: dict[CaseEventKind, tuple[str, ...]] = {
    CaseEventKind.CASE_OPENED: (
        "item_code",
        "item_name",
        "dept_code",
        "window_id",
        "staff_id",
        "applicant_user_type",
        "applicant_name_masked",
        "applicant_phone_masked",
        "applicant_real_name",
        "opened_at",
    ),
    CaseEventKind.CASE_FINISHED: ("finished_at", "invited"),
    CaseEventKind.CASE_CANCELLED: ("cancelled_at",),
}
_CASE_TIME = {
    CaseEventKind.CASE_OPENED: "opened_at",
    CaseEventKind.CASE_FINISHED: "finished_at",
    CaseEventKind.CASE_CANCELLED: "cancelled_at",
}
_CASE_COLUMNS = sorted({c for cols in _CASE_FILL.values() for c in cols})


def _event_row(item: CaseEvent, key: str, now: datetime, token_id: str | None) -> dict[str, Any]:
    applicant = item.applicant
    row: dict[str, Any] = {
        "event_key": key,
        "hall_id": item.hall_id,
        "event_id": item.event_id,
        "kind": item.kind.value,
        "occurred_at": _utc(item.occurred_at),
        "window_id": item.window_id,
        "staff_id": item.staff_id,
        "device_id": item.device_id,
        "case_no": item.case_no,
        "item_code": item.item_code,
        "item_name": item.item_name,
        "dept_code": item.dept_code,
        "applicant_user_type": applicant.user_type.value if applicant else None,
        "applicant_name_masked": applicant.name_masked if applicant else None,
        "applicant_phone_masked": applicant.phone_masked if applicant else None,
        "applicant_real_name": applicant.real_name if applicant else None,
        "invited": item.invited,
    }
    row["received_at"] = now
    row["token_id"] = token_id
    return row


def ingest_case_events(
    *,
    connection: Connection,
    hall_id: str,
    items_in: Sequence[object],
    now: datetime,
    actor: str,
    token_id: str | None = None,
) -> BatchResult:
    outcomes, pending = _validate_items(
        items_in,
        CaseEvent,
        "event",
        key_of=lambda item: f"event:{item.hall_id}:{item.event_id}",
        check=lambda item: validation.check_event(item, hall_id=hall_id),
        row_of=lambda item, key: _event_row(item, key, now, token_id),
        device_of=lambda item: None,
    )

    rows = [p.row for p in pending]
    _register_refs(connection, hall_id, rows, now)
    inserted = _store(
        connection, case_events, "event_key", EVENT_CONTENT, pending, outcomes, now=now, actor=actor
    )
    _project_cases(connection, [p.row for p in pending if p.key in inserted])
    return _finish(connection, "ingest.case_events", hall_id, outcomes, now=now, actor=actor)


def _project_cases(connection: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Fold newly stored case events into the per-case summary (one row per case)."""
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["occurred_at"], r["event_key"])):
        kind = CaseEventKind(row["kind"])
        if kind not in _CASE_FILL:
            continue
        case = summary.setdefault(
            (row["hall_id"], row["case_no"]),
            {"hall_id": row["hall_id"], "case_no": row["case_no"], "first_event_at": None}
            | dict.fromkeys(_CASE_COLUMNS),
        )
        if case["first_event_at"] is None:
            case["first_event_at"] = row["occurred_at"]
        values = dict(row)
        values[_CASE_TIME[kind]] = row["occurred_at"]
        for column in _CASE_FILL[kind]:
            if case[column] is None:
                case[column] = values.get(column)
    ordered = [summary[k] for k in sorted(summary)]
    upsert_fill(
        connection,
        cases,
        ["hall_id", "case_no"],
        ordered,
        fill=_CASE_COLUMNS,
        earliest=["first_event_at"],
    )


# --- device health ---

HEALTH_CONTENT = (
    "health_key",
    "device_id",
    "hall_id",
    "sampled_at",
    "online",
    "window_id",
    "kind",
    "board",
    "firmware",
    "last_seen_at",
    "uptime_s",
    "free_heap",
    "outbox_depth",
    "outbox_dropped",
    "config_version",
    "link",
    "counters",
)


def _health_row(
    item: DeviceHealth, key: str, now: datetime, token_id: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "health_key": key,
        "device_id": item.device_id,
        "hall_id": item.hall_id,
        "sampled_at": _utc(item.sampled_at),
        "online": item.online,
        "window_id": item.window_id,
        "kind": item.kind.value if item.kind else None,
        "board": item.board,
        "firmware": item.firmware,
        "last_seen_at": _utc(item.last_seen_at),
        "uptime_s": item.uptime_s,
        "free_heap": item.free_heap,
        "outbox_depth": item.outbox_depth,
        "outbox_dropped": item.outbox_dropped,
        "config_version": item.config_version,
        "link": item.link.value if item.link else None,
        "counters": json.dumps(item.counters, sort_keys=True, separators=(",", ":")),
    }
    row["received_at"] = now
    row["token_id"] = token_id
    return row


def health_key(item: DeviceHealth) -> str:
    sampled = item.sampled_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"health:{item.device_id}:{sampled}"


def ingest_device_health(
    *,
    connection: Connection,
    hall_id: str,
    items_in: Sequence[object],
    now: datetime,
    actor: str,
    token_id: str | None = None,
) -> BatchResult:
    outcomes, pending = _validate_items(
        items_in,
        DeviceHealth,
        "health",
        key_of=health_key,
        check=lambda item: validation.check_hall("health", item.hall_id, hall_id),
        row_of=lambda item, key: _health_row(item, key, now, token_id),
        device_of=lambda item: item.device_id,
    )

    pending = _claim_devices(connection, hall_id, pending, outcomes, now)
    _store(
        connection,
        device_health,
        "health_key",
        HEALTH_CONTENT,
        pending,
        outcomes,
        now=now,
        actor=actor,
    )
    return _finish(connection, "ingest.device_health", hall_id, outcomes, now=now, actor=actor)


# --- shared steps ---


def _validate_items(
    items_in: Sequence[object],
    model: type[validation.M],
    what: str,
    *,
    key_of: Callable[[validation.M], str],
    check: Callable[[validation.M], None],
    row_of: Callable[[validation.M, str], dict[str, Any]],
    device_of: Callable[[validation.M], str | None],
) -> tuple[list[Outcome | None], list[_Pending]]:
    """Validate each item on its own: a rejection gets its outcome now (with the item's key
    when it got that far); the rest become pending rows, in order."""
    outcomes: list[Outcome | None] = [None] * len(items_in)
    pending: list[_Pending] = []
    for index, raw in enumerate(items_in):
        try:
            item = validation.validate(model, what, raw)
            key = key_of(item)
        except ItemError as e:
            outcomes[index] = Outcome(index, None, "rejected", e)
            continue
        try:
            check(item)
        except ItemError as e:
            outcomes[index] = Outcome(index, key, "rejected", e)
            continue
        pending.append(_Pending(index, key, row_of(item, key), device_of(item)))
    return outcomes, pending


def _claim_devices(
    connection: Connection,
    hall_id: str,
    pending: list[_Pending],
    outcomes: list[Outcome | None],
    now: datetime,
) -> list[_Pending]:
    """Register unknown devices to this hall; reject items naming another hall's device."""
    named: dict[str, str | None] = {}
    for p in pending:
        if p.device_id is not None:
            named[p.device_id] = p.row.get("kind")  # health samples name the device kind
    if not named:
        return pending
    ids = sorted(named)
    insert_ignore(
        connection,
        devices,
        [{"device_id": d, "hall_id": hall_id, "kind": named[d], "first_seen_at": now} for d in ids],
    )
    owners = {
        row[0]: row[1]
        for row in connection.execute(
            select(devices.c.device_id, devices.c.hall_id).where(devices.c.device_id.in_(ids))
        )
    }
    kept: list[_Pending] = []
    for p in pending:
        owner = owners.get(p.device_id) if p.device_id is not None else hall_id
        if owner == hall_id:
            kept.append(p)
        else:
            error = ItemError(
                "device.other_hall",
                MSG_OTHER_HALL.fill(device=p.device_id, owner=owner, hall=hall_id),
                field="device_id",
            )
            outcomes[p.index] = Outcome(p.index, p.key, "rejected", error)
    return kept


def _distinct(rows: Iterable[Mapping[str, Any]], column: str) -> list[Any]:
    return sorted({row[column] for row in rows} - {None})


def _register_refs(
    connection: Connection, hall_id: str, rows: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Reference rows named by the items (learnt, first sight wins), in key order."""
    insert_ignore(
        connection,
        departments,
        [{"dept_code": c, "first_seen_at": now} for c in _distinct(rows, "dept_code")],
    )
    names: dict[str, Any] = {}
    for row in rows:
        if row["item_code"] is not None:
            names.setdefault(row["item_code"], row["item_name"])
    insert_ignore(
        connection,
        items,
        [{"item_code": c, "item_name": names[c], "first_seen_at": now} for c in sorted(names)],
    )
    insert_ignore(
        connection,
        windows,
        [
            {"hall_id": hall_id, "window_id": w, "first_seen_at": now}
            for w in _distinct(rows, "window_id")
        ],
    )
    insert_ignore(
        connection,
        staff_accounts,
        [
            {"hall_id": hall_id, "staff_id": s, "first_seen_at": now}
            for s in _distinct(rows, "staff_id")
        ],
    )


def _store(
    connection: Connection,
    table: Table,
    key_column: str,
    content: Sequence[str],
    pending: Sequence[_Pending],
    outcomes: list[Outcome | None],
    *,
    now: datetime,
    actor: str,
) -> set[str]:
    """Insert the pending rows exactly once; fill in their outcomes; return the keys stored now."""
    first: dict[str, _Pending] = {}
    repeats: list[_Pending] = []
    for p in pending:
        if p.key in first:
            repeats.append(p)
        else:
            first[p.key] = p
    inserted: set[str] = insert_new_keys(
        connection, table, key_column, [first[k].row for k in sorted(first)]
    )
    others = sorted(k for k in first if k not in inserted)
    stored: dict[str, tuple[Any, ...]] = {}
    if others:
        columns = [table.c[key_column], *(table.c[name] for name in content)]
        stored = {
            row[0]: tuple(row[1:])
            for row in connection.execute(select(*columns).where(table.c[key_column].in_(others)))
        }
    prefix = _PREFIX[table.name]
    for key, p in first.items():
        if key in inserted:
            outcomes[p.index] = Outcome(p.index, key, "accepted")
            continue
        differs = _differs(content, stored[key], p.row)
        if not differs:
            outcomes[p.index] = Outcome(p.index, key, "duplicate")
            continue
        audit.record(
            connection,
            at=now,
            actor=actor,
            action=f"{prefix}.identity_conflict",
            target=key,
            fields=differs,  # names only: the values may be personal data
        )
        error = ItemError(f"{prefix}.identity_conflict", MSG_CONFLICT.fill(key=key))
        outcomes[p.index] = Outcome(p.index, key, "rejected", error)
    for p in repeats:
        original = first[p.key]
        if not _differs(content, tuple(original.row[n] for n in content), p.row):
            outcomes[p.index] = Outcome(p.index, p.key, "duplicate")
        else:
            error = ItemError(
                f"{prefix}.identity_conflict",
                MSG_CONFLICT_IN_BATCH.fill(key=p.key, first=original.index),
            )
            outcomes[p.index] = Outcome(p.index, p.key, "rejected", error)
    return inserted


_PREFIX = {"ratings": "rating", "case_events": "event", "device_health": "health"}


def _differs(content: Sequence[str], stored: Sequence[Any], row: Mapping[str, Any]) -> list[str]:
    return [name for name, value in zip(content, stored, strict=True) if row[name] != value]


def _finish(
    connection: Connection,
    action: str,
    hall_id: str,
    outcomes: list[Outcome | None],
    *,
    now: datetime,
    actor: str,
) -> BatchResult:
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(outcomes), "every item gets an outcome"
    counts: dict[Status, int] = {"accepted": 0, "duplicate": 0, "rejected": 0}
    rejected_codes: dict[str, int] = {}
    for o in done:
        counts[o.status] += 1
        if o.error is not None:
            rejected_codes[o.error.code] = rejected_codes.get(o.error.code, 0) + 1
    if done:
        audit.record(
            connection,
            at=now,
            actor=actor,
            action=action,
            target=f"hall:{hall_id}",
            items=len(done),
            rejected_codes=rejected_codes,
            **counts,
        )
    return BatchResult(done, counts)


__all__ = [
    "ALL_SOURCES",
    "HALL_SOURCES",
    "BatchResult",
    "Outcome",
    "ingest_case_events",
    "ingest_device_health",
    "ingest_ratings",
]
