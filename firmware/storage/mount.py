"""Mount LittleFS v2 on a block device, formatting only a device that is blank.

A device that does not mount is formatted only if its two superblock blocks are
blank (all 0xFF, as erased flash, or all 0x00, as a new sparse file). Anything else
is a damaged filesystem that still holds ratings: it is refused with an error for a
technician, never formatted over. (The ESP32 port's own first boot checks its boot
sector the same way.) FAT is not an option: it is not power-loss safe (DESIGN.md).
"""

import os

import vfs

READSIZE = 32  # MicroPython's defaults
PROGSIZE = 256  # RP2040 flash programs 256-byte pages; LittleFS inlines files to 512 B
LOOKAHEAD = 32


class NotLittleFS(OSError):
    """The device holds something that is neither LittleFS v2 nor blank."""


def blank(bdev, block_size):
    """True if blocks 0 and 1 (where LittleFS keeps its superblock) are all 0xFF or 0x00."""
    buf = bytearray(256)
    first = -1
    for block in (0, 1):
        for off in range(0, block_size, len(buf)):
            bdev.readblocks(block, buf, off)
            for b in buf:
                if first < 0:
                    if b != 0xFF and b != 0x00:
                        return False
                    first = b
                elif b != first:
                    return False
    return True


def mount_lfs(bdev, path, readsize=READSIZE, progsize=PROGSIZE, lookahead=LOOKAHEAD):
    """Mount bdev at path (formatting a blank device first); return the filesystem."""
    try:
        fs = vfs.VfsLfs2(bdev, readsize=readsize, progsize=progsize, lookahead=lookahead)
    except OSError:
        if not blank(bdev, bdev.ioctl(5, 0)):
            raise NotLittleFS(
                "flash is not LittleFS v2 and not blank: not formatting it (it may hold "
                "ratings); see docs/technician.md"
            )
        vfs.VfsLfs2.mkfs(bdev, readsize=readsize, progsize=progsize, lookahead=lookahead)
        fs = vfs.VfsLfs2(bdev, readsize=readsize, progsize=progsize, lookahead=lookahead)
    vfs.mount(fs, path)
    return fs


def mount(storage):
    """Mount the board profile's `storage` section; return its mount point.

    With an `image` (the unix-sim profile) the flash is that file; on a board the
    port's boot code has already mounted its flash at `mount`, and this only checks it.
    """
    path = storage["mount"]
    image = storage.get("image")
    if image is None:
        os.statvfs(path)  # mounted by the port at boot; OSError if it is not there
        return path
    from firmware.storage.blockdev import FileBlockDev

    cut = image.rfind("/")
    if cut > 0:
        try:  # noqa: SIM105 (MicroPython has no contextlib)
            os.mkdir(image[:cut])  # the simulator's per-device directory, e.g. sim/
        except OSError:
            pass  # exists
    block_size = storage["block_size"]
    bdev = FileBlockDev(image, block_size, storage["size"] // block_size)
    mount_lfs(bdev, path, storage["readsize"], storage["progsize"], storage["lookahead"])
    return path
