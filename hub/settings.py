"""Settings of one hub process: the database, the ingest limits and the back-pressure knobs.

One frozen dataclass, built by ``hcp hub serve`` from its options (or by tests directly) and
handed to ``hub.app.create_app``; nothing reads the environment behind the caller's back.
Back-pressure is per process (each process protects itself); correctness never depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.ingest import models

# Requests a process works on at once before it answers 503: a little above the database
# pool (hub.db.engine.PG_POOL_SIZE), so a burst queues briefly for a connection instead of
# piling up threads that would all time out.
DEFAULT_MAX_INFLIGHT = 10
# Seconds an agent is told to wait after 429/503: long enough for a batch or two to drain,
# short enough that a hall's backlog resumes promptly. Agents add their own jitter.
DEFAULT_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class HubSettings:
    database_url: str
    max_body_bytes: int = models.MAX_BODY_BYTES
    max_decoded_bytes: int = models.MAX_DECODED_BYTES
    max_items: int = models.MAX_ITEMS
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    # Items per second one hall may send to this process; 0 = unlimited. The burst is how
    # many it may send at once after a quiet spell (at least one full batch).
    hall_rate_per_s: float = 0.0
    hall_burst: int = models.MAX_ITEMS * 4
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
