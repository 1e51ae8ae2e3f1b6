"""The "unix ROM": boot the MicroPython unix port the way a board boots.

    micropython firmware/unix_rom.py <flash image>      (or HCP_FLASH_IMAGE)

Mounts the LittleFS v2 image at /flash (formatting only a blank one: storage/mount.py),
puts /flash and /flash/lib first on sys.path, then runs /flash/boot.py and /flash/main.py
when the image has them (what `hcp flash` installs with mpremote), else firmware.boot and
firmware.main from MICROPYPATH. After provisioning the app asks for a reboot: the ROM
starts a fresh event loop and runs main again, as a board's reset would.
Geometry is the unix-sim profile's (512 KiB, 4 KiB blocks, progsize 256).
"""

import os
import sys

MOUNT = "/flash"
SIZE = 524288
BLOCK = 4096


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


def main():
    image = sys.argv[1] if len(sys.argv) > 1 else os.getenv("HCP_FLASH_IMAGE")
    if not image:
        print("usage: micropython unix_rom.py <flash image>")
        sys.exit(2)
    import firmware.storage.blockdev as bd
    from firmware.storage.blockdev import FileBlockDev
    from firmware.storage.mount import mount_lfs

    size = int(os.getenv("HCP_FLASH_SIZE") or SIZE)
    bd.MOUNTED = FileBlockDev(image, BLOCK, size // BLOCK)  # its wear counters: control "state"
    mount_lfs(bd.MOUNTED, MOUNT, 32, 256, 32)
    sys.path.insert(0, MOUNT + "/lib")
    sys.path.insert(0, MOUNT)
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
