"""CRC-16/XMODEM, the frame check of the serial framing layer.

Poly 0x1021, init 0, no reflection, no xorout; crc16_xmodem(b"123456789") is
0x31C3. Uses binascii.crc_hqx where it exists (CPython, in C), else a
256-entry table built once at import (MicroPython's binascii has no crc_hqx).
"""

# Both paths take bytes, bytearray or memoryview and chain (pass the previous
# result as crc). With no reflection and no xorout, the CRC over
# data || crc(data) (big-endian) is 0: a receiver checks a frame in one pass.

import binascii
from array import array

POLY = 0x1021  # CRC-16/XMODEM generator polynomial (x^16 + x^12 + x^5 + 1)


def _make_table():
    table = array("H", range(256))  # 512 bytes, filled in below
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ (POLY if crc & 0x8000 else 0)) & 0xFFFF
        table[i] = crc
    return table


_TABLE = _make_table()


def crc16_xmodem_table(data, crc=0):
    """CRC-16/XMODEM of data by table lookup (the portable path; any Python)."""
    t = _TABLE
    crc &= 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ t[(crc >> 8) ^ b]
    return crc


_hqx = getattr(binascii, "crc_hqx", None)

if _hqx is not None:

    def crc16_xmodem(data, crc=0):
        """CRC-16/XMODEM of data (bytes, bytearray or memoryview); crc chains calls."""
        return _hqx(data, crc)

else:
    crc16_xmodem = crc16_xmodem_table

FAST = _hqx is not None  # True when crc16_xmodem runs in C (binascii.crc_hqx)
