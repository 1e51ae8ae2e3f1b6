# MicroPython code: %-formatting works on every build (f-strings are an option), and
# there is no contextlib.
"""Outbox benchmark, MicroPython side (run by bench_outbox.py under the unix port).

    micropython mpy_outbox.py DIR N PROGSIZE

Mounts a fresh LittleFS image in DIR (FileBlockDev: 4096-byte blocks, 512 KiB, the
unix-sim profile's readsize 32 and lookahead 32, the given progsize), then measures, for
N ratings each:

    base_*     baseline 1: the same 32-byte record appended to one file and flushed
    rot_*      baseline 2: the same, but a new file every 16 records and the one before
               deleted: the outbox's file pattern without its bookkeeping
    up_*       Outbox.add() with the link up: the agent acknowledges each rating at once
    down_*     Outbox.add() with the link down: nothing acknowledged; the outbox fills
               to its capacity and then drops its oldest segment per new one

Figures per rating: mean, median and 99th-percentile latency in microseconds (time of
the call, ticks_us), flash bytes programmed and blocks erased. Then:

    boot_full_us     recovering a full outbox (64 segments x 16) at boot
    records8_us      records(oldest, 8): the session's transmit window

Prints one `name value` line per figure.
"""

import gc
import os
import sys
import time

import vfs

from firmware.storage.blockdev import FileBlockDev
from firmware.storage.mount import mount_lfs
from firmware.storage.outbox import Outbox, record

BLOCKS = 128
SEGMENTS = 64
RECORDS = 16


def fresh(directory, name, progsize):
    path = "%s/%s.img" % (directory, name)
    try:
        os.remove(path)
    except OSError:
        pass
    try:
        vfs.umount("/b")
    except OSError:
        pass
    bd = FileBlockDev(path, 4096, BLOCKS)
    mount_lfs(bd, "/b", 32, progsize, 32)
    return bd


def stats(name, times, bd, p0, e0, n):
    times.sort()
    total = 0
    for t in times:
        total += t
    print("%s_mean_us %d" % (name, total // n))
    print("%s_p50_us %d" % (name, times[n // 2]))
    print("%s_p99_us %d" % (name, times[(n * 99) // 100]))
    print("%s_bytes %d" % (name, (bd.programmed - p0) // n))
    print("%s_erases_x1000 %d" % (name, (bd.erased - e0) * 1000 // n))


def baseline(directory, n, progsize):
    bd = fresh(directory, "base", progsize)
    buf = bytearray(record.SIZE)
    record.pack(buf, 1, 77, 2, [], 1790000000, 123456, 1, 0)
    times = []
    f = open("/b/ratings", "ab")  # noqa: SIM115
    p0, e0 = bd.programmed, bd.erased
    for _ in range(n):
        t = time.ticks_us()
        f.write(buf)
        f.flush()
        times.append(time.ticks_diff(time.ticks_us(), t))
    f.close()
    stats("base", times, bd, p0, e0, n)


def rotating(directory, n, progsize):
    bd = fresh(directory, "rot", progsize)
    buf = bytearray(record.SIZE)
    record.pack(buf, 1, 77, 2, [], 1790000000, 123456, 1, 0)
    times = []
    f = None
    p0, e0 = bd.programmed, bd.erased
    for i in range(n):
        t = time.ticks_us()
        if i % RECORDS == 0:
            if f is not None:
                f.close()
            f = open("/b/%08x" % i, "ab")  # noqa: SIM115
            if i:
                os.remove("/b/%08x" % (i - RECORDS))
        f.write(buf)
        f.flush()
        times.append(time.ticks_diff(time.ticks_us(), t))
    f.close()
    stats("rot", times, bd, p0, e0, n)


def outbox(directory, n, progsize, link_up):
    name = "up" if link_up else "down"
    bd = fresh(directory, name, progsize)
    ob = Outbox("/b/outbox", SEGMENTS, RECORDS)
    times = []
    p0, e0 = bd.programmed, bd.erased
    for i in range(n):
        t = time.ticks_us()
        seq = ob.add(77, 2, [], 1790000000, 123456 + i, 1, 0)
        times.append(time.ticks_diff(time.ticks_us(), t))
        if link_up:
            ob.ack(seq)  # the agent's ack arrives between presses
    stats(name, times, bd, p0, e0, n)
    return bd, ob


def main(directory, n, progsize):
    gc.collect()
    baseline(directory, n, progsize)
    rotating(directory, n, progsize)
    outbox(directory, n, progsize, True)
    _, ob = outbox(directory, max(n, SEGMENTS * RECORDS + 1), progsize, False)
    print("down_dropped %d" % ob.dropped())
    ob.close()
    vfs.umount("/b")
    bd = FileBlockDev("%s/down.img" % directory, 4096, BLOCKS)
    mount_lfs(bd, "/b", 32, progsize, 32)
    t = time.ticks_us()
    ob = Outbox("/b/outbox", SEGMENTS, RECORDS)
    print("boot_full_us %d" % time.ticks_diff(time.ticks_us(), t))
    print("boot_full_depth %d" % ob.depth())
    best = None
    for _ in range(20):
        t = time.ticks_us()
        ob.records(ob.oldest(), 8)
        d = time.ticks_diff(time.ticks_us(), t)
        best = d if best is None or d < best else best
    print("records8_us %d" % best)


main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
