"""The device UI state machine: what a citizen sees and what a button press means.

Everything that changes the UI state is in this module, and the legal transitions are the
table ROWS below; an event a state has no row for raises UIError naming state and event.

Sans-IO, like protocol/session.py: the app feeds inputs in with the time (integer ms from a
monotonic clock that does not wrap) and receives outputs through three callbacks:

    ui = UI(record, render, kind=KIND_EVALUATOR, buttons=(1, 2, 3, 4, 5))
    ui.press(button, now)          # button index 0..n-1, left to right as mounted
    ui.tick(now)                   # timers: invite, reason, thanks, notice, message, selftest
    ui.on_message(msg, now)        # CONFIG, INVITE, CANCEL, PAUSE, RESUME, DISPLAY, SELFTEST
    ui.link_up(now) / ui.link_down(now)

    record(level, reasons, flags, invite, ticks)   # write durably, then return (may raise)
    render(screen, ui)                             # draw `screen` from ui's public fields
    selftest_done(test, results)                   # TestResult dicts for the display/buttons

Rules (DOMAIN.md, issue 3, docs/protocol.md §6 flags):
- Only the first press inside an open invite counts; later presses in the same invite (until
  its deadline or CANCEL) are recorded with FLAG_REPEAT. A press with no open invite is
  recorded with FLAG_UNSOLICITED and the screen asks to rate after being served. Presses
  while paused carry FLAG_PAUSED, presses while the link is down FLAG_OFFLINE. No press is
  ever dropped because of its level or timing.
- A 差评 (levels 4, 5) opens the reason screen: up to four catalogue reasons for that level
  on the buttons left to right, the rightmost button skips. One press picks one reason.
  No choice: FLAG_REASON_SKIPPED (skip) or FLAG_REASON_TIMEOUT (policy reason_s).
- record() is called, and must return, BEFORE the thanks screen is rendered: the app writes
  the rating to the outbox in it. If it raises, the UI state does not change (the invite
  stays open, so the rater can press again) and the exception propagates to the app: the
  device never thanks for a rating it did not store.
- No screen ever shows the chosen level: staff must not see it (DOMAIN.md, social pressure).

Events are classified before the table lookup (a press in an open invite is press_first or
press_bad, ...), so every branch is a row and every row is tested.
"""

from firmware.compat import const
from protocol.messages import (
    BAD_LEVELS,
    CANCEL,
    CONFIG,
    DISPLAY,
    FLAG_OFFLINE,
    FLAG_PAUSED,
    FLAG_REASON_SKIPPED,
    FLAG_REASON_TIMEOUT,
    FLAG_REPEAT,
    FLAG_UNSOLICITED,
    INVITE,
    KIND_EVALUATOR,
    KIND_QR,
    KINDS,
    PAUSE,
    REASON_CHOICE_MAX,
    RESUME,
    SELFTEST,
    TEST_BUTTONS,
    TEST_DISPLAY,
)

# ---- states ----
IDLE = "idle"
INVITED = "invite"
REASON = "reason"
THANKS = "thanks"
NOTICE = "notice"
SELFTEST_MODE = "selftest"
STATES = (IDLE, INVITED, REASON, THANKS, NOTICE, SELFTEST_MODE)

# STATUS.ui (docs/protocol.md: uint <= 255): state code in the low bits, flags above.
STATE_CODES = {IDLE: 0, INVITED: 1, REASON: 2, THANKS: 3, NOTICE: 4, SELFTEST_MODE: 5}
UI_PAUSED = 0x10
UI_OFFLINE = 0x20
_UI_MESSAGE = const(0x40)

# ---- screens (what render() is asked to draw) ----
SCR_IDLE = "idle"
SCR_PAUSED = "paused"
SCR_MESSAGE = "message"
SCR_INVITE = "invite"
SCR_REASON = "reason"
SCR_THANKS = "thanks"
SCR_NOTICE = "notice"
SCR_PATTERN = "selftest_pattern"
SCR_BUTTONS = "selftest_buttons"

