"""Flash for MicroPython tests: a RAM block device, and a wrapper that cuts the power.

Faulty(inner) speaks MicroPython's extended block-device protocol on top of any device
(RamFlash here, firmware/storage/blockdev.FileBlockDev) and can stop persisting at any
byte: cut(op, offset) lets write operation number `op` (counted from the cut() call;
programs and erases alike) reach flash for its first `offset` bytes only; after that
nothing more is written: the power is gone. Failed operations return LittleFS's
LFS_ERR_IO (-5) instead of raising, so LittleFS unwinds through its own error paths as
after a failed flash program. fail_writes = n fails the next n writes, then recovers
(a transient flash error).

log() records the (kind, size) of every write operation: a dry run with logging finds
all the cut points of an operation, then the test runs once per point.
"""

ERASED = 0xFF
LFS_ERR_IO = -5
_CHUNK = 256


class RamFlash:
    """block_count blocks in one bytearray (only for tests: it costs the whole size in RAM)."""

    def __init__(self, block_size=4096, block_count=32):
        self.block_size = block_size
        self.block_count = block_count
        self.data = bytearray(block_size * block_count)
        for i in range(0, len(self.data), _CHUNK):
            self.data[i : i + _CHUNK] = _FF

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        buf[:] = memoryview(self.data)[start : start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        start = block * self.block_size + (offset or 0)
        self.data[start : start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return self.block_size
        if op == 6:
            start = arg * self.block_size
            end = start + self.block_size
            for i in range(start, end, _CHUNK):
                self.data[i : i + _CHUNK] = _FF
            return 0
        return 0


_FF = b"\xff" * _CHUNK


class Faulty:
    def __init__(self, inner):
        self.inner = inner
        self.block_size = inner.ioctl(5, 0)
        self.programmed = 0
        self.erased = 0
        self.ops = None  # list of (kind, size) while logging
        self.fail_writes = 0
        self._op = -1  # write operations left before the cut (-1: none armed)
        self._offset = 0
        self.dead = False

    def log(self):
        self.ops = []

    def cut(self, op, offset):
        self._op = op
        self._offset = offset
        self.dead = False

    def power_on(self):
        self._op = -1
        self.dead = False
        self.ops = None

    def _allowed(self, kind, n):
        """How many of the n bytes reach flash: n, or fewer (then the power is gone)."""
        if self.dead:
            return -1
        if self.fail_writes:
            self.fail_writes -= 1
            return -1
        if self.ops is not None:
            self.ops.append((kind, n))
        if self._op == 0:
            self.dead = True
            return self._offset
        if self._op > 0:
            self._op -= 1
        return n

    def readblocks(self, block, buf, offset=0):
        self.inner.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        n = self._allowed("p", len(buf))
        if n > 0:
            self.inner.writeblocks(block, memoryview(buf)[:n], offset or 0)
        if n < len(buf):
            return LFS_ERR_IO
        self.programmed += n
        return 0

    def ioctl(self, op, arg):
        if op != 6:
            return self.inner.ioctl(op, arg)
        n = self._allowed("e", self.block_size)
        if n == self.block_size:
            self.erased += 1
            return self.inner.ioctl(6, arg)
        for off in range(0, n, _CHUNK):  # a partial erase: only the first n bytes
            self.inner.writeblocks(arg, memoryview(_FF)[: min(_CHUNK, n - off)], off)
        return LFS_ERR_IO
