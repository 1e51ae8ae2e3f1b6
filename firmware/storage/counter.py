"""A persisted number that only goes up: the boot session of the protocol (§2, §7).

The protocol signs every packet with (session, ctr) and the agent refuses a session
it has seen, so the session must grow at every boot, power cuts included. bump()
writes the new value (atomic.py: copy, then rename) before returning it: if the
power fails first, the old value is still there and the next boot bumps past it,
so a value bump() returned is never returned again. One small write per boot.
"""

import struct

from firmware.storage import atomic

U32 = 0xFFFFFFFF


class Counter:
    def __init__(self, path):
        self.path = path
        self._buf = bytearray(6)  # u32 value, CRC-16
        state = atomic.read(path, self._buf)
        if state == atomic.CORRUPT:
            # Damaged on flash: refuse rather than restart from 0 (that would reuse
            # sessions the agent has already seen, and it would refuse the device).
            raise OSError("counter %s is damaged; see docs/technician.md" % path)
        self._value = struct.unpack_from("<I", self._buf, 0)[0] if state == atomic.OK else 0

    def value(self):
        return self._value

    def bump(self, at_least=0):
        """Store and return max(value + 1, at_least) (at_least: PROVISION session_base)."""
        v = max(self._value + 1, at_least)
        if v > U32:
            raise OverflowError("counter %s is exhausted" % self.path)
        struct.pack_into("<I", self._buf, 0, v)
        atomic.write(self.path, self._buf)
        self._value = v
        return v