# ---- limits and defaults, each with its reason ----
# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value (the
# names without "_" are read by the tests)
DEFAULT_BUTTONS = (1, 2, 3, 4, 5)  # left to right: 非常满意 ... 非常不满意; halls may reverse
_MAX_BUTTONS = const(5)
_DEFAULT_INVITE_S = const(10)  # the commercial products' default rating window (DOMAIN.md)
_DEFAULT_REASON_S = const(30)  # long enough to read four short reasons
_DEFAULT_THANKS_S = const(3)
_FEEDBACK_MIN_S = const(1)  # thanks is shown even with thanks_s = 0: the rater needs to see it
_NOTICE_MIN_S = const(2)  # the unsolicited notice is text to read
_RECENT_INVITES = const(4)  # INVITE ids remembered: the agent re-sends the open one after a re-sync
PATTERN_MS = 3000  # display test pattern, before the button test
BUTTON_TEST_MS = 30000  # a technician presses five buttons in far less

# The table: per state, its rows "event next_state action;" in one string. A string constant
# stays in the .mpy (in flash with ROMFS): the same rows as tuples cost ~2.6 KB of heap on
# MicroPython, and the lookup slices only two short strings per event. Actions are method
# names. Events: press_* (classified from press), *_timeout, *_done, selftest_next and
# second (classified from tick), message names (classified from on_message:
# invite_new/invite_known, cancel_current/cancel), link_up/down.
# State updates (config, pause, resume, link, a known INVITE, CANCEL of another invite) are
# taken in every state: they change data, not the screen flow.
ROWS = (
    # --- idle: the window's label, staff and 工号; 暂停服务 when paused; DISPLAY text ---
    IDLE,
    "press_repeat thanks _do_record_repeat;"
    "press_unsolicited notice _do_record_unsolicited;"
    "invite_new invite _do_open_invite;"
    "display idle _do_show_message;"
    "message_done idle _do_clear_message;"
    "selftest selftest _do_start_selftest;"
    "config idle _do_config;"
    "pause idle _do_pause;"
    "resume idle _do_resume;"
    "link_up idle _do_link_up;"
    "link_down idle _do_link_down;"
    "invite_known idle _do_nothing;"
    "cancel idle _do_forget_invite;",
    # --- invite: 请您对本次服务进行评价 with a countdown ---
    INVITED,
    "press_first thanks _do_record_first;"
    "press_bad reason _do_open_reasons;"
    "second invite _do_nothing;"
    "invite_timeout idle _do_close_invite;"
    "cancel_current idle _do_close_invite;"
    "invite_new invite _do_open_invite;"
    "display invite _do_store_message;"
    "selftest selftest _do_start_selftest;"
    "config invite _do_config;"
    "pause invite _do_pause;"
    "resume invite _do_resume;"
    "link_up invite _do_link_up;"
    "link_down invite _do_link_down;"
    "invite_known invite _do_nothing;"
    "cancel invite _do_forget_invite;",
    # --- reason: up to four reasons on the buttons, the rightmost skips ---
    REASON,
    "press_reason thanks _do_record_reason;"
    "press_skip thanks _do_record_skipped;"
    "press_blank reason _do_nothing;"
    "second reason _do_nothing;"
    "reason_timeout thanks _do_record_timeout;"
    "invite_new reason _do_defer_invite;"
    "display reason _do_store_message;"
    "selftest selftest _do_abandon_reasons;"
    "config reason _do_config;"
    "pause reason _do_pause;"
    "resume reason _do_resume;"
    "link_up reason _do_link_up;"
    "link_down reason _do_link_down;"
    "invite_known reason _do_nothing;"
    "cancel reason _do_forget_invite;",
    # --- thanks: 感谢您的评价, never the level ---
    THANKS,
    "press_repeat thanks _do_record_repeat;"
    "press_unsolicited notice _do_record_unsolicited;"
    "thanks_done idle _do_nothing;"
    "thanks_done_invite invite _do_open_deferred;"
    "invite_new invite _do_open_invite;"
    "display thanks _do_store_message;"
    "selftest selftest _do_start_selftest;"
    "config thanks _do_config;"
    "pause thanks _do_pause;"
    "resume thanks _do_resume;"
    "link_up thanks _do_link_up;"
    "link_down thanks _do_link_down;"
    "invite_known thanks _do_nothing;"
    "cancel thanks _do_forget_invite;",
    # --- notice: 请在办理业务后评价 after a press with no open invite ---
    NOTICE,
    "press_unsolicited notice _do_record_unsolicited;"
    "notice_done idle _do_nothing;"
    "invite_new invite _do_open_invite;"
    "display notice _do_store_message;"
    "selftest selftest _do_start_selftest;"
    "config notice _do_config;"
    "pause notice _do_pause;"
    "resume notice _do_resume;"
    "link_up notice _do_link_up;"
    "link_down notice _do_link_down;"
    "invite_known notice _do_nothing;"
    "cancel notice _do_forget_invite;",
    # --- selftest: display pattern, then each button (a technician's mode, no ratings) ---
    SELFTEST_MODE,
    "press_ignored selftest _do_nothing;"
    "press_test selftest _do_mark_button;"
    "press_test_last idle _do_finish_selftest;"
    "selftest_next selftest _do_button_phase;"
    "selftest_done idle _do_finish_selftest;"
    "invite_new invite _do_abort_selftest;"
    "display selftest _do_store_message;"
    "selftest selftest _do_start_selftest;"
    "config selftest _do_config;"
    "pause selftest _do_pause;"
    "resume selftest _do_resume;"
    "link_up selftest _do_link_up;"
    "link_down selftest _do_link_down;"
    "invite_known selftest _do_nothing;"
    "cancel selftest _do_forget_invite;",
)  # fmt: skip


