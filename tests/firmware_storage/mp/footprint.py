# MicroPython code: %-formatting works on every build (f-strings are an option).
"""Heap the outbox costs under MicroPython, from the .mpy files a device loads.

    micropython -X heapsize=64k footprint.py IMAGE

Prints `name bytes` lines:
    import_storage   heap taken by importing firmware.storage.outbox (and record, atomic,
                     protocol.crc) after the garbage collector ran
    import_mount     the same for blockdev and mount (unix-sim only; boards have their own)
    mount_lfs        LittleFS mounted on the image: its caches and lookahead buffer
    outbox_open      an Outbox with the unix-sim profile's 64 x 16 after recovery, with its
                     newest segment open (the file's LittleFS cache included)
    add_alloc        heap allocated by one add() with the collector off (garbage included)
    records_alloc    heap allocated by records(seq, 8), the session window, collector off
"""

import gc
import sys

gc.collect()
base = gc.mem_alloc()
from firmware.storage.outbox import Outbox  # noqa: E402

gc.collect()
after_outbox = gc.mem_alloc()
from firmware.storage.blockdev import FileBlockDev  # noqa: E402
from firmware.storage.mount import mount_lfs  # noqa: E402

gc.collect()
after_mount_import = gc.mem_alloc()
mount_lfs(FileBlockDev(sys.argv[1], 4096, 128), "/flash")
gc.collect()
after_mount = gc.mem_alloc()
ob = Outbox("/flash/outbox", 64, 16)
ob.add(None, 1, [], None, 0, 1, 0)  # opens the newest segment
gc.collect()
after_open = gc.mem_alloc()
gc.disable()
a = gc.mem_alloc()
ob.add(77, 4, [501, 502], 1790000000, 123456, 1, 0)
add_alloc = gc.mem_alloc() - a
for _ in range(8):
    ob.add(None, 1, [], None, 0, 1, 0)
a = gc.mem_alloc()
ob.records(ob.oldest(), 8)
records_alloc = gc.mem_alloc() - a
gc.enable()
print("import_storage %d" % (after_outbox - base))
print("import_mount %d" % (after_mount_import - after_outbox))
print("mount_lfs %d" % (after_mount - after_mount_import))
print("outbox_open %d" % (after_open - after_mount))
print("add_alloc %d" % add_alloc)
print("records_alloc %d" % records_alloc)
