"""Sync to the hub: drain the outbox in batches over HTTPS (docs/hub-api.md).

Strategy: the store is the only state. The outbox (edge_agent.outbox) holds every item the
hub must receive, already in the hub's JSON shape and under its hub identity; this module
reads it in queue order, one kind at a time (one endpoint per kind), posts gzip batches, and
changes the store only from the hub's per-item answers, in one transaction per batch:
accepted and duplicate items are deleted, rejected ones are moved to ``outbox_rejected``
with the hub's error (never resent, never blocking the rest). Nothing is marked done before
the hub said so, so a crash or kill at any moment only means a batch is sent again, which
the hub answers ``duplicate`` (ingest is idempotent on the item's key). A restart begins
again at the oldest queued item; nothing about progress lives only in memory.

Shape: one producer reads batches ahead (a cursor per kind, at most ``concurrency`` batches
waiting) and ``concurrency`` senders post them. A sender keeps its batch until the hub has
answered it, whatever that takes:
- network errors, timeouts, 5xx other than 503, an answer that breaks the contract:
  exponential backoff with full jitter (delay uniform in [0, min(cap, base·2^n)]), so a
  hall's agents coming back after a hub outage do not all retry in step;
- 429 and 503: wait ``Retry-After`` seconds (all senders: the hub said it is full), then
  resend the same batch; this is not counted as a failure;
- 413: split the batch and send the halves (a single item that is too large is rejected);
- 401: the token is wrong, revoked or expired: stop, say so in /healthz, re-read the token
  file every AUTH_RETRY_S (rotation: put the new token in the file, no restart needed);
- 400, 404, 405, 415, 422: the agent and the hub disagree on the contract; retrying at once
  cannot help, so the batch is retried at the backoff cap while /healthz shows the code.

Waking: an empty outbox is not polled; the producer waits until the store reports a commit
that queued an item (``Store.on_enqueue``, called after COMMIT, so nothing is read early),
then takes everything queued by then. A quiet hall's rating leaves as soon as it is on disk;
under load the producer blocks on the bounded queue while the senders are busy, items pile
up in the outbox meanwhile, and the next read takes them as one batch. A slow poll (POLL_S)
stays as a safety net.

Device health: every ``hub.health_s`` the producer queues one sample per registered device
(kind ``health``) through the same outbox, so it shares the limits and the guarantees.

The token is read from ``hub.token_file`` and never logged (edge_agent.logs also redacts
any field named token); log lines name items by their key under ``item``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import importlib
import json
import logging
import random
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_agent import outbox, registry
from edge_agent.config import AgentConfig
from edge_agent.hubitems import rfc3339
from edge_agent.logs import log_event
from edge_agent.metrics import Exposition
from edge_agent.store import Database, Store, now_ms

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("hcp.agent.sync")

PATHS = {
    "rating": "/api/v1/ingest/ratings",
    "case_event": "/api/v1/ingest/case-events",
    "health": "/api/v1/ingest/device-health",
}
KINDS = tuple(PATHS)
TOKEN_RE = re.compile(r"hcpt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
BACKOFF_BASE_S = 0.5  # first retry within half a second: a blip should cost little
BACKOFF_CAP_S = 60.0  # a hub that is down for hours is polled about once a minute
REFUSED_RETRY_S = 300.0  # a contract disagreement needs a person; retry slowly meanwhile
AUTH_RETRY_S = 60.0  # re-read the token file this often after a 401
RETRY_AFTER_MAX_S = 3600  # a Retry-After beyond an hour is a misconfigured hub
RETRY_AFTER_DEFAULT_S = 5  # 429/503 without a usable Retry-After
# An empty outbox is looked at again this often even without a wake-up: the wake-up only
# hears this process's commits (another process on the store file, or a listener that
# failed, would otherwise leave items waiting until the next rating); three indexed
# queries a second cost nothing.
POLL_S = 1.0
# 500 bench presses (178 KB of JSON): level 1 gives 2.6 KB in 0.24 ms, level 6 2.1 KB in
# 0.61 ms. Both are far below one round trip; the cheaper one leaves the CPU to the links.
GZIP_LEVEL = 1
LAST_SUCCESS = "sync.last_success_ms"


# ---------------------------------------------------------------- store functions
@dataclass(frozen=True)
class Row:
    id: int
    key: str
    body: str


def fetch(store: Store, kind: str, after_id: int, limit: int) -> list[Row]:
    """The next queued items of one kind, oldest first (runs on the writer thread)."""
    return [
        Row(r[0], r[1], r[2])
        for r in store.conn.execute(
            "SELECT id, key, body FROM outbox WHERE kind = ? AND id > ? ORDER BY id LIMIT ?",
            (kind, after_id, limit),
        )
    ]


@dataclass(frozen=True)
class Outcome:
    status: str  # accepted, duplicate, rejected
    error: dict[str, Any] | None = None


def settle(
    store: Store, kind: str, rows: list[Row], outcomes: list[Outcome], *, now_ms: int
) -> Counter[str]:
    """Apply the hub's answer to one batch in one transaction; returns counts by status."""
    done = [r.id for r, o in zip(rows, outcomes, strict=True) if o.status != "rejected"]
    counts: Counter[str] = Counter(o.status for o in outcomes)
    with store.tx() as c:
        removed = 0
        for i in range(0, len(done), 500):  # well under SQLite's bound-parameter limit
            part = done[i : i + 500]
            removed += c.execute(
                f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(part))})", part
            ).rowcount
        for row, o in zip(rows, outcomes, strict=True):
            if o.status != "rejected":
                continue
            error = o.error or {}
            moved = c.execute(
                "INSERT OR REPLACE INTO outbox_rejected"
                " (key, kind, body, created_ms, rejected_ms, code, error)"
                " SELECT key, kind, body, created_ms, ?, ?, ? FROM outbox WHERE id = ?",
                (
                    now_ms,
                    str(error.get("code", "unknown")),
                    json.dumps(error, ensure_ascii=False),
                    row.id,
                ),
            ).rowcount
            if moved:
                removed += c.execute("DELETE FROM outbox WHERE id = ?", (row.id,)).rowcount
        for status, n in counts.items():
            store.bump(f"sync.{status}.{kind}", n)
        store.bump(outbox.ROWS, -removed)
        c.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (LAST_SUCCESS, str(now_ms)),
        )
    return counts