def _row(state, event):
    """(next state, action) of state's row for event, or None if it has none."""
    # A scan of the state's string, not a {state: {event: row}} index: the index cost ~3 KB
    # of heap on the unix port, the scan a few finds per event.
    for k in range(0, len(ROWS), 2):
        if ROWS[k] == state:
            rows = ROWS[k + 1]
            i = 0
            while i < len(rows):
                end = rows.find(";", i)
                sp = rows.find(" ", i)
                if sp - i == len(event) and rows.startswith(event, i):
                    sp2 = rows.find(" ", sp + 1)
                    return _state(rows[sp + 1 : sp2]), rows[sp2 + 1 : end]
                i = end + 1
    return None


def _state(name):
    # The state constant for a name sliced from the table: self.state keeps no new string
    for s in STATES:
        if s == name:
            return s
    raise UIError("ui.illegal", "table names no state %s" % name)


def rows():
    """Every (state, event, next state, action) of the table, in table order (docs, tests)."""
    out = []
    for k in range(0, len(ROWS), 2):
        for row in ROWS[k + 1].split(";")[:-1]:
            event, nxt, action = row.split(" ")
            out.append((ROWS[k], event, nxt, action[4:]))
    return out


class UIError(Exception):
    """A UI input the machine cannot take. code: ui.illegal, ui.button, ui.config."""

    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self):
        return self.code + ": " + self.detail


def _ms(seconds):
    return seconds * 1000


