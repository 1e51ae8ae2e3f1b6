# MicroPython code: %-formatting works on every build (f-strings are an option) and there
# is no contextlib, as for protocol/ and firmware/ in pyproject.toml.
"""Torn writes: cut the power at every byte of every flash write an outbox operation makes.

    micropython -X heapsize=1m torn.py [--stride=N] [scenario ...]

For each scenario: build a base image, dry-run the operation to log its flash writes
(programs and erases), then for every cut point (every byte offset of every program;
start, 1 byte, half and all-but-one byte of every erase; and after the last write)
restore the base image, run the operation with the power cut there, power on, remount
and check:

- the counter never goes back: next_seq() >= the next seq before the operation, and
  above a seq add() returned;
- every rating held before is still held, byte for byte, unless the operation was an
  ack covering it or the overflow policy dropped it, and then the dropped counter
  accounts for exactly the unacknowledged ones;
- records() returns exactly oldest..next-1, each intact (nothing damaged is returned);
- the outbox still works: one more add() gets next_seq() and survives a reboot.

--stride=N (quick runs) keeps every byte of the "append" scenario, whose one write is
the commit carrying the record, and of the first and last 8 bytes of every write, and
every Nth byte in between elsewhere. Prints one line per scenario ("<name>: <cuts> cuts
ok") and exits 1 on the first failure.
"""

import sys

import vfs
from flashsim import Faulty, RamFlash
from ratings import add, expect

from firmware.storage.mount import mount_lfs
from firmware.storage.outbox import Outbox

MNT = "/torn"
ROOT = MNT + "/outbox"
SEGMENTS = 3
RECORDS = 4
BLOCKS = 24


def umount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


def open_outbox(flash):
    umount()
    mount_lfs(flash, MNT)
    return Outbox(ROOT, SEGMENTS, RECORDS)


def close(ob):
    try:  # after a cut the file may be dirty: closing it fails, as the power is gone
        ob.close()
    except OSError:
        pass


def adds(n):
    def setup(ob):
        for _ in range(n):
            add(ob)

    return setup


def then_ack(setup, seq):
    def both(ob):
        setup(ob)
        ob.ack(seq)

    return both


def interrupted_drop(ob):
    # The state a power cut leaves between the drop's meta write and its unlink.
    for _ in range(12):
        add(ob)
    ob.close()
    with open("%s/%08x" % (ROOT, 1), "rb") as f:
        oldest = f.read()
    add(ob)
    ob.close()
    with open("%s/%08x" % (ROOT, 1), "wb") as f:
        f.write(oldest)
    with open(ROOT + "/meta.tmp", "wb") as f:
        f.write(b"half")


def op_add(ob):
    return ("add", add(ob))


def op_ack(seq):
    def op(ob):
        ob.ack(seq)
        return ("ack", seq)

    return op


def op_reopen(ob):
    Outbox(ROOT, SEGMENTS, RECORDS)  # recovery itself, with the power cut inside it
    return ("reopen", None)


# name, setup, operation, the ack it carries (ratings it may delete), and whether the
# operation runs on an open outbox (False: on the mounted filesystem, opening it itself)
SCENARIOS = (
    ("first-add", adds(0), op_add, 0, True),
    ("append", adds(2), op_add, 0, True),
    ("new-segment-and-collect", then_ack(adds(8), 8), op_add, 8, True),
    ("overflow-drop", adds(12), op_add, 0, True),
    ("ack-deletes-segments", adds(10), op_ack(9), 9, True),
    ("ack-beyond-next", adds(2), op_ack(50), 50, True),
    ("recovery-finishes-a-drop", interrupted_drop, op_reopen, 0, False),
)


class State:
    def __init__(self, ob):
        self.next = ob.next_seq()
        self.oldest = ob.oldest()
        self.dropped = ob.dropped()
        self.held = ob.records(self.oldest, 1000)


def check_held(ob, where):
    """records() is exactly oldest..next-1, each intact; returns them."""
    first = ob.oldest()
    got = ob.records(first, 1000)
    if len(got) != ob.depth() or len(got) != ob.next_seq() - first:
        fail(
            where,
            "held %d records, depth %d, oldest %d, next %d"
            % (len(got), ob.depth(), first, ob.next_seq()),
        )
    for i in range(len(got)):
        if got[i] != expect(first + i):
            fail(where, "record %r is not %r" % (got[i], expect(first + i)))
    return got


