"""Device storage: LittleFS on flash, the durable rating outbox, persisted counters.

Import the module you use (`from firmware.storage.outbox import Outbox`): this package
imports nothing itself, so a device pays heap only for the primitives it loads
(STYLE.md habit 5; a lazy attribute table here cost ~1 KB of heap on the unix port).
Each primitive is its own small file:

    record.py    the 32-byte rating record and its CRC
    atomic.py    small files replaced atomically (write a copy, rename over)
    outbox.py    Outbox: segment files, seq counter, ack pointer, overflow policy
    counter.py   Counter: a persisted number that only goes up (the boot session)
    blockdev.py  FileBlockDev: flash as a file, for the unix port and the simulator
    mount.py     mount LittleFS v2 on a block device, formatting only a blank one
"""
