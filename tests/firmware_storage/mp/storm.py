# MicroPython code: %-formatting works on every build (f-strings are an option).
"""A rating storm on the outbox, to be killed (SIGKILL) at random moments and rebooted.

    micropython storm.py IMAGE SEGMENTS RECORDS

Each run is one boot of a device: mount the flash image (FileBlockDev, LittleFS v2 as
the unix-sim profile mounts it), recover the outbox and report it, then add ratings as
fast as it can and acknowledge some of them, printing each as soon as the call returned:

    B <oldest> <next> <dropped> <drop_upto> <held ok 1/0>   after recovery (once)
    A <seq>                                                  add() returned: durable
    K <seq>                                                  the agent acknowledged seq
                                                             (printed before ack(seq))

"held ok" checks every record from oldest to next-1 is there, consecutive and equal to
the rating that was added under its seq. The killer (test_outbox_kills.py) checks that
every seq printed after `A` is held, acknowledged or counted as dropped after the next
boot, and that no seq is ever printed twice. Whether this boot acknowledges promptly (a
link that is up) or not at all (link down, the outbox fills and drops) is random.
"""

import os
import sys

from ratings import add, expect

from firmware.storage.blockdev import FileBlockDev
from firmware.storage.mount import mount_lfs
from firmware.storage.outbox import Outbox

MNT = "/flash"
BLOCKS = 64  # 256 KB


def rand(n):
    return int.from_bytes(os.urandom(2), "little") % n


def held_ok(ob):
    seq = ob.oldest()
    end = ob.next_seq()
    while seq < end:
        got = ob.records(seq, 16)
        if not got:
            return 0
        for rec in got:
            if rec != expect(seq):
                return 0
            seq += 1
    return 1


def main(image, segments, records):
    mount_lfs(FileBlockDev(image, 4096, BLOCKS), MNT)
    ob = Outbox(MNT + "/outbox", segments, records)
    print(
        "B %d %d %d %d %d" % (ob.oldest(), ob.next_seq(), ob.dropped(), ob._drop_upto, held_ok(ob))
    )
    link_up = rand(4) != 0
    while True:
        seq = add(ob)
        print("A %d" % seq)
        if link_up and rand(3) == 0:
            ack = seq - rand(4)
            # Printed first: it is the agent's word that it holds these ratings, true
            # before the outbox acts on it (which may delete them, then be killed).
            print("K %d" % ack)
            ob.ack(ack)


main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
