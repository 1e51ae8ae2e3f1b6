"""Monotonic milliseconds that do not wrap, from time.ticks_ms (which wraps at 2**30 on
some ports). protocol/session.py and the UI need a clock that only grows; call now() at
least once per wrap period (12 days) — the app's loop does, many times a second.
"""

import time

_last = time.ticks_ms()
_total = 0


def now():
    global _last, _total
    t = time.ticks_ms()
    _total += time.ticks_diff(t, _last)
    _last = t
    return _total


def advance(ms):
    """Move the clock ahead by ms at once (the simulator's clock skew). Never backwards:
    the session's timers and the agent's press times rely on a clock that only grows."""
    global _total
    _total += ms


class Epoch:
    """The best estimate of the epoch time, from the agent's WELCOME and TIME (§6)."""

    def __init__(self):
        self.at = None  # our ms when epoch_ms was true
        self.epoch_ms = 0

    def set(self, epoch_ms, at):
        self.epoch_ms = epoch_ms
        self.at = at

    def seconds(self, ticks):
        """Epoch seconds at our ms `ticks`, or None before the first WELCOME or TIME."""
        if self.at is None:
            return None
        s = (self.epoch_ms + ticks - self.at) // 1000
        return s if 0 <= s <= 0xFFFFFFFF else None
