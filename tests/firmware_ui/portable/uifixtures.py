"""Shared fixtures for the UI tests: a UI with recording callbacks, messages, arrangers.

Runs on CPython (pytest) and on the MicroPython unix port (tests/portable/run.py).
"""

from firmware.ui import machine as M
from protocol.messages import (
    CANCEL,
    CONFIG,
    DISPLAY,
    INVITE,
    KIND_EVALUATOR,
    PAUSE,
    RESUME,
    SELFTEST,
    Message,
)

T0 = 100000  # ms; any start time works, the machine only compares and adds

# Catalogue: level 5 gets four reasons (and a fifth it cannot show), level 4 three.
REASONS = [
    {"code": 501, "zh": "服务态度差", "en": "Attitude", "levels": 0b11000},
    {"code": 502, "zh": "办理时间长", "en": "Too slow", "levels": 0b11000},
    {"code": 503, "zh": "流程不清楚", "en": None, "levels": 0b11000},
    {"code": 301, "zh": "一般", "en": None, "levels": 0b00100},
    {"code": 504, "zh": "多次跑腿", "en": None, "levels": 0b10000},
    {"code": 505, "zh": "其他", "en": "Other", "levels": 0b10000},
]
STAFF = {"name": "张三", "number": "A0123", "title": None}
POLICY = {
    "invite_s": 10,
    "reason_s": 30,
    "thanks_s": 3,
    "heartbeat_s": 30,
    "reason_required": False,
}


def config(**over):
    f = {
        "seq": 1,
        "version": 7,
        "window": "3号窗口",
        "staff": STAFF,
        "qr": None,
        "reasons": REASONS,
        "policy": POLICY,
    }
    for k in over:
        f[k] = over[k]
    return Message(CONFIG, **f)


def invite(n=7, timeout_s=0, item=None, qr=None):
    return Message(INVITE, seq=2, invite=n, timeout_s=timeout_s, staff=None, qr=qr, item=item)


def cancel(n=7):
    return Message(CANCEL, seq=3, invite=n)


def pause(reason="午休"):
    return Message(PAUSE, seq=4, reason=reason)


def resume():
    return Message(RESUME, seq=5)


def display(zh="系统维护中", en=None, seconds=5):
    return Message(DISPLAY, seq=6, zh=zh, en=en, seconds=seconds)


def selftest(items=(2, 1), test=9):
    return Message(SELFTEST, test=test, items=list(items))


class Rig:
    """A UI whose outputs land in lists; t is the rig's clock."""

    def __init__(self, kind=KIND_EVALUATOR, buttons=M.DEFAULT_BUTTONS, fail=False):
        self.records = []
        self.renders = []
        self.selftests = []
        self.fail = fail
        self.t = T0
        self.ui = M.UI(self._record, self._render, kind, buttons, self._selftest)

    def _record(self, level, reasons, flags, invite, ticks):
        if self.fail:
            raise OSError(28)  # ENOSPC: the outbox could not store it
        # The thanks screen must not have been rendered for this rating yet.
        self.records.append((level, list(reasons), flags, invite, ticks, self.ui.screen))

    def _render(self, screen, ui):
        self.renders.append(screen)

    def _selftest(self, test, results):
        self.selftests.append((test, results))

    # inputs at the rig's clock
    def press(self, b):
        self.ui.press(b, self.t)

    def after(self, ms):
        self.t += ms
        self.ui.tick(self.t)

    def msg(self, m):
        self.ui.on_message(m, self.t)

    def clear(self):
        self.records = []
        self.renders = []
        self.selftests = []

    def recs(self):
        """Records without ticks and screen: (level, reasons, flags, invite)."""
        out = []
        for r in self.records:
            out.append((r[0], r[1], r[2], r[3]))
        return out


# ---- arrangers: a rig in a named situation, outputs cleared ----
def idle(online=True):
    r = Rig()
    r.ui.start(r.t)
    r.msg(config())
    if online:
        r.ui.link_up(r.t)
    r.clear()
    return r


def idle_offline():
    return idle(False)


def idle_paused():
    r = idle()
    r.msg(pause())
    r.clear()
    return r


def idle_message():
    r = idle()
    r.msg(display(seconds=5))
    r.clear()
    return r


def invited():
    r = idle()
    r.msg(invite(7))
    r.clear()
    return r


def reason5():
    r = invited()
    r.after(1000)
    r.press(4)  # level 5: four reasons + skip
    r.clear()
    return r


def reason4():
    r = invited()
    r.press(3)  # level 4: three reasons, the fourth slot is blank
    r.clear()
    return r


def thanks():
    r = invited()
    r.press(0)
    r.clear()
    return r


def thanks_deferred():
    r = reason5()
    r.msg(invite(8))
    r.press(0)
    r.clear()
    return r


def thanks_cancelled():
    r = thanks()
    r.msg(cancel(7))
    r.clear()
    return r


def idle_answered():
    r = thanks()
    r.after(3000)  # thanks over, invite 7 still open until T0 + 10 s
    r.clear()
    return r


def notice():
    r = idle()
    r.press(0)
    r.clear()
    return r


def pattern():
    r = idle()
    r.msg(selftest((2, 1)))
    r.clear()
    return r


def buttons_test():
    r = pattern()
    r.after(M.PATTERN_MS)
    r.clear()
    return r


def buttons_four():
    r = buttons_test()
    for b in range(4):
        r.press(b)
    r.clear()
    return r


def notice_seen7():
    r = invited()
    r.after(10000)  # invite 7 ran out unanswered
    r.press(0)
    r.clear()
    return r


def pattern_seen7():
    r = invited()
    r.msg(selftest((2, 1)))
    r.clear()
    return r
