"""Replay window: accept new, refuse seen, old and stale-session counters."""

from check import raises

from protocol.errors import ReplayError
from protocol.replay import WINDOW, ReplayWindow


def _take(w, session, ctr):
    w.check(session, ctr)
    w.accept(session, ctr)


def test_in_order_and_late_within_window():
    w = ReplayWindow()
    for c in (1, 2, 5, 4, 3):
        _take(w, 1, c)
    raises(ReplayError, "replay.seen", w.check, 1, 4)
    _take(w, 1, 5 + WINDOW - 1)
    raises(ReplayError, "replay.seen", w.check, 1, 5)  # oldest slot still in the window
    _take(w, 1, 5 + WINDOW)
    raises(ReplayError, "replay.old", w.check, 1, 5)  # slid out of the window


def test_stale_session_and_new_session():
    w = ReplayWindow()
    _take(w, 3, 10)
    raises(ReplayError, "replay.session", w.check, 2, 99)
    _take(w, 4, 1)  # the peer restarted
    raises(ReplayError, "replay.session", w.check, 3, 11)
    assert w.min_session == 4


def test_min_session_survives_restart():
    w = ReplayWindow(min_session=7)
    raises(ReplayError, "replay.session", w.check, 6, 1)
    _take(w, 7, 1)


def test_floor_marks_everything_before_handshake_seen():
    w = ReplayWindow()
    w.floor(2, 100)
    for c in (100, 99, 90, 71):
        raises(ReplayError, "replay.seen", w.check, 2, c)
    raises(ReplayError, "replay.old", w.check, 2, 100 - WINDOW)
    _take(w, 2, 101)


def test_big_jump_resets_bitmap():
    w = ReplayWindow()
    _take(w, 1, 1)
    _take(w, 1, 1000)
    raises(ReplayError, "replay.old", w.check, 1, 1)
    _take(w, 1, 999)
    raises(ReplayError, "replay.seen", w.check, 1, 999)


def test_check_does_not_change_state():
    w = ReplayWindow()
    _take(w, 1, 5)
    w.check(1, 6)
    w.check(1, 6)
    assert w.top == 5
