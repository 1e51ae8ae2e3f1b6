"""The extension point for case systems that can only be polled (edge_agent.polling)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.polling import PolledEvent, poll_once
from tests.agent.api_helpers import make_api


class QueueExport:
    """A fake queue system read by row id, as a database view would be."""

    name = "qms"

    def __init__(self) -> None:
        signed_in = {"window_id": "W01", "staff_id": "S1", "name": "王小明", "number": "7"}
        self.rows = [
            PolledEvent("sign_in", "qms-1", signed_in),
            PolledEvent("open_case", "qms-2", {"case_no": "C-1", "window_id": "W01"}),
            PolledEvent("finish_case", "qms-3", {"case_no": "C-9"}),  # unknown: refused, skipped
            PolledEvent("finish_case", "qms-4", {"case_no": "C-1"}),
        ]
        self.reads: list[str | None] = []

    def fetch(self, cursor: str | None) -> tuple[list[PolledEvent], str | None]:
        self.reads.append(cursor)
        start = int(cursor or 0)
        return self.rows[start:], str(len(self.rows))


def test_polled_events_use_the_same_rules(tmp_path: Path) -> None:
    with make_api(tmp_path) as api:
        source = QueueExport()
        assert api.loop.run_until_complete(poll_once(api.service, source)) == (3, 1)
        case = api.get("/api/v1/cases", params={"case_no": "C-1"}).json()
        assert case["state"] == "finished" and case["staff_id"] == "S1"
        # The cursor is kept in the store: the next poll reads only what is new.
        assert api.loop.run_until_complete(poll_once(api.service, source)) == (0, 0)
        assert source.reads == [None, "4"]
        # A source that re-reads old rows after losing its place is refused, not replayed.
        source.rows.append(PolledEvent("cancel_case", "qms-4", {"case_no": "C-1"}))
        assert api.loop.run_until_complete(poll_once(api.service, source)) == (0, 1)
        assert api.service.api_refused["event.duplicate"] == 1
