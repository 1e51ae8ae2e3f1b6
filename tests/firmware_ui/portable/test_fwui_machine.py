# ruff: noqa: UP031  (%-formatting: f-strings are a MicroPython build option)
"""The UI state machine: every row of the table, illegal events, and the rating rules.

The table test is a list of (arranger, input, expected event, expected state, expected
screen, expected records); every (state, event) row of firmware/ui/machine.py must be taken
by at least one case. Runs on CPython and on the MicroPython unix port.
"""

import uifixtures as F

from firmware.ui import machine as M
from protocol.messages import (
    FLAG_OFFLINE,
    FLAG_PAUSED,
    FLAG_REASON_SKIPPED,
    FLAG_REASON_TIMEOUT,
    FLAG_REPEAT,
    FLAG_UNSOLICITED,
    KIND_QR,
)

# The UI table (22 KB on the 64-bit port), the message catalogue it uses (22 KB) and this
# table of cases with its fixtures share one heap here; the device holds only the first two.
MICROPYTHON_HEAP = "128k"

I_, V, R, T, N, S = M.IDLE, M.INVITED, M.REASON, M.THANKS, M.NOTICE, M.SELFTEST_MODE

# Inputs: ("press", b), ("after", ms), ("msg", factory, args...), ("up",), ("down",)
P0, P1, P2, P3, P4 = ("press", 0), ("press", 1), ("press", 2), ("press", 3), ("press", 4)


def _msg(factory, *args):
    return ("msg", factory) + args  # noqa: RUF005 (no starred tuple displays here)


