"""Flash as a file: a LittleFS block device for the MicroPython unix port (the simulator).

It implements MicroPython's extended block-device protocol (readblocks / writeblocks
with a byte offset, ioctl with erase), which is what VfsLfs2 drives, so LittleFS
behaves here exactly as on a board's flash partition, power cuts included: a killed
process leaves the image as the last completed write left it. A new image is created
erased (all 0xFF), like new flash. On a board, the port's own flash object
(rp2.Flash, esp32.Partition) plays this role.

Counters (programmed, erased, reads) let tests and benchmarks measure wear: on-chip
flash is rated ~10k erase cycles per block.
"""

from firmware.compat import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_ERASED = const(0xFF)
_CHUNK = const(256)  # erase writes this many 0xFF bytes at a time (one buffer, allocated once)

# ioctl operations of MicroPython's block-device protocol
_IOCTL_INIT = const(1)
_IOCTL_DEINIT = const(2)
_IOCTL_SYNC = const(3)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)

MOUNTED = None  # the unix ROM's flash (firmware/unix_rom.py), for its wear counters


class FileBlockDev:
    """block_count blocks of block_size bytes in the file at path (created if missing).

    durable=True makes ioctl SYNC flush the file to the host's disk (fsync), which a
    host power cut needs; a killed process does not, and fsync costs milliseconds.
    """

    def __init__(self, path, block_size=4096, block_count=128, durable=False):
        if block_size % _CHUNK:
            raise ValueError("block size %d is not a multiple of %d" % (block_size, _CHUNK))
        self.path = path
        self.block_size = block_size
        self.block_count = block_count
        self.durable = durable
        self.programmed = 0  # bytes written by writeblocks
        self.erased = 0  # blocks erased
        self.reads = 0  # bytes read
        self._ff = bytearray(_CHUNK)
        for i in range(_CHUNK):
            self._ff[i] = _ERASED
        # The image stays open for the device's life (SIM115: closed by close()).
        try:
            self._f = open(path, "r+b")  # noqa: SIM115
        except OSError:
            self._f = open(path, "w+b")  # noqa: SIM115
            for b in range(block_count):
                self._fill(b)

    def _fill(self, block):
        f = self._f
        f.seek(block * self.block_size)
        for _ in range(self.block_size // _CHUNK):
            f.write(self._ff)

    def readblocks(self, block, buf, offset=0):
        f = self._f
        f.seek(block * self.block_size + offset)
        n = f.readinto(buf) or 0
        self.reads += len(buf)
        for i in range(n, len(buf)):  # beyond the end of a short image: erased flash
            buf[i] = _ERASED

    def writeblocks(self, block, buf, offset=None):
        # offset None is the simple protocol (whole blocks, erase implied); LittleFS
        # erases through ioctl first and then programs at an offset.
        f = self._f
        f.seek(block * self.block_size + (offset or 0))
        f.write(buf)
        self.programmed += len(buf)

    def ioctl(self, op, arg):
        if op == _IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            self._fill(arg)
            self.erased += 1
            return 0
        if op == _IOCTL_SYNC:
            if self.durable:
                self._f.flush()
            return 0
        if op in (_IOCTL_INIT, _IOCTL_DEINIT):
            return 0
        return None  # unknown operation: MicroPython's convention for "not supported"

    def close(self):
        self._f.close()
