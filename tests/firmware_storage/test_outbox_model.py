"""The outbox's rules under random operation sequences (hypothesis), on CPython.

firmware/storage/outbox.py is plain Python over open/os, so CPython runs it on a host
directory. The filesystem is not LittleFS here (the MicroPython tests cover that); what
this checks is the bookkeeping, for every small shape (2-4 segments of 1-4 records, so
rollovers, drops and deletions come every few steps) and any interleaving of add, ack,
reads and reboots (reopen, possibly with fewer segments):

- add() returns next_seq(), and a seq is never returned twice;
- records(oldest, ...) is exactly oldest..next-1, each with the fields it was added with;
- every returned seq is held, acknowledged (at or below the highest ack given), or
  dropped and counted: dropped() is at least the number of such ratings, never shrinks,
  and depth() never exceeds the capacity.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from firmware.storage.outbox import Outbox

ratings = st.tuples(
    st.none() | st.integers(0, 2**32 - 1),  # invite
    st.integers(1, 5),  # level
    st.lists(st.integers(0, 65535), max_size=4),  # reasons
    st.none() | st.integers(0, 2**32 - 1),  # time
    st.integers(0, 2**32 - 1),  # ticks
    st.integers(0, 2**32 - 1),  # boot
    st.integers(0, 63),  # flags
)


# Short runs: with these shapes a rollover, drop or deletion comes every few steps.
@settings(stateful_step_count=30)
class OutboxMachine(RuleBasedStateMachine):
    @initialize(segments=st.integers(2, 4), records=st.integers(1, 4))
    def open(self, segments: int, records: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="outbox-model-")
        self.segments, self.records = segments, records
        self.ob = Outbox(self.dir + "/outbox", segments, records)
        self.added: dict[int, tuple[Any, ...]] = {}
        self.acked = 0
        self.dropped = 0

    def teardown(self) -> None:
        if hasattr(self, "ob"):
            self.ob.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(r=ratings)
    def add(self, r: tuple[Any, ...]) -> None:
        expected = self.ob.next_seq()
        seq = self.ob.add(*r)
        assert seq == expected
        assert seq not in self.added, f"seq {seq} given out twice"
        self.added[seq] = (seq, r[0], r[1], r[2], r[3], r[4], r[5], r[6])

    @rule(back=st.integers(0, 6))
    def ack(self, back: int) -> None:
        seq = max(0, self.ob.next_seq() - 1 - back)
        self.ob.ack(seq)
        self.acked = max(self.acked, seq)

    @rule(ahead=st.integers(1, 5))
    def ack_beyond_next(self, ahead: int) -> None:
        # An agent that holds seqs this outbox never issued: they must never be issued.
        seq = self.ob.next_seq() - 1 + ahead
        self.ob.ack(seq)
        self.acked = max(self.acked, seq)
        assert self.ob.next_seq() > seq

    @rule(fewer=st.booleans())
    def reboot(self, fewer: bool) -> None:
        self.ob.close()
        if fewer and self.segments > 2:
            self.segments -= 1  # a smaller configuration: the overflow policy applies
        self.ob = Outbox(self.dir + "/outbox", self.segments, self.records)

    @rule(start=st.integers(0, 3), limit=st.integers(0, 5))
    def read_window(self, start: int, limit: int) -> None:
        seq = self.ob.oldest() + start
        got = self.ob.records(seq, limit)
        assert got == [self.added[s] for s in range(seq, min(seq + limit, self.ob.next_seq()))]

    @invariant()
    def held_is_exact(self) -> None:
        ob = self.ob
        oldest, nxt = ob.oldest(), ob.next_seq()
        assert all(s < nxt for s in self.added), "a returned seq is not below next_seq()"
        assert ob.depth() == nxt - oldest <= ob.capacity()
        assert ob.records(oldest, 10_000) == [self.added[s] for s in range(oldest, nxt)]
        gone = [s for s in self.added if s > self.acked and not oldest <= s < nxt]
        assert ob.dropped() >= len(gone), (gone, ob.dropped())
        assert ob.dropped() >= self.dropped
        self.dropped = ob.dropped()
        assert ob.flash_errors == 0


TestOutboxModel = OutboxMachine.TestCase