CASES = (
    # arranger, input, event, state, screen, records (level, reasons, flags, invite)
    (F.idle_answered, P1, "press_repeat", T, M.SCR_THANKS, [(2, [], FLAG_REPEAT, 7)]),
    (F.idle, P0, "press_unsolicited", N, M.SCR_NOTICE, [(1, [], FLAG_UNSOLICITED, None)]),
    (F.idle, _msg(F.invite, 7), "invite_new", V, M.SCR_INVITE, []),
    (F.idle, _msg(F.display), "display", I_, M.SCR_MESSAGE, []),
    (F.idle_message, ("after", 5000), "message_done", I_, M.SCR_IDLE, []),
    (F.idle, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, []),
    (F.idle, _msg(F.config), "config", I_, M.SCR_IDLE, []),
    (F.idle, _msg(F.pause), "pause", I_, M.SCR_PAUSED, []),
    (F.idle_paused, _msg(F.resume), "resume", I_, M.SCR_IDLE, []),
    (F.idle_offline, ("up",), "link_up", I_, M.SCR_IDLE, []),
    (F.idle, ("down",), "link_down", I_, M.SCR_IDLE, []),
    (F.idle_answered, _msg(F.invite, 7), "invite_known", I_, M.SCR_IDLE, []),
    (F.idle_answered, _msg(F.cancel, 7), "cancel", I_, M.SCR_IDLE, []),
    # invite
    (F.invited, P0, "press_first", T, M.SCR_THANKS, [(1, [], 0, 7)]),
    (F.invited, P4, "press_bad", R, M.SCR_REASON, []),
    (F.invited, ("after", 1000), "second", V, M.SCR_INVITE, []),
    (F.invited, ("after", 10000), "invite_timeout", I_, M.SCR_IDLE, []),
    (F.invited, _msg(F.cancel, 7), "cancel_current", I_, M.SCR_IDLE, []),
    (F.invited, _msg(F.cancel, 99), "cancel", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.invite, 8), "invite_new", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.invite, 7), "invite_known", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.display), "display", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, []),
    (F.invited, _msg(F.config), "config", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.pause), "pause", V, M.SCR_INVITE, []),
    (F.invited, _msg(F.resume), "resume", V, M.SCR_INVITE, []),
    (F.invited, ("up",), "link_up", V, M.SCR_INVITE, []),
    (F.invited, ("down",), "link_down", V, M.SCR_INVITE, []),
    # reason (level 5: reasons 501 502 503 504 on buttons 0-3, skip on 4)
    (F.reason5, P1, "press_reason", T, M.SCR_THANKS, [(5, [502], 0, 7)]),
    (F.reason5, P4, "press_skip", T, M.SCR_THANKS, [(5, [], FLAG_REASON_SKIPPED, 7)]),
    (F.reason4, P3, "press_blank", R, M.SCR_REASON, []),
    (F.reason5, ("after", 1000), "second", R, M.SCR_REASON, []),
    (F.reason5, ("after", 30000), "reason_timeout", T, M.SCR_THANKS, [(5, [], 8, 7)]),
    (F.reason5, _msg(F.invite, 8), "invite_new", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.invite, 7), "invite_known", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.cancel, 7), "cancel", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.display), "display", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, [(5, [], 8, 7)]),
    (F.reason5, _msg(F.config), "config", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.pause), "pause", R, M.SCR_REASON, []),
    (F.reason5, _msg(F.resume), "resume", R, M.SCR_REASON, []),
    (F.reason5, ("up",), "link_up", R, M.SCR_REASON, []),
    (F.reason5, ("down",), "link_down", R, M.SCR_REASON, []),
    # thanks
    (F.thanks, P2, "press_repeat", T, M.SCR_THANKS, [(3, [], FLAG_REPEAT, 7)]),
    (F.thanks_cancelled, P0, "press_unsolicited", N, M.SCR_NOTICE, [(1, [], 2, None)]),
    (F.thanks, ("after", 3000), "thanks_done", I_, M.SCR_IDLE, []),
    (F.thanks_deferred, ("after", 3000), "thanks_done_invite", V, M.SCR_INVITE, []),
    (F.thanks, _msg(F.invite, 8), "invite_new", V, M.SCR_INVITE, []),
    (F.thanks, _msg(F.invite, 7), "invite_known", T, M.SCR_THANKS, []),
    (F.thanks, _msg(F.cancel, 7), "cancel", T, M.SCR_THANKS, []),
    (F.thanks, _msg(F.display), "display", T, M.SCR_THANKS, []),
    (F.thanks, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, []),
    (F.thanks, _msg(F.config), "config", T, M.SCR_THANKS, []),
    (F.thanks, _msg(F.pause), "pause", T, M.SCR_THANKS, []),
    (F.thanks, _msg(F.resume), "resume", T, M.SCR_THANKS, []),
    (F.thanks, ("up",), "link_up", T, M.SCR_THANKS, []),
    (F.thanks, ("down",), "link_down", T, M.SCR_THANKS, []),
    # notice
    (F.notice, P1, "press_unsolicited", N, M.SCR_NOTICE, [(2, [], FLAG_UNSOLICITED, None)]),
    (F.notice, ("after", 3000), "notice_done", I_, M.SCR_IDLE, []),
    (F.notice, _msg(F.invite, 7), "invite_new", V, M.SCR_INVITE, []),
    (F.notice, _msg(F.display), "display", N, M.SCR_NOTICE, []),
    (F.notice, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, []),
    (F.notice, _msg(F.config), "config", N, M.SCR_NOTICE, []),
    (F.notice, _msg(F.pause), "pause", N, M.SCR_NOTICE, []),
    (F.notice, _msg(F.resume), "resume", N, M.SCR_NOTICE, []),
    (F.notice, ("up",), "link_up", N, M.SCR_NOTICE, []),
    (F.notice, ("down",), "link_down", N, M.SCR_NOTICE, []),
    (F.notice, _msg(F.cancel, 7), "cancel", N, M.SCR_NOTICE, []),
    (F.notice_seen7, _msg(F.invite, 7), "invite_known", N, M.SCR_NOTICE, []),
    # selftest
    (F.pattern, P0, "press_ignored", S, M.SCR_PATTERN, []),
    (F.buttons_test, P2, "press_test", S, M.SCR_BUTTONS, []),
    (F.buttons_four, P4, "press_test_last", I_, M.SCR_IDLE, []),
    (F.pattern, ("after", M.PATTERN_MS), "selftest_next", S, M.SCR_BUTTONS, []),
    (F.buttons_test, ("after", M.BUTTON_TEST_MS), "selftest_done", I_, M.SCR_IDLE, []),
    (F.pattern, _msg(F.invite, 7), "invite_new", V, M.SCR_INVITE, []),
    (F.buttons_test, _msg(F.display), "display", S, M.SCR_BUTTONS, []),
    (F.buttons_test, _msg(F.selftest), "selftest", S, M.SCR_PATTERN, []),
    (F.pattern, _msg(F.config), "config", S, M.SCR_PATTERN, []),
    (F.pattern, _msg(F.pause), "pause", S, M.SCR_PATTERN, []),
    (F.pattern, _msg(F.resume), "resume", S, M.SCR_PATTERN, []),
    (F.pattern, ("up",), "link_up", S, M.SCR_PATTERN, []),
    (F.pattern, ("down",), "link_down", S, M.SCR_PATTERN, []),
    (F.pattern_seen7, _msg(F.invite, 7), "invite_known", S, M.SCR_PATTERN, []),
    (F.pattern, _msg(F.cancel, 7), "cancel", S, M.SCR_PATTERN, []),
)