def fail(where, what):
    print("FAIL %s: %s" % (where, what))
    sys.exit(1)


def verify(ob, before, result, acked, where):
    nxt = ob.next_seq()
    if nxt < before.next:
        fail(where, "next went back from %d to %d" % (before.next, nxt))
    held = check_held(ob, where)  # consecutive from oldest, each equal to expect(seq)
    oldest = ob.oldest()
    if result is not None and result[0] == "add":
        seq = result[1]
        if seq < oldest or seq >= nxt:
            fail(where, "add() returned %d, but it is not held (%d..%d)" % (seq, oldest, nxt))
    lost = 0
    for rec in before.held:
        seq = rec[0]
        if oldest <= seq < nxt and held[seq - oldest] == rec:
            continue
        if seq >= oldest:
            fail(where, "seq %d vanished from the middle (oldest %d)" % (seq, oldest))
        if seq > acked:
            lost += 1
    if ob.dropped() - before.dropped != lost:
        fail(
            where,
            "%d unacknowledged ratings gone, dropped() grew by %d"
            % (lost, ob.dropped() - before.dropped),
        )


EDGE = 8  # bytes at each end of a write that are always cut, whatever the stride


def cut_points(ops, block_size, stride):
    points = []
    for i in range(len(ops)):
        kind, n = ops[i]
        if kind == "p":
            for off in range(n):
                if stride == 1 or off < EDGE or off >= n - EDGE or off % stride == i % stride:
                    points.append((i, off))
        else:
            for off in (0, 1, block_size // 2, block_size - 1):
                points.append((i, off))
    points.append((len(ops), 0))  # everything written, then the power goes
    return points


def start(flash, pre_open):
    if pre_open:
        return open_outbox(flash)
    umount()
    mount_lfs(flash, MNT)
    return None


def run(name, setup, op, acked, pre_open, ram, flash, stride):
    ram.data[:] = b"\xff" * len(ram.data)
    flash.power_on()
    ob = open_outbox(flash)
    setup(ob)
    close(ob)
    umount()
    base = bytes(ram.data)

    before = State(open_outbox(flash))  # what recovery makes of the base image
    ram.data[:] = base
    ob = start(flash, pre_open)
    flash.log()
    op(ob)
    ops = flash.ops
    flash.power_on()
    if ob is not None:
        close(ob)
    points = cut_points(ops, flash.block_size, 1 if name == "append" else stride)

    for k in range(len(points)):
        point = points[k]
        where = "%s cut %d/%d (write %d, byte %d)" % (name, k, len(points), point[0], point[1])
        ram.data[:] = base
        flash.power_on()
        ob = start(flash, pre_open)
        flash.cut(point[0], point[1])
        try:
            result = op(ob)
        except OSError:
            result = None
        if ob is not None:
            close(ob)
        flash.power_on()
        ob = open_outbox(flash)
        verify(ob, before, result, acked, where)
        seq = ob.next_seq()
        if add(ob) != seq:
            fail(where, "add after recovery did not get next_seq %d" % seq)
        close(ob)
        ob = open_outbox(flash)
        check_held(ob, where + ", after one more add and a reboot")
        if ob.next_seq() != seq + 1:
            fail(where, "next %d after adding %d" % (ob.next_seq(), seq))
        close(ob)
    umount()
    print("%s: %d cuts ok (%d writes)" % (name, len(points), len(ops)))
    return len(points)


def main(args):
    stride = 1
    names = []
    for a in args:
        if a.startswith("--stride="):
            stride = int(a[9:])
        else:
            names.append(a)
    ram = RamFlash(4096, BLOCKS)
    flash = Faulty(ram)
    total = 0
    for name, setup, op, acked, pre_open in SCENARIOS:
        if not names or name in names:
            total += run(name, setup, op, acked, pre_open, ram, flash, stride)
    print("%d cut points, all ok" % total)


main(sys.argv[1:])
