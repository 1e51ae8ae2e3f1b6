"""Prometheus text exposition of the agent's state (GET /metrics).

Strategy: no client library and no global registry: a scrape reads the store's persisted
counters (edge_agent.store ``counters``: ratings by verdict, outbox overflow, invites closed,
gaps) and the links' in-memory state, and renders text format 0.0.4 directly. Persisted
counters survive restarts, which Prometheus handles either way (``rate()`` treats a reset as
a restart); in-memory ones (API refusals) start at zero with the process.

Metric names (all prefixed ``hcp_agent_``) are documented in docs/hall-admin.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def metric(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[dict[str, str], float | int]],
    ) -> None:
        full = f"hcp_agent_{name}"
        if full not in self._declared:
            self.lines.append(f"# HELP {full} {help_text}")
            self.lines.append(f"# TYPE {full} {kind}")
            self._declared.add(full)
        for labels, value in samples:
            self.lines.append(f"{full}{_labels(labels)} {value}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    *,
    counters: dict[str, int],
    outbox_rows: int,
    ratings_total: int,
    links: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    api_refused: dict[str, int],
    api_accepted: dict[str, int],
    limits: dict[str, int],
    started_ms: int,
) -> str:
    e = Exposition()
    online = sum(1 for d in devices if d["online"])
    e.metric("devices", "gauge", "Registered devices.", [({}, len(devices))])
    e.metric("devices_online", "gauge", "Devices whose link is up.", [({}, online)])
    e.metric(
        "devices_quarantined",
        "gauge",
        "Devices held back (no key or blocked by an operator).",
        [({}, sum(1 for d in devices if d["quarantine"]))],
    )
    e.metric(
        "device_online",
        "gauge",
        "1 if the device's link is up.",
        [({"device": d["device_id"]}, int(d["online"])) for d in devices],
    )
    e.metric("ratings_stored", "gauge", "Presses held in the store.", [({}, ratings_total)])
    e.metric(
        "ratings_total",
        "counter",
        "Presses stored, by the binding engine's verdict.",
        [
            ({"binding": k.split(".", 1)[1]}, v)
            for k, v in sorted(counters.items())
            if k.startswith("ratings.")
        ],
    )
    e.metric(
        "ratings_duplicate_total",
        "counter",
        "Presses received again after they were stored (deduplicated on device and seq).",
        [({}, counters.get("ratings_duplicate", 0))],
    )
    e.metric(
        "ratings_lost_total",
        "counter",
        "Presses a device reported it no longer holds (outbox overflow on the device).",
        [({}, counters.get("ratings_lost_in_gaps", 0))],
    )
    refused: list[tuple[dict[str, str], int]] = []
    for link in links:
        for code, n in sorted(link["refused"].items()):
            refused.append(({"device": link["device_id"], "code": code}, n))
    e.metric(
        "frames_refused_total",
        "counter",
        "Frames and packets refused on device links, by error code (docs/protocol.md).",
        refused,
    )
    e.metric(
        "link_attachments_total",
        "counter",
        "Times a device's port was opened since the agent started.",
        [({"device": link["device_id"]}, link["attachments"]) for link in links],
    )
    e.metric(
        "rating_commit_failures_total",
        "counter",
        "Rating batches whose store commit failed (nothing was acknowledged).",
        [({"device": link["device_id"]}, link["commit_failures"]) for link in links],
    )
    e.metric("outbox_depth", "gauge", "Items waiting to be sent to the hub.", [({}, outbox_rows)])
    e.metric(
        "outbox_limit_rows", "gauge", "The outbox's max_rows limit.", [({}, limits["max_rows"])]
    )
    e.metric(
        "outbox_limit_age_seconds",
        "gauge",
        "The outbox's max age limit.",
        [({}, limits["max_age_s"])],
    )
    e.metric(
        "outbox_overflow_total",
        "counter",
        "Outbox limit actions: blocked (not accepted), dropped_oldest, dropped_newest, expired.",
        [
            ({"action": "blocked"}, counters.get("outbox_blocked", 0)),
            ({"action": "dropped_oldest"}, counters.get("outbox_dropped_oldest", 0)),
            ({"action": "dropped_newest"}, counters.get("outbox_dropped_newest", 0)),
            ({"action": "expired"}, counters.get("outbox_expired", 0)),
        ],
    )
    e.metric(
        "invites_closed_total",
        "counter",
        "Invites closed, by reason (rated, expired, superseded, cancelled).",
        [
            ({"reason": k.split(".", 1)[1]}, v)
            for k, v in sorted(counters.items())
            if k.startswith("invites_closed.")
        ],
    )
    e.metric(
        "api_requests_total",
        "counter",
        "Case-API events accepted, by operation.",
        [({"op": k}, v) for k, v in sorted(api_accepted.items())],
    )
    e.metric(
        "api_refused_total",
        "counter",
        "Case-API events refused, by error code.",
        [({"code": k}, v) for k, v in sorted(api_refused.items())],
    )
    e.metric(
        "qr_too_long_total",
        "counter",
        "QR codes that did not fit QR version 10 (sent without a QR).",
        [({}, counters.get("qr_too_long", 0))],
    )
    e.metric("start_time_seconds", "gauge", "When the agent started.", [({}, started_ms / 1000)])
    return e.text()
