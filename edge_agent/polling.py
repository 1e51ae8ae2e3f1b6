"""Extension point: case systems that cannot call the agent, only be polled.

Some queue-calling and acceptance systems cannot send HTTP requests; they can only be read
(a database view, a vendor API, an export file). For them, write a ``PolledSource``: a
class whose ``fetch(cursor)`` returns the events that happened after ``cursor`` and the new
cursor. ``run_poller`` drives it every ``interval_s`` and feeds each event to the *same*
HallService methods the HTTP API calls, so the rules, errors and device updates are
identical.

Rules for a source:
- Give every event an ``event_id`` derived from the source's own record (e.g.
  ``"qms-123456-finish"``). Re-reading a record after a restart is then harmless: the agent
  answers 409 ``event.duplicate`` and the poller moves on.
- Return events in the order they happened. An event the agent refuses (unknown window,
  illegal transition) is logged and skipped; it does not stop the poll.
- Keep the cursor in the source system's terms (a row id, a timestamp). The poller keeps it
  in the store (``meta``: ``poll_cursor.<name>``), so a restart resumes where it stopped.

The source runs in a worker thread (``fetch`` may block on a database driver), never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.errors import ApiError
from edge_agent.logs import log_event
from edge_agent.service import HallService

log = logging.getLogger("hcp.agent.poll")

EVENTS = ("sign_in", "sign_out", "pause", "resume", "open_case", "finish_case", "cancel_case")
# Optional fields a source may leave out (the HTTP API's defaults).
DEFAULTS: dict[str, dict[str, Any]] = {
    "sign_in": {"title": None},
    "pause": {"reason": None},
    "open_case": {
        "staff_id": None,
        "item_code": None,
        "item_name": None,
        "dept_code": None,
        "applicant_type": "person",
        "applicant_name": None,
        "applicant_phone": None,
    },
}


@dataclass(frozen=True)
class PolledEvent:
    """One event: ``kind`` is a HallService method name, ``fields`` its keyword arguments
    (as the HTTP API's bodies, plus ``window_id`` for window events)."""

    kind: str
    event_id: str
    fields: dict[str, Any] = field(default_factory=dict)


class PolledSource(Protocol):
    name: str

    def fetch(self, cursor: str | None) -> tuple[list[PolledEvent], str | None]: ...


async def poll_once(service: HallService, source: PolledSource) -> tuple[int, int]:
    """One poll: (events applied, events refused). The cursor advances past both."""
    key = f"poll_cursor.{source.name}"
    cursor = await service.db.run(lambda s: s.meta(key))
    events, new_cursor = await asyncio.to_thread(source.fetch, cursor)
    applied = refused = 0
    for event in events:
        if event.kind not in EVENTS:
            raise ValueError(f"{source.name}: unknown event kind {event.kind!r}")
        method = getattr(service, event.kind)
        try:
            fields = {**DEFAULTS.get(event.kind, {}), **event.fields}
            await method(event_id=event.event_id, **fields)
            applied += 1
        except ApiError as e:
            refused += 1
            level = logging.DEBUG if e.code == "event.duplicate" else logging.WARNING
            log_event(log, "poll.refused", level, source=source.name, code=e.code)
    if new_cursor is not None and new_cursor != cursor:
        await service.db.run(lambda s: s.set_meta(key, new_cursor))
    return applied, refused


async def run_poller(service: HallService, source: PolledSource, interval_s: float) -> None:
    """Poll forever; a failing fetch is logged and retried at the next interval."""
    while True:
        try:
            await poll_once(service, source)
        except Exception as e:
            log_event(log, "poll.failed", logging.ERROR, source=source.name, error=type(e).__name__)
        await asyncio.sleep(interval_s)
