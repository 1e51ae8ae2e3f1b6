"""Sync to the hub (edge_agent.sync) against the real hub: ``hcp hub serve`` on SQLite.

Items are queued with the same builders the agent uses when it stores a fact
(edge_agent.hubitems, edge_agent.outbox); the agent is the real one (in a thread, or
``hcp agent run`` as a process where it gets killed); what arrived is read from the hub's
own database.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent import hubitems, outbox, registry
from edge_agent.binding import Binding
from edge_agent.config import AgentConfig, OutboxLimits
from edge_agent.store import Store, now_ms
from edge_agent.sync import (
    BadAnswer,
    Row,
    full_jitter,
    health_key,
    parse_answer,
    retry_after,
)
from protocol import messages as M
from tests.agent.helpers import HALL, KEY, AgentThread, make_config, wait_for
from tests.agent.hubproc import HCP, Hub, Throttle, free_port

LIMITS = OutboxLimits()


def rating(device: str, seq: int, **over: Any) -> dict[str, Any]:
    item = hubitems.rating_item(
        hall_id=HALL,
        device_id=device,
        seq=seq,
        level=1 + seq % 5,
        reasons=[501] if seq % 5 >= 3 else [],
        flags=0,
        binding=Binding.UNSOLICITED,
        press_ms=1_780_000_000_000 + seq,
        offset_min=480,
        window_id="W01",
        staff_id=None,
        case=None,
        invited_ms=None,
    )
    item.update(over)
    return item


def queue_ratings(store: Store, device: str, seqs: range, **over: Any) -> None:
    with store.tx():
        for seq in seqs:
            assert outbox.enqueue(
                store,
                kind="rating",
                key=f"device:{device}:{seq}",
                body=rating(device, seq, **over),
                now_ms=now_ms(),
                limits=LIMITS,
            )


def queue_events(store: Store, n: int) -> None:
    with store.tx():
        for i in range(n):
            body = hubitems.case_event(
                event_id=f"e{i}",
                kind="case_opened",
                hall_id=HALL,
                at_ms=now_ms(),
                offset_min=480,
                window_id="W01",
                case={"case_no": f"C{i:05d}", "item_code": None, "item_name": "办件"},
            )
            outbox.enqueue(
                store,
                kind="case_event",
                key=f"event:{HALL}:e{i}",
                body=body,
                now_ms=now_ms(),
                limits=LIMITS,
            )


def pending(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM outbox WHERE kind != 'health'"))


def hub_ratings(hub: Hub, device: str) -> list[int]:
    return [
        r[0] for r in hub.query("SELECT seq FROM ratings WHERE device_id = ? ORDER BY seq", device)
    ]


def agent(tmp: Path, hub_section: dict[str, Any]) -> AgentConfig:
    return make_config(tmp / "agent", hub=hub_section)


# ---------------------------------------------------------------- pure parts


def test_answer_must_match_the_batch() -> None:
    rows = [Row(1, "device:A:1", "{}"), Row(2, "device:A:2", "{}")]
    ok = (
        b'{"results":[{"index":0,"key":"device:A:1","status":"accepted"},'
        b'{"index":1,"key":null,"status":"rejected","error":{"code":"rating.level"}}]}'
    )
    out = parse_answer(ok, rows)
    assert [o.status for o in out] == ["accepted", "rejected"]
    assert out[1].error == {"code": "rating.level"}
    for bad in (
        b"not json",
        b'{"results":[]}',
        b'{"results":[{"index":0,"key":"device:A:9","status":"accepted"},'
        b'{"index":1,"key":"device:A:2","status":"duplicate"}]}',  # names another item
        b'{"results":[{"index":1,"key":"device:A:1","status":"accepted"},'
        b'{"index":0,"key":"device:A:2","status":"accepted"}]}',
        b'{"results":[{"index":0,"key":"device:A:1","status":"stored"},'
        b'{"index":1,"key":"device:A:2","status":"accepted"}]}',
    ):
        with pytest.raises(BadAnswer):
            parse_answer(bad, rows)


_RESULT = st.fixed_dictionaries(
    {
        "index": st.one_of(st.integers(-1, 3), st.booleans(), st.text(max_size=2), st.none()),
        "key": st.one_of(st.sampled_from(["device:A:1", "device:A:2", "device:B:1"]), st.none()),
        "status": st.one_of(
            st.sampled_from(["accepted", "duplicate", "rejected"]), st.text(max_size=8)
        ),
    },
    optional={"error": st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.integers()))},
)


@given(
    st.one_of(
        st.binary(max_size=64),
        st.lists(_RESULT, max_size=3).map(lambda r: json.dumps({"results": r}).encode()),
    )
)
def test_any_answer_either_fits_the_batch_or_is_refused(raw: bytes) -> None:
    """Whatever the hub (or something pretending to be it) answers, an item is settled only
    by a result at its own index that names its own key; anything else is BadAnswer."""
    rows = [Row(1, "device:A:1", "{}"), Row(2, "device:A:2", "{}")]
    try:
        outcomes = parse_answer(raw, rows)
    except BadAnswer:
        return
    results = json.loads(raw)["results"]
    assert len(outcomes) == len(rows) == len(results)
    for i, (row, o, r) in enumerate(zip(rows, outcomes, results, strict=True)):
        assert type(r["index"]) is int and r["index"] == i and o.status == r["status"]
        if o.status != "rejected":
            assert r["key"] == row.key


def test_retry_after_and_jitter() -> None:
    import random

    assert retry_after("7") == 7 and retry_after(None) == 5 and retry_after("soon") == 5
    assert retry_after("99999") == 3600 and retry_after("-3") == 0
    rng = random.Random(1)
    delays = [full_jitter(n, rng, 0.5, 60) for n in range(1, 40)]
    assert all(0 <= d <= 60 for d in delays)
    assert max(delays[:2]) <= 2.0  # early retries are quick
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not in step


def test_health_key_matches_the_hub() -> None:
    ms = 1_780_000_000_123
    assert health_key("EV-1", ms) == "health:EV-1:20260528T202640.123000Z"


# ---------------------------------------------------------------- against the real hub


@pytest.mark.timeout(120)
def test_batches_arrive_exactly_once(tmp_path: Path) -> None:
    with Hub(tmp_path) as hub:
        cfg = agent(tmp_path, hub.hub_config(batch=200, health_s=1))
        with AgentThread(cfg) as a:
            a.db(
                registry.add_device,
                device_id="EV-S1",
                key=KEY,
                kind=M.KIND_EVALUATOR,
                now_ms=now_ms(),
            )
            a.db(queue_ratings, "EV-S1", range(1, 1051))
            a.db(queue_events, 30)
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            wait_for(lambda: hub.query("SELECT count(*) FROM device_health")[0][0] >= 1)
            health = a.http("GET", "/healthz").json()["hub_sync"]
            text = a.http("GET", "/metrics").text
            counters = a.db(lambda s: s.counters())
        assert hub_ratings(hub, "EV-S1") == list(range(1, 1051))
        assert hub.query("SELECT count(*) FROM case_events") == [(30,)]
        assert hub.query("SELECT online, kind FROM device_health LIMIT 1") == [(0, "evaluator")]
    # Nothing was sent twice in a clean run: every item was answered "accepted".
    assert counters["sync.accepted.rating"] == 1050
    assert counters["sync.accepted.case_event"] == 30
    assert "sync.duplicate.rating" not in counters
    assert health["state"] in ("ok", "idle") and health["last_success_ms"] > 0
    assert health["rejected"] == 0 and health["last_error"] is None
    assert 'hcp_agent_sync_items_total{kind="rating",result="accepted"} 1050' in text
    assert "hcp_agent_sync_up 1" in text


@pytest.mark.timeout(120)
def test_hub_down_backoff_then_resume(tmp_path: Path) -> None:
    hub = Hub(tmp_path, port=free_port())  # migrated, not serving yet
    cfg = agent(tmp_path, hub.hub_config(health_s=0))
    thread = AgentThread(cfg)
    assert thread.agent.sync is not None
    thread.agent.sync.backoff_cap_s = 0.4  # keep the outage short; the shape is the same
    with thread as a:
        a.db(queue_ratings, "EV-S2", range(1, 301))
        sync = thread.agent.sync
        wait_for(lambda: sync.requests["ConnectError"] >= 3)
        health = a.http("GET", "/healthz").json()["hub_sync"]
        assert health["state"] == "backoff" and health["last_error"] == "ConnectError"
        assert health["queued"] == 300 and health["last_success_ms"] is None
        assert "hcp_agent_sync_up 0" in a.http("GET", "/metrics").text
        with hub.start():
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            assert hub_ratings(hub, "EV-S2") == list(range(1, 301))
            assert a.http("GET", "/healthz").json()["hub_sync"]["state"] in ("ok", "idle")


@pytest.mark.timeout(120)
def test_429_and_503_retry_after_are_honoured(tmp_path: Path) -> None:
    with Hub(tmp_path) as hub, Throttle(hub.base, [(503, "2"), (429, "1")]) as proxy:
        cfg = agent(tmp_path, hub.hub_config(proxy.base, health_s=0, concurrency=1))
        with AgentThread(cfg) as a:
            a.db(queue_ratings, "EV-S3", range(1, 51))
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            sync = a.agent.sync
            assert sync is not None
            assert sync.requests["503"] == 1 and sync.requests["429"] == 1
        assert hub_ratings(hub, "EV-S3") == list(range(1, 51))
    (t0, s0), (t1, s1), (t2, s2) = proxy.log[:3]
    assert (s0, s1, s2) == (503, 429, 200)
    assert t1 - t0 >= 1.9, "resent before Retry-After: 2 had passed"
    assert t2 - t1 >= 0.9, "resent before Retry-After: 1 had passed"


@pytest.mark.timeout(120)
def test_413_splits_the_batch_and_a_lone_item_is_set_aside(tmp_path: Path) -> None:
    # The hub refuses the batch of 4 as too large, then the first half's first item alone.
    script: list[tuple[int, str | None]] = [(413, None), (413, None), (413, None)]
    with Hub(tmp_path) as hub, Throttle(hub.base, script) as proxy:
        cfg = agent(tmp_path, hub.hub_config(proxy.base, health_s=0, batch=4, concurrency=1))
        with AgentThread(cfg) as a:
            a.db(queue_ratings, "EV-S7", range(1, 5))
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            from edge_agent.sync import rejected_items

            held = a.db(rejected_items)
        stored = hub_ratings(hub, "EV-S7")
    # [1 2 3 4] 413 -> [1 2] 413 -> [1] 413: set aside; [2] 200; [3 4] 200
    assert [s for _, s in proxy.log] == [413, 413, 413, 200, 200]
    assert stored == [2, 3, 4]
    assert [(h["item"], h["code"]) for h in held] == [("device:EV-S7:1", "request.too_large")]


@pytest.mark.timeout(120)
def test_rejected_item_does_not_block_the_rest(tmp_path: Path) -> None:
    with Hub(tmp_path) as hub:
        cfg = agent(tmp_path, hub.hub_config(health_s=0, batch=100))
        with AgentThread(cfg) as a:
            a.db(queue_ratings, "EV-S4", range(1, 101))
            a.db(queue_ratings, "EV-S4", range(101, 102), level=9)
            a.db(queue_ratings, "EV-S4", range(102, 103), hall_id="H000000000")
            a.db(queue_ratings, "EV-S4", range(103, 201))
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            from edge_agent.sync import rejected_items

            held = a.db(rejected_items)
            health = a.http("GET", "/healthz").json()["hub_sync"]
            text = a.http("GET", "/metrics").text
        stored = hub_ratings(hub, "EV-S4")
    assert stored == [s for s in range(1, 201) if s not in (101, 102)]
    assert sorted((h["item"], h["code"]) for h in held) == [
        ("device:EV-S4:101", "rating.level"),
        ("device:EV-S4:102", "rating.hall_mismatch"),
    ]
    assert health["rejected"] == 2 and health["queued"] == 0
    assert 'hcp_agent_sync_items_total{kind="rating",result="rejected"} 2' in text
    assert "hcp_agent_sync_rejected_held 2" in text


def _idle(a: AgentThread) -> bool:
    return bool(a.http("GET", "/healthz").json()["hub_sync"]["state"] == "idle")


@pytest.mark.timeout(120)
def test_a_commit_wakes_the_sync_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge_agent.sync.POLL_S", 3600.0)  # only a wake-up can send these
    with Hub(tmp_path) as hub:
        cfg = agent(tmp_path, hub.hub_config(health_s=0))
        with AgentThread(cfg) as a:
            wait_for(lambda: _idle(a), timeout=30)  # the first look found nothing
            for seq in range(1, 4):  # one at a time, each after the last was answered
                a.db(queue_ratings, "EV-S8", range(seq, seq + 1))
                wait_for(lambda: a.db(pending) == 0)
        assert hub_ratings(hub, "EV-S8") == [1, 2, 3]


@pytest.mark.timeout(120)
def test_items_another_process_queued_are_found_by_the_slow_poll(tmp_path: Path) -> None:
    with Hub(tmp_path) as hub:
        cfg = agent(tmp_path, hub.hub_config(health_s=0))
        with AgentThread(cfg) as a:
            wait_for(lambda: _idle(a), timeout=30)
            other = Store(cfg.store_path)  # another connection: its commits wake nobody
            try:
                queue_ratings(other, "EV-S9", range(1, 6))
            finally:
                other.close()
            wait_for(lambda: a.db(pending) == 0)
        assert hub_ratings(hub, "EV-S9") == [1, 2, 3, 4, 5]


@pytest.mark.timeout(120)
def test_commits_while_the_senders_are_busy_leave_together(tmp_path: Path) -> None:
    hub = Hub(tmp_path, port=free_port())  # migrated, not serving yet: the sender waits
    cfg = agent(tmp_path, hub.hub_config(health_s=0, batch=100, concurrency=1))
    thread = AgentThread(cfg)
    sync = thread.agent.sync
    assert sync is not None
    sync.backoff_cap_s = 0.4
    with thread as a:
        for seq in range(1, 301):  # 300 commits of one rating, each waking the producer
            a.db(queue_ratings, "EV-S10", range(seq, seq + 1))
        wait_for(lambda: sync.requests["ConnectError"] >= 1)
        with hub.start():
            wait_for(lambda: a.db(pending) == 0, timeout=60)
            assert hub_ratings(hub, "EV-S10") == list(range(1, 301))
    # The sender's batch, the queued one and the producer's next hold what was committed
    # before they filled up; the rest waited in the outbox and left in full batches.
    assert sync.requests["200"] <= 3 + 3


@pytest.mark.timeout(120)
def test_bad_token_stops_sync_until_the_file_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Hub(tmp_path) as hub:
        good = hub.token
        hub.token_file.write_text("hcpt_000000000000_" + "A" * 43, encoding="utf-8")
        thread = AgentThread(agent(tmp_path, hub.hub_config(health_s=0)))
        assert thread.agent.sync is not None
        thread.agent.sync.auth_retry_s = 0.3
        with thread as a:
            a.db(queue_ratings, "EV-S6", range(1, 11))
            wait_for(
                lambda: a.http("GET", "/healthz").json()["hub_sync"]["state"] == "unauthorized"
            )
            health = a.http("GET", "/healthz").json()["hub_sync"]
            assert health["last_error"] == "auth.invalid_token" and health["queued"] == 10
            hub.token_file.write_text("not a token", encoding="utf-8")
            wait_for(lambda: a.http("GET", "/healthz").json()["hub_sync"]["state"] == "no_token")
            hub.token_file.write_text(good + "\n", encoding="utf-8")
            wait_for(lambda: a.db(pending) == 0)
        assert hub_ratings(hub, "EV-S6") == list(range(1, 11))
    # The token never appears in anything the agent logged, nor does the bad one.
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert "sync.token_malformed" in logged and "auth.invalid_token" in logged
    assert good not in logged and "A" * 43 not in logged and good[:18] not in logged


def _agent_toml(tmp: Path, hub: Hub, **hub_more: Any) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in hub_more.items())
    path = tmp / "agent.toml"
    path.write_text(
        f"""