def _apply(r, step):
    kind = step[0]
    if kind == "press":
        r.press(step[1])
    elif kind == "after":
        r.after(step[1])
    elif kind == "msg":
        r.msg(step[1](*step[2:]))
    elif kind == "up":
        r.ui.link_up(r.t)
    else:
        r.ui.link_down(r.t)


def _name(arrange):
    return getattr(arrange, "__name__", "?")


def test_every_row_as_a_table():
    taken = {}
    failures = []
    for case in CASES:
        arrange, step, event, state, screen, recs = case
        r = arrange()
        before = r.ui.state
        _apply(r, step)
        taken[(before, r.ui.last_event)] = True
        got = (r.ui.last_event, r.ui.state, r.ui.screen, r.recs())
        want = (event, state, screen, recs)
        if got != want:
            failures.append("%s %r: got %r, want %r" % (_name(arrange), step, got, want))
    assert not failures, "\n".join(failures)
    missing = []
    for row in M.rows():
        if (row[0], row[1]) not in taken:
            missing.append(row)
    assert not missing, "table rows without a case: %r" % (missing,)


def test_illegal_event_names_state_and_event():
    events = {}
    rows = {}
    for row in M.rows():
        events[row[1]] = True
        rows[(row[0], row[1])] = True
    n = 0
    for state in M.STATES:
        for event in events:
            if (state, event) in rows:
                continue
            r = F.idle()
            r.ui.state = state
            try:
                r.ui._fire(event, r.t)
            except M.UIError as e:
                assert e.code == "ui.illegal"
                assert state in str(e) and event in str(e), str(e)
                n += 1
            else:
                raise AssertionError("%s accepted %s" % (state, event))
    assert n > 50


def test_bad_button_and_bad_config_are_errors():
    r = F.idle()
    for b in (-1, 5):
        try:
            r.press(b)
        except M.UIError as e:
            assert e.code == "ui.button"
        else:
            raise AssertionError("button %d accepted" % b)
    for buttons in ((1, 1, 2), (0, 1), (1, 2, 3, 4, 5, 6)):
        try:
            M.UI(None, None, buttons=buttons)
        except M.UIError as e:
            assert e.code == "ui.config"
        else:
            raise AssertionError("buttons %r accepted" % (buttons,))


def test_record_happens_before_thanks_is_rendered():
    r = F.invited()
    r.press(1)
    rec = r.records[0]
    assert rec[5] == M.SCR_INVITE  # the screen at record time: thanks not shown yet
    assert r.renders == [M.SCR_THANKS]
    assert rec[4] == F.T0  # ticks of the press


