"""The "unix ROM": boot the MicroPython unix port the way a board boots.

    micropython firmware/unix_rom.py <flash image>      (or HCP_FLASH_IMAGE)

When started by `python -m simulator.romfs IMAGE ...` (HCP_ROMFS="address:size" of the
mapped image), first mounts that ROMFS partition at /rom, read-only and outside the heap, as
a board mounts its memory-mapped flash: the firmware's bytecode then runs in place instead of
being loaded into the heap (simulator/romfs.py). Mounts the LittleFS v2 image at /flash
(formatting only a blank one: storage/mount.py), puts /flash and /flash/lib first on
sys.path, then /rom and /rom/lib, then runs /flash/boot.py and /flash/main.py
when the image has them, else firmware.boot and firmware.main. The ROM's own modules (the
block device and mount code, imported from /rom or MICROPYPATH) are forgotten once the
flash is mounted, so `firmware` is then imported afresh: from /flash when `hcp flash`
installed it there, else from /rom, else from MICROPYPATH. After provisioning the app
asks for a reboot: the ROM starts a fresh event loop and runs main again, as a board's
reset would.

Geometry is the unix-sim profile's (hardware/boards/unix-sim.json `storage`: the Pico W's
848 KiB in 4 KiB blocks, progsize 256), so a flashed simulator has room for the firmware,
the font and the outbox's full capacity (docs/technician.md "Flash"). An existing image
keeps the size it was made with; HCP_FLASH_SIZE sets a new one's.
"""

import os
import sys

MOUNT = "/flash"
SIZE = 868352  # = unix-sim.json storage.size (tests/firmware_app/test_app_boot.py checks)
BLOCK = 4096  # storage.block_size
READSIZE = 32
PROGSIZE = 256
LOOKAHEAD = 32


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _exec(path):
    with open(path) as f:
        code = f.read()
    exec(code, {"__name__": "__main__"})


def _forget():
    for k in list(sys.modules):
        if k == "firmware" or k.startswith("firmware."):
            del sys.modules[k]


def _mount_romfs():
    spec = os.getenv("HCP_ROMFS")
    if not spec:
        return
    import uctypes
    import vfs

    addr, size = spec.split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(addr), int(size))), "/rom")
    sys.path.insert(0, "/rom/lib")
    sys.path.insert(0, "/rom")


def main():
    _mount_romfs()
    image = sys.argv[1] if len(sys.argv) > 1 else os.getenv("HCP_FLASH_IMAGE")
    if not image:
        print("usage: micropython unix_rom.py <flash image>")
        sys.exit(2)
    from firmware.storage.blockdev import FileBlockDev
    from firmware.storage.mount import mount_lfs

    try:
        size = os.stat(image)[6]
    except OSError:
        size = 0
    size = size or int(os.getenv("HCP_FLASH_SIZE") or SIZE)
    dev = FileBlockDev(image, BLOCK, size // BLOCK)
    mount_lfs(dev, MOUNT, READSIZE, PROGSIZE, LOOKAHEAD)
    del FileBlockDev, mount_lfs
    _forget()
    sys.path.insert(0, MOUNT + "/lib")
    sys.path.insert(0, MOUNT)
    import firmware.storage.blockdev as bd

    bd.MOUNTED = dev  # its wear counters: the control channel's "state"
    import firmware

    if firmware.__file__.startswith(MOUNT) or firmware.__file__.startswith("/rom"):
        print("hcp-sim: firmware from", firmware.__file__)
    if _exists(MOUNT + "/boot.py"):
        _exec(MOUNT + "/boot.py")
    else:
        from firmware import boot

        boot.check(MOUNT)
    while True:
        if _exists(MOUNT + "/main.py"):
            _exec(MOUNT + "/main.py")
            return
        import asyncio

        import firmware.main

        if firmware.main.run(MOUNT) != "reboot":
            return
        asyncio.new_event_loop()  # a reset: the old loop's tasks are gone


main()