[agent]
hall_id = "{HALL}"
data_dir = "data"
listen = "127.0.0.1:0"
log_level = "warning"

[hub]
url = "{hub.base}"
token_file = "{hub.token_file}"
health_s = 0
{extra}""",
        encoding="utf-8",
    )
    return path


@pytest.mark.timeout(180)
def test_restart_mid_sync_counts_nothing_twice(tmp_path: Path) -> None:
    n = 12_000
    with Hub(tmp_path) as hub:
        config = _agent_toml(tmp_path, hub, batch=250)
        store = Store(tmp_path / "data" / "agent.sqlite3")
        queue_ratings(store, "EV-S5", range(1, n + 1))
        store.close()
        log = (tmp_path / "agent.log").open("ab")
        kills = 0
        seen = 0
        for _ in range(4):  # killed while batches are in flight, each time further on
            proc = subprocess.Popen(
                [str(HCP), "agent", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            target = seen + 2000
            deadline = time.monotonic() + 60
            while (seen := hub.query("SELECT count(*) FROM ratings")[0][0]) < target:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError("sync made no progress")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        proc = subprocess.Popen(
            [str(HCP), "agent", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        c = Store(tmp_path / "data" / "agent.sqlite3")
        try:
            wait_for(lambda: pending(c) == 0, timeout=120, step=0.2)
            counters = c.counters()
        except BaseException:
            proc.kill()
            raise
        finally:
            c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        log.close()
        stored = hub.query("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM ratings")
        levels = hub.query("SELECT seq, level FROM ratings WHERE seq % 997 = 0 ORDER BY seq")
    assert stored == [(n, n, 1, n)]
    assert levels == [(s, 1 + s % 5) for s in range(997, n + 1, 997)]
    accepted = counters.get("sync.accepted.rating", 0)
    duplicate = counters.get("sync.duplicate.rating", 0)
    # A batch the hub stored just before a kill is resent and answered duplicate: the hub
    # counted it once; the agent never settled more than it sent.
    assert accepted <= n <= accepted + duplicate
    assert kills == 4


def test_health_samples_never_push_ratings_out(tmp_path: Path) -> None:
    from edge_agent.sync import enqueue_health

    cfg = make_config(tmp_path, outbox={"max_rows": 100, "overflow": "drop_oldest"})
    store = Store(cfg.store_path)
    try:
        registry.add_device(store, device_id="EV-H1", key=KEY, kind=M.KIND_EVALUATOR, now_ms=1)
        limits = cfg.outbox
        with store.tx():
            for seq in range(1, 100):
                outbox.enqueue(
                    store,
                    kind="rating",
                    key=f"device:EV-H1:{seq}",
                    body=rating("EV-H1", seq),
                    now_ms=1,
                    limits=limits,
                )
        assert enqueue_health(store, cfg, now_ms=now_ms()) == 1  # the 100th row fits
        assert enqueue_health(store, cfg, now_ms=now_ms() + 1000) == 0  # full: skipped
        kinds = [r["kind"] for r in outbox.items(store, 200)]
        assert kinds.count("rating") == 99 and kinds.count("health") == 1
        assert store.counters()["sync.health_skipped"] == 1
    finally:
        store.close()
