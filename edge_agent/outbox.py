"""The hub outbox: what the agent owes the hub, with explicit limits and never a silent drop.

Strategy: every item the hub must receive (a rating, a case event; device health comes with
sync) is written to ``outbox`` in the same transaction as the fact it reports, already in the
hub's JSON shape (docs/hub-api.md) and under its hub identity as ``key``, so a crash can never
store a rating without queueing it, and the sync client (next part of issue 4) only reads,
sends and deletes what the hub acknowledged. ``key`` is UNIQUE: enqueueing twice is a no-op.

Limits (agent.toml ``[outbox]``), each with a persisted counter in ``counters``:
- ``max_rows``: when the outbox holds this many rows, the overflow policy decides:
  - ``block`` (default): refuse the new item. For a rating that means it is *not stored and
    not acknowledged*: the device keeps it on flash and retransmits, so nothing is lost while
    the hub is away; case events are answered 503 ``outbox.full``. Counter ``outbox_blocked``.
  - ``drop_oldest``: delete the oldest queued item to make room. Counter
    ``outbox_dropped_oldest``. The fact stays in the local tables; only its upload is lost.
  - ``drop_newest``: keep the queue, do not queue the new item (it is still stored locally).
    Counter ``outbox_dropped_newest``.
- ``max_age_days``: items older than this are removed by ``expire`` (the agent's sweeper),
  counter ``outbox_expired``: a hub unreachable for a month needs a person, and the local
  tables still hold every fact.
The row count is kept as the gauge ``gauge.outbox_rows`` in ``counters``, maintained in the
same transactions, because ``count(*)`` over a million rows on every rating is too slow.
"""

from __future__ import annotations

import json
from typing import Any

from edge_agent.config import OutboxLimits
from edge_agent.store import Store

ROWS = "gauge.outbox_rows"
EXPIRE_BATCH = 1000  # rows deleted per sweep: keeps one sweep's transaction short


def depth(store: Store) -> int:
    return int(store.scalar("SELECT value FROM counters WHERE name = ?", ROWS) or 0)


def has_room(store: Store, limits: OutboxLimits, n: int = 1) -> bool:
    """Whether n more items fit without the overflow policy acting (always, unless block)."""
    return limits.overflow != "block" or depth(store) + n <= limits.max_rows


def enqueue(
    store: Store, *, kind: str, key: str, body: dict[str, Any], now_ms: int, limits: OutboxLimits
) -> bool:
    """Queue one item (call inside the transaction of the fact). False: refused by ``block``.

    An item whose key is already queued is not queued again (True).
    """
    with store.tx() as c:
        rows = depth(store)
        if rows >= limits.max_rows:
            if limits.overflow == "block":
                store.bump("outbox_blocked")
                return False
            if limits.overflow == "drop_newest":
                store.bump("outbox_dropped_newest")
                return True
            excess = rows - limits.max_rows + 1
            deleted = c.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (excess,),
            ).rowcount
            store.bump("outbox_dropped_oldest", deleted)
            store.bump(ROWS, -deleted)
        inserted = c.execute(
            "INSERT OR IGNORE INTO outbox (key, kind, body, created_ms) VALUES (?, ?, ?, ?)",
            (key, kind, json.dumps(body, ensure_ascii=False, separators=(",", ":")), now_ms),
        ).rowcount
        if inserted:
            store.bump(ROWS, inserted)
            store.bump(f"outbox_enqueued.{kind}", inserted)
            if store.on_enqueue is not None:
                store.after_commit(store.on_enqueue)
        return True


def expire(store: Store, *, now_ms: int, limits: OutboxLimits) -> int:
    """Remove items older than max_age (at most EXPIRE_BATCH per call); returns how many."""
    cutoff = now_ms - limits.max_age_s * 1000
    with store.tx() as c:
        deleted = c.execute(
            "DELETE FROM outbox WHERE id IN "
            "(SELECT id FROM outbox WHERE created_ms < ? ORDER BY id LIMIT ?)",
            (cutoff, EXPIRE_BATCH),
        ).rowcount
        if deleted:
            store.bump("outbox_expired", deleted)
            store.bump(ROWS, -deleted)
    return deleted


def items(store: Store, limit: int = 1000) -> list[dict[str, Any]]:
    """The oldest queued items, for the sync client and tests."""
    return [
        {"id": r["id"], "key": r["key"], "kind": r["kind"], "body": json.loads(r["body"])}
        for r in store.all("SELECT id, key, kind, body FROM outbox ORDER BY id LIMIT ?", limit)
    ]