def test_failed_record_never_thanks_and_keeps_the_invite_open():
    r = F.invited()
    r.fail = True
    try:
        r.press(0)
    except OSError:
        pass
    else:
        raise AssertionError("record failure swallowed")
    assert r.ui.state == M.INVITED and r.renders == []
    r.fail = False
    r.press(1)  # the rater presses again: this is the first press that counts
    assert r.recs() == [(2, [], 0, 7)] and r.ui.state == M.THANKS


def test_bad_rating_keeps_the_press_time_and_never_shows_the_level():
    r = F.reason5()
    r.after(2000)
    r.press(0)
    level, reasons, flags, inv, ticks, _ = r.records[0]
    assert (level, reasons, flags, inv) == (5, [501], 0, 7)
    assert ticks == F.T0 + 1000  # the level press, not the reason press
    for attr in ("screen", "reason_slots"):
        assert getattr(r.ui, attr) != 5 or attr == "reason_slots"
    # Screens read only these fields; none of them holds the level after the rating.
    assert r.ui.screen == M.SCR_THANKS and r.ui.invite is None


def test_reason_screen_offers_the_levels_reasons_in_catalogue_order():
    r = F.reason5()
    assert r.ui.reason_slots == 4 and r.ui.skip_button == 4
    assert r.ui.reason_codes == [501, 502, 503, 504]
    assert r.ui.reason_labels[0] == ("服务态度差", "Attitude")
    r = F.reason4()
    assert r.ui.reason_slots == 3 and r.ui.reason_codes[:3] == [501, 502, 503]


def test_bad_level_without_catalogue_reasons_is_recorded_directly():
    r = F.idle()
    r.msg(F.config(reasons=[]))
    r.msg(F.invite(7))
    r.press(4)
    assert r.recs() == [(5, [], 0, 7)] and r.ui.state == M.THANKS


def test_reason_required_hides_skip():
    r = F.idle()
    pol = dict(F.POLICY)
    pol["reason_required"] = True
    r.msg(F.config(policy=pol))
    r.msg(F.invite(7))
    r.press(4)
    assert r.ui.skip_button == -1 and r.ui.reason_slots == 4
    r.press(4)  # no fifth reason: a blank button, nothing recorded
    assert r.ui.last_event == "press_blank" and r.records == []
    r.after(30000)
    assert r.recs() == [(5, [], FLAG_REASON_TIMEOUT, 7)]


def test_only_first_press_counts_repeats_until_the_invite_deadline():
    r = F.invited()
    r.press(0)
    r.press(0)
    r.after(3000)  # back to idle
    r.press(4)
    r.after(6999)  # T0 + 10 s - 1 ms: still the invite's window
    r.press(2)
    r.after(3000)
    r.press(2)  # the invite's window is over
    assert r.recs() == [
        (1, [], 0, 7),
        (1, [], FLAG_REPEAT, 7),
        (5, [], FLAG_REPEAT, 7),
        (3, [], FLAG_REPEAT, 7),
        (3, [], FLAG_UNSOLICITED, None),
    ]


def test_paused_and_offline_flags():
    r = F.idle_offline()
    r.msg(F.pause())
    r.press(0)
    assert r.recs() == [(1, [], FLAG_UNSOLICITED | FLAG_PAUSED | FLAG_OFFLINE, None)]
    assert r.ui.code() == M.STATE_CODES[M.NOTICE] | M.UI_PAUSED | M.UI_OFFLINE
    r.clear()
    r.msg(F.invite(7))
    r.ui.link_up(r.t)
    r.press(3)
    r.press(0)
    assert r.recs() == [(4, [501], FLAG_PAUSED, 7)]
    r.msg(F.resume())
    assert r.ui.code() == M.STATE_CODES[M.THANKS]


def test_reversed_buttons():
    r = F.Rig(buttons=(5, 4, 3, 2, 1))
    r.msg(F.config())
    r.ui.link_up(r.t)
    r.msg(F.invite(7))
    r.press(0)  # leftmost is 非常不满意 in this hall
    assert r.ui.state == M.REASON
    r.press(4)  # the reason screen's skip is still the rightmost button
    assert r.recs() == [(5, [], FLAG_REASON_SKIPPED, 7)]


