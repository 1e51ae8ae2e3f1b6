"""One outbox record: a RATING's fields in 32 bytes, with a CRC.

Fixed size, so a segment file is an array: record i of the segment that starts at
seq s is at byte 32 * i and must carry seq s + i. A record is believed only if its
CRC matches, its seq is the one its position says, and its level and reason count
are in range; anything else (a torn tail, an erased or zeroed region, bit rot) is
not a record.

Layout, little-endian:

    0   u32  seq
    4   u32  invite        0 when null (bit 6 of byte 28)
    8   u32  time          0 when null (bit 7 of byte 28)
    12  u32  ticks
    16  u32  boot
    20  4 x u16 reasons    unused slots 0
    28  u8   level (bits 0-2) | reason count (bits 3-5) | invite null (6) | time null (7)
    29  u8   flags
    30  u16  CRC-16 over bytes 0..29, big-endian

The CRC is protocol.crc's CRC-16/XMODEM polynomial started from 0xFFFF instead of 0
(CRC-16/CCITT-FALSE): with init 0, runs of zero bytes do not change the CRC, so an
all-zero record would pass. unpack() returns the fields in the order of the RATING
message's fields (protocol/messages.py): seq, invite, level, reasons, time, ticks,
boot, flags.
"""

import struct

from firmware.compat import const
from protocol.crc import crc16_xmodem

SIZE = 32
# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_CRC_INIT = const(0xFFFF)  # see above: an all-zero record must not check
_U16 = const(0xFFFF)
_U32 = const(0xFFFFFFFF)
_LEVEL_MIN = const(1)  # GB/T 39046-2020 A.8: 1 非常满意 ... 5 非常不满意
_LEVEL_MAX = const(5)
_REASONS_MAX = const(4)  # protocol: at most 4 reasons per rating (one per reason button)
_FLAGS_MAX = const(0x3F)  # protocol.messages.FLAGS_ALL
_FIELDS = const("<IIIII")  # seq, invite, time, ticks, boot
_INVITE_NULL = const(0x40)
_TIME_NULL = const(0x80)


def _u32(name, value):
    if not isinstance(value, int) or value < 0 or value > _U32:
        raise ValueError("rating %s %r is not a uint32" % (name, value))


def pack(buf, seq, invite, level, reasons, time, ticks, boot, flags):
    """Fill buf (SIZE bytes) with one record; ValueError names a bad field first.

    Validates everything before writing, so a bad rating never reaches flash.
    """
    _u32("seq", seq)
    if invite is not None:
        _u32("invite", invite)
    if time is not None:
        _u32("time", time)
    _u32("ticks", ticks)
    _u32("boot", boot)
    if not isinstance(level, int) or level < _LEVEL_MIN or level > _LEVEL_MAX:
        raise ValueError("rating level %r is not 1..5" % (level,))
    if not isinstance(flags, int) or flags < 0 or flags > _FLAGS_MAX:
        raise ValueError("rating flags %r exceed 0x3f" % (flags,))
    n = len(reasons)
    if n > _REASONS_MAX:
        raise ValueError("rating has %d reasons, at most %d fit" % (n, _REASONS_MAX))
    for r in reasons:
        if not isinstance(r, int) or r < 0 or r > _U16:
            raise ValueError("rating reason %r is not a uint16" % (r,))
    info = level | (n << 3)
    if invite is None:
        info |= _INVITE_NULL
        invite = 0
    if time is None:
        info |= _TIME_NULL
        time = 0
    struct.pack_into(_FIELDS, buf, 0, seq, invite, time, ticks, boot)
    for i in range(_REASONS_MAX):
        struct.pack_into("<H", buf, 20 + 2 * i, reasons[i] if i < n else 0)
    buf[28] = info
    buf[29] = flags
    crc = crc16_xmodem(memoryview(buf)[:30], _CRC_INIT)
    buf[30] = crc >> 8
    buf[31] = crc & 0xFF


def valid(buf, seq):
    """True if buf holds an intact record for seq."""
    if crc16_xmodem(buf, _CRC_INIT) != 0:  # data || CRC leaves no remainder
        return False
    if struct.unpack_from("<I", buf, 0)[0] != seq:
        return False
    info = buf[28]
    level = info & 7
    return _LEVEL_MIN <= level <= _LEVEL_MAX and (info >> 3) & 7 <= _REASONS_MAX


def unpack(buf):
    """The fields of a valid record, in RATING field order (see the module docstring)."""
    seq, invite, time, ticks, boot = struct.unpack_from(_FIELDS, buf, 0)
    info = buf[28]
    n = (info >> 3) & 7
    reasons = []
    for i in range(n):
        reasons.append(struct.unpack_from("<H", buf, 20 + 2 * i)[0])
    return (
        seq,
        None if info & _INVITE_NULL else invite,
        info & 7,
        reasons,
        None if info & _TIME_NULL else time,
        ticks,
        boot,
        buf[29],
    )
