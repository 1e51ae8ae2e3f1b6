"""Small files that are replaced whole and never seen half-written.

write() puts the new content in `<path>.tmp` and renames it over `<path>`: rename is
atomic on LittleFS (one metadata commit) and on POSIX, so after a power cut the file
holds the old content or the new, never a mix. The last two bytes of the buffer carry
a CRC (record.py's CRC-16, init 0xFFFF), so read() also refuses content damaged on
flash later. The caller owns the buffer (allocated once, sized for its content).
"""

import os

from firmware.compat import const
from protocol.crc import crc16_xmodem

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_CRC_INIT = const(0xFFFF)  # as record.py: a file of zeros must not check
MISSING = 0
OK = 1
CORRUPT = -1


def write(path, buf):
    """Replace path's content with buf, whose last two bytes receive the CRC."""
    n = len(buf)
    crc = crc16_xmodem(memoryview(buf)[: n - 2], _CRC_INIT)
    buf[n - 2] = crc >> 8
    buf[n - 1] = crc & 0xFF
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:  # LittleFS commits the file when it is closed
        f.write(buf)
    os.rename(tmp, path)


def read(path, buf):
    """Fill buf from path: OK, MISSING (no file) or CORRUPT (wrong size or CRC)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (the with below; open() alone may raise)
    except OSError:
        return MISSING
    with f:
        n = f.readinto(buf)
        extra = f.read(1)
    if n != len(buf) or extra or crc16_xmodem(buf, _CRC_INIT) != 0:
        return CORRUPT
    return OK


def discard_tmp(path):
    """Remove a `<path>.tmp` left by a power cut before its rename (it was never the file)."""
    try:  # noqa: SIM105 (MicroPython has no contextlib)
        os.remove(path + ".tmp")
    except OSError:
        pass