def test_invite_timeout_from_message_or_policy():
    r = F.idle()
    r.msg(F.invite(7, timeout_s=20))
    assert r.ui.remaining_s == 20
    r.after(19999)
    assert r.ui.state == M.INVITED and r.ui.remaining_s == 1
    r.after(1)
    assert r.ui.state == M.IDLE and r.ui.invite is None


def test_countdown_renders_once_per_second():
    r = F.invited()
    for _ in range(20):
        r.after(100)
    assert r.renders == [M.SCR_INVITE, M.SCR_INVITE]  # 9 s, then 8 s
    assert r.ui.remaining_s == 8


def test_deferred_invite_keeps_its_own_deadline():
    r = F.reason5()  # invite 7 answered at T0+1000 with level 5
    r.msg(F.invite(8))  # at T0+1000, window 10 s -> until T0+11000
    r.after(5000)
    r.press(0)  # reason chosen at T0+6000: thanks until T0+9000
    r.after(3000)
    assert r.ui.state == M.INVITED and r.ui.invite.invite == 8
    assert r.ui.remaining_s == 2
    r.after(2000)
    assert r.ui.state == M.IDLE


def test_deferred_invite_that_ran_out_is_not_opened():
    r = F.reason5()
    r.msg(F.invite(8, timeout_s=1))
    r.press(0)
    r.after(3000)
    assert r.ui.state == M.IDLE and r.ui.last_event == "thanks_done"


def test_display_message_waits_for_idle_and_expires():
    r = F.invited()
    r.msg(F.display("请到2号窗口", None, 20))
    assert r.ui.screen == M.SCR_INVITE
    r.after(10000)  # invite over: the message shows for its remaining 10 s
    assert r.ui.screen == M.SCR_MESSAGE
    r.after(10000)
    assert r.ui.screen == M.SCR_IDLE and r.ui.message is None


def test_display_without_seconds_lasts_until_the_next_screen_change():
    r = F.idle()
    r.msg(F.display(seconds=0))
    r.after(60000)
    assert r.ui.screen == M.SCR_MESSAGE
    r.msg(F.invite(7))
    r.msg(F.cancel(7))
    assert r.ui.screen == M.SCR_IDLE
    r.msg(F.display(seconds=0))
    r.msg(F.display(zh="", seconds=0))  # empty text clears
    assert r.ui.screen == M.SCR_IDLE


def test_selftest_reports_display_and_buttons():
    r = F.buttons_four()
    r.press(4)
    assert r.selftests == [
        (
            9,
            [
                {"item": 2, "ok": True, "detail": "pattern shown"},
                {"item": 1, "ok": True, "detail": None},
            ],
        )
    ]
    assert r.records == []  # button tests are not ratings
    r = F.buttons_test()
    r.press(1)
    r.after(M.BUTTON_TEST_MS)
    assert r.selftests[0][1][1] == {"item": 1, "ok": False, "detail": "not pressed: 1,3,4,5"}


def test_selftest_of_leds_only_is_not_the_uis():
    r = F.idle()
    r.msg(F.selftest((3, 4)))
    assert r.ui.state == M.IDLE and r.renders == []


def test_qr_unit_has_no_buttons():
    r = F.Rig(kind=KIND_QR)
    r.msg(F.config())
    assert r.ui.buttons == ()
    try:
        r.press(0)
    except M.UIError as e:
        assert e.code == "ui.button"
    else:
        raise AssertionError("a QR unit took a press")
    r.msg(F.selftest((1,)))
    r.after(0)
    assert r.selftests == [(9, [{"item": 1, "ok": False, "detail": "no buttons"}])]


def test_table_rows_are_listed_for_the_docs():
    rows = M.rows()
    assert len(rows) == len(CASES) == 84
    assert ("invite", "press_first", "thanks", "record_first") in rows