def rejected_items(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The dead-letter items, newest first (for the hall administrator and tests)."""
    return [
        {
            "item": r["key"],
            "kind": r["kind"],
            "code": r["code"],
            "error": json.loads(r["error"]),
            "rejected_ms": r["rejected_ms"],
        }
        for r in store.all(
            "SELECT key, kind, code, error, rejected_ms FROM outbox_rejected"
            " ORDER BY rejected_ms DESC LIMIT ?",
            limit,
        )
    ]


def _state(store: Store) -> tuple[int, int, int | None, dict[str, int]]:
    last = store.meta(LAST_SUCCESS)
    return (
        outbox.depth(store),
        int(store.scalar("SELECT count(*) FROM outbox_rejected") or 0),
        int(last) if last is not None else None,
        {k: v for k, v in store.counters().items() if k.startswith("sync.")},
    )


_COUNTER_RE = re.compile(r"[^a-z0-9_]")


def health_key(device_id: str, sampled_ms: int) -> str:
    """The hub's identity of a health sample (docs/hub-api.md, "Device health")."""
    t = dt.datetime.fromtimestamp(sampled_ms / 1000, dt.UTC)
    return f"health:{device_id}:{t.strftime('%Y%m%dT%H%M%S.%fZ')}"


def health_item(
    d: registry.DeviceView, *, hall_id: str, now_ms: int, offset_min: int
) -> dict[str, Any]:
    counters: dict[str, int] = {}
    for code, n in sorted(d.refused.items()):
        name = _COUNTER_RE.sub("_", code.lower())[:32]
        if name and len(counters) < 32:
            counters[name] = counters.get(name, 0) + int(n)
    kind = d.public()["kind"]
    return {
        "device_id": d.device_id,
        "hall_id": hall_id,
        "sampled_at": rfc3339(now_ms, offset_min),
        "online": d.online,
        "window_id": d.window_id,
        "kind": kind,
        "board": d.board[:24] if d.board else None,
        "firmware": d.firmware[:24] if d.firmware else None,
        "last_seen_at": rfc3339(d.last_seen_ms, offset_min) if d.last_seen_ms else None,
        "uptime_s": d.uptime_s,
        "free_heap": d.free_heap,
        "outbox_depth": d.outbox_depth,
        "outbox_dropped": d.outbox_dropped,
        "config_version": d.config_version,
        "link": d.link if d.link in ("serial", "mqtt") else None,
        "counters": counters,
    }


def enqueue_health(store: Store, cfg: AgentConfig, *, now_ms: int) -> int:
    """Queue one health sample per registered device; returns how many were queued."""
    devices = registry.devices(store)
    queued = 0
    with store.tx():
        for d in devices:
            if outbox.depth(store) >= cfg.outbox.max_rows:
                # A full outbox keeps its room for ratings, whatever the overflow policy:
                # a health sample must never push out (drop_oldest) a citizen's rating.
                store.bump("sync.health_skipped")
                continue
            body = health_item(d, hall_id=cfg.hall_id, now_ms=now_ms, offset_min=cfg.utc_offset_min)
            outbox.enqueue(
                store,
                kind="health",
                key=health_key(d.device_id, now_ms),
                body=body,
                now_ms=now_ms,
                limits=cfg.outbox,
            )
            queued += 1
    return queued


# ---------------------------------------------------------------- the hub's answers
class BadAnswer(Exception):
    """The hub's 200 answer does not fit the batch sent (a contract breach)."""


def parse_answer(raw: bytes, rows: list[Row]) -> list[Outcome]:
    """Per-item outcomes from a 200 answer; BadAnswer if it does not match the batch."""
    try:
        doc = json.loads(raw)
        results = doc["results"]
    except (ValueError, KeyError, TypeError) as e:
        raise BadAnswer(f"not a batch result: {type(e).__name__}") from e
    if not isinstance(results, list) or len(results) != len(rows):
        raise BadAnswer(f"{len(rows)} items sent, results do not match")
    out: list[Outcome] = []
    for i, (row, r) in enumerate(zip(rows, results, strict=True)):
        index = r.get("index") if isinstance(r, dict) else None
        if type(index) is not int or index != i:  # JSON true is not index 1
            raise BadAnswer(f"result {i} has no matching index")
        status = r.get("status")
        if status in ("accepted", "duplicate"):
            if r.get("key") != row.key:  # never delete an item the hub did not name
                raise BadAnswer(f"result {i} names another item")
            out.append(Outcome(status))
        elif status == "rejected":
            error = r.get("error")
            out.append(Outcome("rejected", error if isinstance(error, dict) else {}))
        else:
            raise BadAnswer(f"result {i} has an unknown status")
    return out


def retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (the hub sends an integer; be lenient, bounded)."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        return RETRY_AFTER_DEFAULT_S
    return float(min(max(seconds, 0), RETRY_AFTER_MAX_S))


def full_jitter(attempt: int, rng: random.Random, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog, 2015)."""
    return rng.uniform(0.0, min(cap, base * 2 ** min(attempt, 30)))


def encode(rows: list[Row]) -> bytes:
    """The gzip request body; the outbox holds each item's JSON already."""
    raw = b'{"items":[' + ",".join(r.body for r in rows).encode() + b"]}"
    return gzip.compress(raw, compresslevel=GZIP_LEVEL)


# ---------------------------------------------------------------- the sync task
@dataclass
class Batch:
    kind: str
    rows: list[Row]


class HubSync:
    """Drains the outbox to the hub; ``run()`` is one task of the agent."""

    def __init__(
        self,
        cfg: AgentConfig,
        db: Database,
        *,
        clock_ms: Callable[[], int] = now_ms,
        rng: random.Random | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
    ) -> None:
        assert cfg.hub.url is not None
        self.cfg = cfg
        self.hub = cfg.hub
        self.db = db
        self.clock_ms = clock_ms
        self.rng = rng or random.Random()
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.auth_retry_s = AUTH_RETRY_S
        self.state = "starting"
        self.last_error: str | None = None
        self.backoff_s = 0.0  # the delay the senders are waiting now (0: none)
        self.requests: Counter[str] = Counter()  # by HTTP status or error class
        self.sent_items = 0
        self._token: str | None = None
        self._pause_until = 0.0  # monotonic: Retry-After applies to every sender
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=self.hub.concurrency)
        self._queued = asyncio.Event()  # set after a commit that queued an outbox item
        self._client: httpx.AsyncClient | None = None

    # ---- token
    def _read_token(self) -> str | None:
        path = self.hub.token_file
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except OSError as e:
            self._fail("no_token", "sync.token_unreadable", error=e.strerror or type(e).__name__)
            return None
        if not TOKEN_RE.fullmatch(text):
            self._fail("no_token", "sync.token_malformed")  # never log the content
            return None
        if mode & 0o077:
            log_event(log, "sync.token_file_open", logging.WARNING, file=str(path))
        return text

    def _fail(self, state: str, code: str, **fields: Any) -> None:
        self.state = state
        self.last_error = code
        log_event(log, code, logging.ERROR, **fields)

    # ---- status for /healthz and /metrics
    async def health(self) -> dict[str, Any]:
        depth, rejected, last, _ = await self.db.run(_state)
        return {
            "state": self.state,
            "url": self.hub.url,
            "queued": depth,
            "rejected": rejected,
            "last_success_ms": last,
            "backoff_s": round(self.backoff_s, 3),
            "last_error": self.last_error,
        }

    async def metrics(self) -> str:
        depth, rejected, last, counters = await self.db.run(_state)
        e = Exposition()
        e.metric("sync_queued", "gauge", "Items waiting to be sent to the hub.", [({}, depth)])
        e.metric(
            "sync_items_total",
            "counter",
            "Items the hub answered, by kind and result (accepted, duplicate, rejected).",
            [
                ({"result": k.split(".")[1], "kind": k.split(".")[2]}, v)
                for k, v in sorted(counters.items())
                if k.count(".") == 2
            ],
        )
        e.metric(
            "sync_rejected_held",
            "gauge",
            "Rejected items held for the administrator.",
            [({}, rejected)],
        )
        e.metric(
            "sync_requests_total",
            "counter",
            "Requests to the hub since start, by HTTP status or error.",
            [({"status": k}, v) for k, v in sorted(self.requests.items())],
        )
        e.metric(
            "sync_last_success_timestamp_seconds",
            "gauge",
            "When the hub last answered a batch (0: never).",
            [({}, (last or 0) / 1000)],
        )
        e.metric("sync_backoff_seconds", "gauge", "Current retry delay.", [({}, self.backoff_s)])
        e.metric(
            "sync_up",
            "gauge",
            "1 while the last exchange with the hub succeeded or nothing is queued.",
            [({}, int(self.state in ("ok", "idle")))],
        )
        return e.text()

    # ---- tasks
    async def run(self) -> None:
        # httpx costs ~0.5 s of imports (2 s on a loaded box): in a thread, so the device
        # links on this loop keep acknowledging ratings meanwhile.
        httpx = await asyncio.to_thread(importlib.import_module, "httpx")

        verify: ssl.SSLContext | bool = True
        if self.hub.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.hub.ca_file))
        self._client = httpx.AsyncClient(
            base_url=str(self.hub.url),
            timeout=self.hub.timeout_s,
            verify=verify,
            limits=httpx.Limits(max_connections=self.hub.concurrency),
        )
        senders = [
            asyncio.create_task(self._sender(), name=f"hub-sync-{i}")
            for i in range(self.hub.concurrency)
        ]
        loop = asyncio.get_running_loop()

        def wake() -> None:  # on the store's writer thread, after the commit
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._queued.set)

        self.db.store.on_enqueue = wake
        log_event(log, "sync.started", url=self.hub.url, concurrency=self.hub.concurrency)
        try:
            await self._producer()
        finally:
            self.db.store.on_enqueue = None
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            await self._client.aclose()

    async def _producer(self) -> None:
        cursor = dict.fromkeys(KINDS, 0)
        next_health = [time.monotonic() + 1.0]
        while True:
            try:
                await self._produce(cursor, next_health)
            except Exception:  # a store hiccup must not end sync; the cursor is kept
                log.exception("sync.read_failed", extra={"fields": {}})
                await asyncio.sleep(1.0)

    async def _produce(self, cursor: dict[str, int], next_health: list[float]) -> None:
        while True:
            if self.hub.health_s and time.monotonic() >= next_health[0]:
                next_health[0] = time.monotonic() + self.hub.health_s
                try:
                    await self.db.run(enqueue_health, self.cfg, now_ms=self.clock_ms())
                except Exception:  # health is best effort; ratings must keep flowing
                    log.exception("sync.health_failed", extra={"fields": {}})
            # Cleared before reading: a commit from now on sets it again, so none is missed.
            self._queued.clear()
            found = False
            for kind in KINDS:
                rows = await self.db.run(fetch, kind, cursor[kind], self.hub.batch)
                if rows:
                    found = True
                    cursor[kind] = rows[-1].id
                    await self._queue.put(Batch(kind, rows))
            if not found:
                if self._queue.empty() and self.state in ("ok", "starting"):
                    self.state = "idle"
                timeout = POLL_S
                if self.hub.health_s:
                    timeout = min(timeout, max(0.0, next_health[0] - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queued.wait(), timeout)

    async def _sender(self) -> None:
        while True:
            batch = await self._queue.get()
            while True:  # the producer's cursor is past this batch: never give it up
                try:
                    await self._deliver(batch.kind, batch.rows)
                    break
                except Exception:  # e.g. the store failed to settle: it rolled back
                    log.exception("sync.deliver_failed", extra={"fields": {}})
                    await self._wait(self.backoff_cap_s)

    async def _wait(self, seconds: float) -> None:
        self.backoff_s = seconds
        await asyncio.sleep(seconds)
        self.backoff_s = 0.0

    async def _deliver(self, kind: str, rows: list[Row]) -> None:
        """Send one batch until the hub has answered every item in it."""
        attempt = 0
        while True:
            pause = self._pause_until - time.monotonic()
            if pause > 0:
                await self._wait(pause)
            if self._token is None:
                self._token = await asyncio.to_thread(self._read_token)
                if self._token is None:
                    await self._wait(self.auth_retry_s)
                    continue
            try:
                status, answer, headers = await self._post(kind, rows)
            except Exception as e:  # network, timeout, TLS: all transient from here
                self.requests[type(e).__name__] += 1
                attempt += 1
                delay = full_jitter(attempt, self.rng, self.backoff_base_s, self.backoff_cap_s)
                self.state, self.last_error = "backoff", type(e).__name__
                log_event(
                    log,
                    "sync.unreachable",
                    logging.WARNING,
                    error=type(e).__name__,
                    attempt=attempt,
                    delay_s=round(delay, 2),
                )
                await self._wait(delay)
                continue
            self.requests[str(status)] += 1
            if status == 200:
                try:
                    outcomes = parse_answer(answer, rows)
                except BadAnswer as e:
                    attempt += 1
                    self.state, self.last_error = "backoff", "hub.bad_answer"
                    log_event(log, "sync.bad_answer", logging.ERROR, error=str(e))
                    await self._wait(
                        full_jitter(attempt, self.rng, self.backoff_base_s, self.backoff_cap_s)
                    )
                    continue
                counts = await self.db.run(settle, kind, rows, outcomes, now_ms=self.clock_ms())
                self.sent_items += len(rows)
                self.state, self.last_error = "ok", None
                for row, o in zip(rows, outcomes, strict=True):
                    if o.status == "rejected":
                        code = (o.error or {}).get("code", "unknown")
                        log_event(log, "sync.rejected", logging.WARNING, item=row.key, code=code)
                log_event(log, "sync.batch", logging.DEBUG, kind=kind, **counts)
                return
            code = _error_code(answer)
            if status in (429, 503):
                wait = retry_after(headers.get("retry-after"))
                self._pause_until = max(self._pause_until, time.monotonic() + wait)
                self.state, self.last_error = "throttled", code or str(status)
                log_event(log, "sync.throttled", logging.INFO, status=status, wait_s=wait)
                continue
            if status == 413:
                if len(rows) > 1:
                    half = len(rows) // 2
                    log_event(log, "sync.split", logging.WARNING, items=len(rows), code=code)
                    await self._deliver(kind, rows[:half])
                    await self._deliver(kind, rows[half:])
                    return
                error = {"code": code or "request.too_large", "status": 413}
                await self.db.run(
                    settle, kind, rows, [Outcome("rejected", error)], now_ms=self.clock_ms()
                )
                log_event(log, "sync.rejected", logging.WARNING, item=rows[0].key, code=code)
                return
            if status == 401:
                self._token = None
                self._fail("unauthorized", code or "auth.invalid_token", status=status)
                await self._wait(self.auth_retry_s)
                continue
            if 400 <= status < 500:
                self.state, self.last_error = "refused", code or str(status)
                log_event(log, "sync.refused", logging.ERROR, status=status, code=code)
                await self._wait(REFUSED_RETRY_S)
                continue
            attempt += 1
            delay = full_jitter(attempt, self.rng, self.backoff_base_s, self.backoff_cap_s)
            self.state, self.last_error = "backoff", code or str(status)
            log_event(
                log,
                "sync.hub_error",
                logging.WARNING,
                status=status,
                attempt=attempt,
                delay_s=round(delay, 2),
            )
            await self._wait(delay)

    async def _post(self, kind: str, rows: list[Row]) -> tuple[int, bytes, dict[str, str]]:
        assert self._client is not None and self._token is not None
        body = await asyncio.to_thread(encode, rows) if len(rows) > 50 else encode(rows)
        r = await self._client.post(
            PATHS[kind],
            content=body,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        )
        return r.status_code, r.content, {k.lower(): v for k, v in r.headers.items()}


def _error_code(raw: bytes) -> str | None:
    try:
        code = json.loads(raw)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None