class UI:
    """The UI of one device. Public fields are what the screens draw (screens.py)."""

    def __init__(
        self,
        record,
        render,
        kind=KIND_EVALUATOR,
        buttons=DEFAULT_BUTTONS,
        selftest_done=None,
    ):
        if kind not in KINDS:
            raise UIError("ui.config", "kind %r is not one of %r" % (kind, KINDS))
        if kind == KIND_QR:
            buttons = ()  # a QR display unit has no buttons
        _check_buttons(buttons)
        self._record = record
        self._render = render
        self._selftest_done = selftest_done
        self.kind = kind
        self.buttons = tuple(buttons)  # button index -> level
        self.state = IDLE
        self.screen = None  # last screen rendered
        # link and window
        self.online = False  # until the first WELCOME: presses carry FLAG_OFFLINE
        self.storage_mark = 0  # the app's Outbox.mark() (near full / dropped): drawn, not state
        self.paused = False
        self.pause_reason = None
        # CONFIG
        self.config_version = 0
        self.window = ""
        self.staff = None  # {"name", "number", "title"}
        self.qr = None  # static one-code-one-account QR {"size", "bits"}
        self.reasons = []
        self.invite_s = _DEFAULT_INVITE_S
        self.reason_s = _DEFAULT_REASON_S
        self.thanks_s = _DEFAULT_THANKS_S
        self.reason_required = False
        # the open invite (state INVITED, and REASON for its pending rating)
        self.invite = None  # INVITE message
        self._invite_opened = 0
        self.remaining_s = 0  # countdown shown on the invite and reason screens
        # an answered invite: further presses until its deadline are repeats
        self._answered = None
        self._answered_until = 0
        # an INVITE that arrived while a rater was choosing a reason, opened after thanks
        self._deferred = None
        self._deferred_at = 0
        self._recent = [None] * _RECENT_INVITES
        self._recent_next = 0
        # the pending 差评 on the reason screen
        self._level = 0
        self._flags = 0
        self._ticks = 0
        self.reason_codes = [0] * REASON_CHOICE_MAX
        self.reason_labels = [None] * REASON_CHOICE_MAX  # (zh, en) per button slot
        self.reason_slots = 0  # reasons shown
        self.skip_button = -1  # button index of "skip" (-1: none)
        # DISPLAY text
        self.message = None  # DISPLAY message
        self._message_until = 0  # 0: until the next screen change
        # selftest
        self._test = None
        self._test_items = ()
        self.selftest_pressed = 0  # bit per button index
        self.selftest_phase = None  # SCR_PATTERN or SCR_BUTTONS
        # timers
        self._deadline = None  # the current state's timer
        self._dirty = True
        self.last_event = None  # the last event the table took (logs, tests)
        # counters for STATUS and tests
        self.presses = 0

    # ---- the table ----
    def _fire(self, event, now, arg=None):
        row = _row(self.state, event)
        if row is None:
            raise UIError("ui.illegal", "state %s cannot handle %s" % (self.state, event))
        new_state, action = row
        self.last_event = event
        getattr(self, action)(now, arg)  # raises: the state stays as it was
        if new_state != self.state:
            if self.state == IDLE and self.message is not None and self._message_until == 0:
                self.message = None  # DISPLAY with seconds = 0: until the next screen change
            self.state = new_state
            self._dirty = True
            if new_state == IDLE:
                self._home_timer(now)
        self._show()

    def _show(self):
        screen = self._screen()
        if screen != self.screen or self._dirty:
            self.screen = screen
            self._dirty = False
            self._render(screen, self)

    def _screen(self):
        s = self.state
        if s == IDLE:
            if self.message is not None:
                return SCR_MESSAGE
            return SCR_PAUSED if self.paused else SCR_IDLE
        if s == INVITED:
            return SCR_INVITE
        if s == REASON:
            return SCR_REASON
        if s == THANKS:
            return SCR_THANKS
        if s == NOTICE:
            return SCR_NOTICE
        return self.selftest_phase

    # ---- inputs ----
    def start(self, now):
        """Render the first screen (the app calls this once the display is up)."""
        self._dirty = True
        self._show()

    def press(self, button, now):
        """A debounced button press; button is the index left to right as mounted."""
        if not 0 <= button < len(self.buttons):
            raise UIError(
                "ui.button", "button %r: this device has %d buttons" % (button, len(self.buttons))
            )
        self.presses += 1
        self._fire(self._classify_press(button, now), now, button)

    def _classify_press(self, button, now):
        s = self.state
        if s == INVITED:
            level = self.buttons[button]
            if level in BAD_LEVELS and self._reasons_for(level, None) > 0:
                return "press_bad"
            return "press_first"
        if s == REASON:
            if button == self.skip_button:
                return "press_skip"
            return "press_reason" if button < self.reason_slots else "press_blank"
        if s == SELFTEST_MODE:
            if self.selftest_phase != SCR_BUTTONS:
                return "press_ignored"
            done = self.selftest_pressed | (1 << button)
            return "press_test_last" if done == (1 << len(self.buttons)) - 1 else "press_test"
        if self._answered is not None and now < self._answered_until:
            return "press_repeat"
        return "press_unsolicited"

    def tick(self, now):
        """Run due timers; call at least every 100 ms (countdowns show whole seconds)."""
        if self._answered is not None and now >= self._answered_until:
            self._answered = None
        deadline = self._deadline
        if deadline is None:
            return
        if now >= deadline:
            self._fire(self._classify_timeout(now), now)
            return
        if self.state == INVITED or self.state == REASON:
            left = (deadline - now + 999) // 1000
            if left != self.remaining_s:
                self.remaining_s = left
                self._dirty = True
                self._fire("second", now)

    def _classify_timeout(self, now):
        s = self.state
        if s == INVITED:
            return "invite_timeout"
        if s == REASON:
            return "reason_timeout"
        if s == THANKS:
            if self._deferred is not None and now < self._deferred_until():
                return "thanks_done_invite"
            return "thanks_done"
        if s == NOTICE:
            return "notice_done"
        if s == SELFTEST_MODE:
            if self.selftest_phase == SCR_PATTERN and TEST_BUTTONS in self._test_items:
                return "selftest_next"
            return "selftest_done"
        return "message_done"

    def on_message(self, msg, now):
        """Apply one delivered down-stream message (the app acks it after this returns)."""
        t = msg.type
        if t == CONFIG:
            self._fire("config", now, msg)
        elif t == INVITE:
            self._fire("invite_known" if self._known(msg.invite) else "invite_new", now, msg)
        elif t == CANCEL:
            current = self.state == INVITED and self.invite.invite == msg.invite
            self._fire("cancel_current" if current else "cancel", now, msg)
        elif t == PAUSE:
            self._fire("pause", now, msg)
        elif t == RESUME:
            self._fire("resume", now, msg)
        elif t == DISPLAY:
            self._fire("display", now, msg)
        elif t == SELFTEST:
            # Only the display and button items are the UI's; the app runs the others.
            if TEST_DISPLAY in msg.items or TEST_BUTTONS in msg.items:
                self._fire("selftest", now, msg)
        else:
            raise UIError("ui.illegal", "state %s cannot handle message %s" % (self.state, t))

    def link_up(self, now):
        self._fire("link_up", now)

    def link_down(self, now):
        self._fire("link_down", now)

    def code(self):
        """The STATUS `ui` field: state code | UI_PAUSED | UI_OFFLINE | _UI_MESSAGE."""
        c = STATE_CODES[self.state]
        if self.paused:
            c |= UI_PAUSED
        if not self.online:
            c |= UI_OFFLINE
        if self.message is not None:
            c |= _UI_MESSAGE
        return c

    # ---- helpers ----
    def _flags_now(self):
        f = 0
        if self.paused:
            f |= FLAG_PAUSED
        if not self.online:
            f |= FLAG_OFFLINE
        return f

    def _known(self, invite_id):
        # No any(generator): a generator is a heap object on MicroPython.
        for i in range(_RECENT_INVITES):  # noqa: SIM110
            if self._recent[i] == invite_id:
                return True
        return False

    def _remember(self, invite_id):
        self._recent[self._recent_next] = invite_id
        self._recent_next = (self._recent_next + 1) % _RECENT_INVITES

    def _reasons_for(self, level, fill):
        """How many catalogue reasons are offered for level (at most the reason slots);
        fill: if true, load them into reason_codes/reason_labels."""
        slots = len(self.buttons) - 1  # the rightmost button skips
        if self.reason_required:
            slots = len(self.buttons)  # no skip: the screen asks, the timeout still records
        if slots > REASON_CHOICE_MAX:
            slots = REASON_CHOICE_MAX
        bit = 1 << (level - 1)
        n = 0
        for r in self.reasons:
            if n >= slots:
                break
            if r["levels"] & bit:
                if fill:
                    self.reason_codes[n] = r["code"]
                    self.reason_labels[n] = (r["zh"], r["en"])
                n += 1
        return n

    def _invite_deadline(self, msg, since):
        seconds = msg.timeout_s or self.invite_s
        return since + _ms(seconds)

    def _deferred_until(self):
        return self._invite_deadline(self._deferred, self._deferred_at)

    def _emit(self, level, reasons, flags, invite, ticks):
        # The app stores the rating durably in record(); only then may thanks be shown.
        self._record(level, reasons, flags, invite, ticks)

    def _invite_id(self):
        return None if self.invite is None else self.invite.invite

    def _set_answered(self, invite, now):
        # Presses after the first are repeats until the invite's own deadline.
        self._answered = invite
        self._answered_until = self._invite_deadline(invite, self._invite_opened)

    def _enter_feedback(self, now, seconds):
        self._deadline = now + _ms(seconds)
        self._dirty = True

    def _home_timer(self, now):
        # Idle's only timer is the DISPLAY message's own; one that ran out meanwhile goes.
        self._deadline = None
        if self.message is not None and self._message_until:
            if self._message_until <= now:
                self.message = None
            else:
                self._deadline = self._message_until

    # ---- actions (one per table action; `arg` is the button or the message) ----
    def _do_nothing(self, now, arg):
        pass

    def _do_config(self, now, msg):
        self.config_version = msg.version
        self.window = msg.window
        self.staff = msg.staff
        self.qr = msg.qr
        self.reasons = msg.reasons
        p = msg.policy
        self.invite_s = p["invite_s"] or _DEFAULT_INVITE_S
        self.reason_s = p["reason_s"] or _DEFAULT_REASON_S
        self.thanks_s = p["thanks_s"]
        self.reason_required = p["reason_required"]
        self._dirty = True

    def _do_pause(self, now, msg):
        self.paused = True
        self.pause_reason = msg.reason
        self._dirty = True

    def _do_resume(self, now, msg):
        self.paused = False
        self.pause_reason = None
        self._dirty = True

    def _do_link_up(self, now, arg):
        self.online = True
        self._dirty = True

    def _do_link_down(self, now, arg):
        self.online = False
        self._dirty = True

    def _do_forget_invite(self, now, msg):
        # CANCEL of an answered or deferred invite: no more repeats, no late opening.
        # (A pending 差评 on the reason screen stays: the rater already pressed.)
        if self._answered is not None and self._answered.invite == msg.invite:
            self._answered = None
        if self._deferred is not None and self._deferred.invite == msg.invite:
            self._deferred = None

    def _do_open_invite(self, now, msg):
        self._remember(msg.invite)
        self._deferred = None
        self._answered = None
        self.invite = msg
        self._invite_opened = now
        self._deadline = self._invite_deadline(msg, now)
        self.remaining_s = (self._deadline - now + 999) // 1000
        self._dirty = True

    def _do_defer_invite(self, now, msg):
        self._remember(msg.invite)
        self._deferred = msg
        self._deferred_at = now

    def _do_open_deferred(self, now, arg):
        msg = self._deferred
        self._do_open_invite(self._deferred_at, msg)
        self.remaining_s = (self._deadline - now + 999) // 1000

    def _do_close_invite(self, now, arg):
        self.invite = None
        self._dirty = True

    def _do_record_first(self, now, button):
        self._emit(self.buttons[button], [], self._flags_now(), self._invite_id(), now)
        self._answer(now)

    def _answer(self, now):
        self._set_answered(self.invite, now)
        self.invite = None
        self._enter_feedback(now, max(self.thanks_s, _FEEDBACK_MIN_S))

    def _do_open_reasons(self, now, button):
        self._level = self.buttons[button]
        self._flags = self._flags_now()
        self._ticks = now
        self.reason_slots = self._reasons_for(self._level, True)
        self.skip_button = -1 if self.reason_required else len(self.buttons) - 1
        self._deadline = now + _ms(self.reason_s)
        self.remaining_s = self.reason_s
        self._dirty = True

    def _finish_reason(self, now, reasons, flag):
        self._emit(self._level, reasons, self._flags | flag, self._invite_id(), self._ticks)
        self.reason_slots = 0
        self._answer(now)

    def _do_record_reason(self, now, button):
        self._finish_reason(now, [self.reason_codes[button]], 0)

    def _do_record_skipped(self, now, button):
        self._finish_reason(now, [], FLAG_REASON_SKIPPED)

    def _do_record_timeout(self, now, arg):
        self._finish_reason(now, [], FLAG_REASON_TIMEOUT)

    def _do_abandon_reasons(self, now, msg):
        # A selftest request while a rater chooses: keep the 差评 (as a reason timeout).
        self._do_record_timeout(now, None)
        self._do_start_selftest(now, msg)

    def _do_record_repeat(self, now, button):
        inv = self._answered
        self._emit(self.buttons[button], [], self._flags_now() | FLAG_REPEAT, inv.invite, now)
        if self.state != THANKS:
            self._enter_feedback(now, max(self.thanks_s, _FEEDBACK_MIN_S))

    def _do_record_unsolicited(self, now, button):
        flags = self._flags_now() | FLAG_UNSOLICITED
        self._emit(self.buttons[button], [], flags, None, now)
        self._enter_feedback(now, max(self.thanks_s, _NOTICE_MIN_S))

    def _do_show_message(self, now, msg):
        self._do_store_message(now, msg)
        self._home_timer(now)

    def _do_store_message(self, now, msg):
        # Shown at idle, for `seconds` (0: until the next screen change); empty text clears.
        if not msg.zh and not msg.en:
            self.message = None
        else:
            self.message = msg
            self._message_until = now + _ms(msg.seconds) if msg.seconds else 0
        self._dirty = True

    def _do_clear_message(self, now, arg):
        self.message = None
        self._deadline = None
        self._dirty = True

    def _do_start_selftest(self, now, msg):
        self.invite = None
        self._test = msg.test
        self._test_items = msg.items
        self.selftest_pressed = 0
        if TEST_DISPLAY in msg.items:
            self.selftest_phase = SCR_PATTERN
            self._deadline = now + PATTERN_MS
        else:
            self._do_button_phase(now, None)
        self._dirty = True

    def _do_button_phase(self, now, arg):
        self.selftest_phase = SCR_BUTTONS
        self._deadline = now + BUTTON_TEST_MS
        if not self.buttons:
            self._deadline = now  # nothing to press: report at the next tick
        self._dirty = True

    def _do_mark_button(self, now, button):
        self.selftest_pressed |= 1 << button
        self._dirty = True

    def _do_finish_selftest(self, now, button):
        if button is not None:
            self.selftest_pressed |= 1 << button
        results = []
        if TEST_DISPLAY in self._test_items:
            results.append({"item": TEST_DISPLAY, "ok": True, "detail": "pattern shown"})
        if TEST_BUTTONS in self._test_items:
            missing = ""
            for i in range(len(self.buttons)):
                if not self.selftest_pressed & (1 << i):
                    missing += "%s%d" % ("," if missing else "", i + 1)
            ok = bool(self.buttons) and not missing
            detail = None
            if not self.buttons:
                detail = "no buttons"
            elif missing:
                detail = "not pressed: " + missing
            results.append({"item": TEST_BUTTONS, "ok": ok, "detail": detail})
        self.selftest_phase = None
        self._dirty = True
        if self._selftest_done is not None:
            self._selftest_done(self._test, results)

    def _do_abort_selftest(self, now, msg):
        # A case's rating matters more than a technician's test: report and open the invite.
        self._do_finish_selftest(now, None)
        self._do_open_invite(now, msg)


def _check_buttons(buttons):
    if len(buttons) > _MAX_BUTTONS:
        raise UIError("ui.config", "%d buttons, at most %d" % (len(buttons), _MAX_BUTTONS))
    seen = 0
    for level in buttons:
        if not isinstance(level, int) or not 1 <= level <= 5 or seen & (1 << level):
            raise UIError(
                "ui.config", "buttons %r: each a different level 1..5" % (tuple(buttons),)
            )
        seen |= 1 << level
