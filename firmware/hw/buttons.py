"""Debounced buttons: poll the raw levels, act on the first edge at once.

A contact bounces for a few ms after each change. Waiting for the bounce to settle would
delay every press; instead the first edge counts at once and the button then ignores
changes for _DEBOUNCE_MS (issue 3: ~50 ms). Poll at least every POLL_MS. No allocation per
poll: the state is two ints and an array.
"""

from array import array

from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_DEBOUNCE_MS = const(50)
POLL_MS = 10


class Buttons:
    def __init__(self, count, debounce_ms=_DEBOUNCE_MS):
        self.count = count
        self.debounce_ms = debounce_ms
        self.stable = 0  # bit i: button i is (debounced) down
        self._lock = array("q", [0] * count)  # no change accepted before this time

    def poll(self, raw, now):
        """Feed the raw levels (bit i = held); return a bitmask of new presses."""
        pressed = 0
        changed = raw ^ self.stable
        if not changed:
            return 0
        for i in range(self.count):
            bit = 1 << i
            if changed & bit and now >= self._lock[i]:
                self.stable ^= bit
                self._lock[i] = now + self.debounce_ms
                if raw & bit:
                    pressed |= bit
        return pressed
