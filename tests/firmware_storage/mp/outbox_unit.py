# MicroPython code: %-formatting works on every build (f-strings are an option) and there
# is no contextlib, as for protocol/ and firmware/ in pyproject.toml.
"""Every operation of firmware/storage, under the real MicroPython unix port.

Run by tests/firmware_storage/test_storage_micropython.py through tests/portable/run.py
(each test_* function passes by returning). Flash is flashsim.RamFlash mounted with
LittleFS v2 as the unix-sim profile mounts it (4096-byte blocks, progsize 256), or
FileBlockDev on an image under $HCP_TMP where the file matters.
"""

import os

import vfs
from flashsim import Faulty, RamFlash
from ratings import add as add_rating
from ratings import expect, fields

from firmware.storage import atomic, record
from firmware.storage.blockdev import FileBlockDev
from firmware.storage.counter import Counter
from firmware.storage.mount import NotLittleFS, blank, mount_lfs
from firmware.storage.outbox import MARK_DROPPED, MARK_NEAR_FULL, Outbox

MNT = "/t"
ROOT = MNT + "/outbox"
TMP = os.getenv("HCP_TMP") or "/tmp"


def _umount():
    try:
        vfs.umount(MNT)
    except OSError:
        pass


_images = [0]


def image(blocks=24):
    """A new flash image file (the unix-sim device), wrapped so tests can cut the power."""
    _images[0] += 1
    path = "%s/unit-%d.img" % (TMP, _images[0])
    try:
        os.remove(path)
    except OSError:
        pass
    return Faulty(FileBlockDev(path, 4096, blocks))


def fresh(segments=3, records=4):
    _umount()
    flash = image()
    mount_lfs(flash, MNT)
    return flash, Outbox(ROOT, segments, records)


def reboot(flash, ob, segments=3, records=4):
    ob.close()
    _umount()
    mount_lfs(flash, MNT)
    return Outbox(ROOT, segments, records)


def add(ob, seq_expected=None):
    seq = ob.next_seq()
    got = add_rating(ob)
    assert got == seq, (got, seq)
    if seq_expected is not None:
        assert got == seq_expected, (got, seq_expected)
    return got


def check_held(ob):
    """records() returns exactly oldest..next-1, each with its own fields."""
    first = ob.oldest()
    got = ob.records(first, 10000)
    assert len(got) == ob.depth() == ob.next_seq() - first, (len(got), ob.depth(), first)
    for i in range(len(got)):
        assert got[i] == expect(first + i), (got[i], expect(first + i))


def segment_files():
    out = []
    for name in os.listdir(ROOT):
        if len(name) == 8:
            out.append(int(name, 16))
    out.sort()
    return out


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


# ---- record ----
def test_record_roundtrip_edges():
    buf = bytearray(record.SIZE)
    cases = (
        (1, None, 1, [], None, 0, 0, 0),
        (0xFFFFFFFF, 0xFFFFFFFF, 5, [0, 1, 65535, 9], 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0x3F),
        (12, 0, 4, [501], 0, 0, 1, 0x08),
    )
    for c in cases:
        record.pack(buf, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
        assert record.valid(buf, c[0])
        assert record.unpack(buf) == c, (record.unpack(buf), c)


def test_record_rejects_damage():
    buf = bytearray(record.SIZE)
    record.pack(buf, 5, 1, 2, [3], 4, 5, 6, 7)
    assert not record.valid(buf, 6)  # wrong position
    for i in range(record.SIZE):
        for bit in (0x01, 0x80):
            buf[i] ^= bit
            assert not record.valid(buf, 5), (i, bit)
            buf[i] ^= bit
    assert not record.valid(bytearray(record.SIZE), 0)  # zeros (CRC init 0xFFFF)
    assert not record.valid(bytearray(b"\xff" * record.SIZE), 0xFFFFFFFF)  # erased


def test_record_validates_fields_before_writing():
    buf = bytearray(record.SIZE)
    bad = (
        (1, None, 0, [], None, 0, 0, 0),
        (1, None, 6, [], None, 0, 0, 0),
        (1, None, 1, [1, 2, 3, 4, 5], None, 0, 0, 0),
        (1, None, 1, [65536], None, 0, 0, 0),
        (1, None, 1, [], None, 0, 0, 64),
        (1, -1, 1, [], None, 0, 0, 0),
        (1, None, 1, [], 1 << 32, 0, 0, 0),
        (1 << 32, None, 1, [], None, 0, 0, 0),
        (1, None, 1, [], None, None, 0, 0),
    )
    for c in bad:
        raises(ValueError, record.pack, buf, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
    assert buf == bytearray(record.SIZE)  # nothing was written


# ---- outbox: add, records, counters ----
def test_fresh_outbox_is_empty():
    _, ob = fresh()
    assert ob.next_seq() == 1  # 0 is never a rating seq: the agent's "nothing committed"
    assert ob.oldest() == 1 and ob.depth() == 0 and ob.dropped() == 0 and ob.mark() == 0
    assert ob.records(1, 8) == []
    assert ob.capacity() == 12


def test_add_returns_consecutive_seqs_and_reads_back():
    flash, ob = fresh(3, 4)
    for s in range(1, 11):
        add(ob, s)
    assert ob.depth() == 10 and ob.oldest() == 1 and ob.next_seq() == 11
    check_held(ob)
    assert ob.records(5, 3) == [expect(5), expect(6), expect(7)]
    assert ob.records(4, 0) == []
    assert ob.records(11, 4) == [] and ob.records(0, 4) == []
    assert segment_files() == [1, 5, 9]
    ob = reboot(flash, ob)
    check_held(ob)
    assert ob.next_seq() == 11


def test_add_refuses_bad_fields_without_writing():
    flash, ob = fresh()
    add(ob)
    before = flash.programmed
    raises(ValueError, ob.add, None, 9, [], None, 0, 0, 0)
    raises(ValueError, ob.add, None, 1, [1, 2, 3, 4, 5], None, 0, 0, 0)
    assert flash.programmed == before and ob.next_seq() == 2
    add(ob, 2)


def test_add_is_durable_when_it_returns():
    # A power cut right after add() returns: the flash stops persisting anything.
    flash, ob = fresh()
    add(ob)
    add(ob)
    flash.cut(0, 0)
    ob = reboot(flash, ob)
    flash.power_on()
    assert ob.next_seq() == 3
    check_held(ob)


# ---- ack ----
def test_ack_is_cumulative_and_deletes_whole_segments():
    flash, ob = fresh(3, 4)
    for _ in range(10):
        add(ob)
    ob.ack(5)
    assert segment_files() == [5, 9] and ob.oldest() == 6 and ob.depth() == 5
    ob.ack(3)  # an older ack changes nothing
    assert ob.oldest() == 6
    ob.ack(9)
    assert segment_files() == [9] and ob.oldest() == 10 and ob.depth() == 1
    ob.ack(10)
    # The newest segment is never deleted: it holds the highest seq ever given out.
    assert segment_files() == [9] and ob.depth() == 0 and ob.oldest() == ob.next_seq() == 11
    assert ob.records(ob.oldest(), 8) == []
    ob = reboot(flash, ob)
    # ack(9) deleted a segment, so meta holds 9; ack(10) deleted nothing and was not
    # written (flash wear): 10 is offered again, and the agent deduplicates it.
    assert ob.next_seq() == 11 and ob.oldest() == 10 and ob.depth() == 1
    ob.ack(10)
    add(ob, 11)
    add(ob, 12)
    ob.ack(12)
    assert segment_files() == [9]  # full and acknowledged, but still the newest
    add(ob, 13)  # a new segment: now the acknowledged one goes
    assert segment_files() == [13]


def test_ack_survives_reboot_when_segments_were_deleted():
    flash, ob = fresh(3, 4)
    for _ in range(10):
        add(ob)
    ob.ack(8)  # deletes 1..4 and 5..8, writing meta first
    ob = reboot(flash, ob)
    assert ob.oldest() == 9 and ob.depth() == 2
    check_held(ob)


def test_ack_in_ram_only_is_resent_after_reboot():
    # An ack that deleted nothing is not written (flash wear): after a reboot the
    # device offers those ratings again and the agent deduplicates them.
    flash, ob = fresh(3, 4)
    for _ in range(3):
        add(ob)
    ob.ack(2)
    assert ob.oldest() == 3
    ob = reboot(flash, ob)
    assert ob.oldest() == 1 and ob.depth() == 3
    check_held(ob)


def test_ack_beyond_next_never_reuses_those_seqs():
    flash, ob = fresh(3, 4)
    add(ob)
    ob.ack(20)  # the agent holds seqs this flash never issued (wiped device)
    assert ob.next_seq() == 21 and ob.depth() == 0
    ob = reboot(flash, ob)
    assert ob.next_seq() == 21
    add(ob, 21)
    assert segment_files() == [21]  # segment 1 was acknowledged (ack 20 covers it)
    ob = reboot(flash, ob)
    check_held(ob)
    assert ob.next_seq() == 22


def test_set_next_for_provisioning():
    flash, ob = fresh()
    add(ob)
    ob.set_next(100)
    raises(ValueError, ob.set_next, 50)
    ob = reboot(flash, ob)
    assert ob.next_seq() == 100
    add(ob, 100)


# ---- overflow ----
def test_overflow_drops_the_oldest_segment_and_counts_it():
    flash, ob = fresh(3, 4)
    for _ in range(8):
        add(ob)
    assert ob.mark() == 0
    for _ in range(4):
        add(ob)
    assert ob.depth() == 12 and ob.mark() == MARK_NEAR_FULL
    add(ob, 13)
    assert ob.dropped() == 4 and ob.oldest() == 5 and ob.depth() == 9
    assert ob.mark() == MARK_DROPPED | MARK_NEAR_FULL
    assert segment_files() == [5, 9, 13]
    check_held(ob)
    ob = reboot(flash, ob)
    assert ob.dropped() == 4 and ob.oldest() == 5
    assert ob.mark() == MARK_DROPPED | MARK_NEAR_FULL
    # The agent learns of the gap from HELLO (oldest 5) and acknowledges past it.
    ob.ack(6)
    assert ob.mark() == 0 and ob.dropped() == 4


def test_overflow_counts_only_unacknowledged_ratings():
    flash, ob = fresh(3, 4)
    for _ in range(12):
        add(ob)
    ob.ack(2)
    add(ob)
    assert ob.dropped() == 2 and ob.oldest() == 5
    ob = reboot(flash, ob)
    assert ob.dropped() == 2


def test_overflow_keeps_dropping_forever_and_counts_stay_exact():
    flash, ob = fresh(3, 4)
    for _ in range(100):
        add(ob)
    assert ob.dropped() == 100 - 12 + (12 - ob.depth())
    assert ob.depth() == ob.next_seq() - ob.oldest()
    check_held(ob)
    ob = reboot(flash, ob)
    check_held(ob)


def test_smaller_configuration_applies_the_overflow_policy_at_boot():
    flash, ob = fresh(4, 4)
    for _ in range(16):
        add(ob)
    ob = reboot(flash, ob, 3, 4)
    assert ob.dropped() == 4 and ob.oldest() == 5 and ob.next_seq() == 17
    check_held(ob)


# ---- damage and recovery ----
def _newest_path():
    return "%s/%08x" % (ROOT, segment_files()[-1])


def test_partial_last_record_is_discarded_at_every_byte():
    # A write that ended inside a record (possible on flash that does not commit
    # atomically; LittleFS does) never returned, so its seq is given out again.
    for cut in range(1, record.SIZE):
        flash, ob = fresh(3, 4)
        add(ob)
        add(ob)
        buf = bytearray(record.SIZE)
        f = fields(3)
        record.pack(buf, 3, f[0], f[1], f[2], f[3], f[4], f[5], f[6])
        ob.close()
        with open(_newest_path(), "ab") as out:
            out.write(memoryview(buf)[:cut])
        ob = reboot(flash, ob)
        assert ob.next_seq() == 3 and ob.depth() == 2 and ob.repaired == 1, cut
        check_held(ob)
        add(ob, 3)  # sealed segment: a new one starts at 3
        assert segment_files() == [1, 3]
        ob = reboot(flash, ob)
        check_held(ob)
        assert ob.next_seq() == 4


def test_damaged_whole_record_is_never_returned_and_its_seq_never_reused():
    flash, ob = fresh(3, 4)
    for _ in range(3):
        add(ob)
    ob.close()
    with open(_newest_path(), "rb") as f:
        data = bytearray(f.read())
    data[2 * record.SIZE + 9] ^= 0x10  # bit rot in seq 3, after its add() returned
    with open(_newest_path(), "wb") as f:
        f.write(data)
    ob = reboot(flash, ob)
    assert ob.next_seq() == 4 and ob.flash_errors == 1  # 3 may be at the agent already
    assert ob.records(1, 8) == [expect(1), expect(2)]
    ob.ack(2)
    assert ob.oldest() == 4 and ob.depth() == 0  # the hole: a re-HELLO reports a Gap
    add(ob, 4)
    assert ob.oldest() == 4 and ob.records(4, 8) == [expect(4)]


def test_damage_found_while_reading_makes_a_hole():
    _, ob = fresh(3, 4)
    for _ in range(6):
        add(ob)
    with open("%s/%08x" % (ROOT, 1), "rb") as f:
        data = bytearray(f.read())
    data[record.SIZE + 3] ^= 1  # seq 2
    with open("%s/%08x" % (ROOT, 1), "wb") as f:
        f.write(data)
    assert ob.records(1, 8) == [expect(1)]
    assert ob.flash_errors == 1 and ob.records(2, 8) == []
    ob.ack(1)
    assert ob.oldest() == 5 and ob.records(5, 8) == [expect(5), expect(6)]


def test_empty_segment_left_by_a_power_cut_is_reused():
    flash, ob = fresh(3, 4)
    for _ in range(4):
        add(ob)
    ob.close()
    with open("%s/%08x" % (ROOT, 5), "wb"):
        pass  # created, then the power failed before the record was committed
    ob = reboot(flash, ob)
    assert ob.next_seq() == 5 and ob.depth() == 4
    add(ob, 5)
    assert segment_files() == [1, 5]
    ob = reboot(flash, ob)
    check_held(ob)


def test_interrupted_drop_is_finished_without_counting_twice():
    flash, ob = fresh(3, 4)
    for _ in range(12):
        add(ob)
    ob.close()
    with open("%s/%08x" % (ROOT, 1), "rb") as f:
        oldest = f.read()
    add(ob, 13)  # drops 1..4
    ob.close()
    with open("%s/%08x" % (ROOT, 1), "wb") as f:
        f.write(oldest)  # as if the power failed after meta was written, before unlink
    ob = reboot(flash, ob)
    assert ob.dropped() == 4 and ob.oldest() == 5 and segment_files() == [5, 9, 13]


def test_meta_tmp_left_by_a_power_cut_is_discarded():
    flash, ob = fresh(3, 4)
    for _ in range(10):
        add(ob)
    ob.ack(8)
    ob.close()
    with open(ROOT + "/meta.tmp", "wb") as f:
        f.write(b"half")
    ob = reboot(flash, ob)
    assert ob.oldest() == 9 and "meta.tmp" not in os.listdir(ROOT)


def test_damaged_meta_falls_back_to_the_newest_segment():
    flash, ob = fresh(3, 4)
    for _ in range(10):
        add(ob)
    ob.ack(8)
    ob.close()
    with open(ROOT + "/meta", "wb") as f:
        f.write(b"\x00" * 22)
    ob = reboot(flash, ob)
    assert ob.next_seq() == 11 and ob.flash_errors == 1
    check_held(ob)


def test_transient_write_error_loses_nothing():
    flash, ob = fresh(3, 4)
    add(ob)
    flash.fail_writes = 1
    raises(OSError, add, ob)
    assert ob.next_seq() == 2 and ob.flash_errors >= 1
    add(ob, 2)  # the seq that failed is given to the next rating
    for _ in range(5):
        add(ob)
    ob = reboot(flash, ob)
    check_held(ob)
    assert ob.next_seq() == 8


# ---- mount, block device, counter ----
def test_mount_formats_only_a_blank_device():
    flash = image(16)
    assert blank(flash, 4096)
    _umount()
    mount_lfs(flash, MNT)
    with open(MNT + "/x", "wb") as f:
        f.write(b"kept")
    _umount()
    mount_lfs(flash, MNT)
    with open(MNT + "/x", "rb") as f:
        assert f.read() == b"kept"
    _umount()
    garbage = Faulty(RamFlash(4096, 2))
    garbage.inner.data[100] = 0x42  # not blank, not LittleFS
    assert not blank(garbage, 4096)
    e = raises(NotLittleFS, mount_lfs, garbage, MNT)
    assert "not formatting" in str(e)
    assert garbage.inner.data[100] == 0x42 and garbage.programmed == 0


def test_file_block_device_backs_littlefs():
    path = TMP + "/unit-flash.img"
    try:
        os.remove(path)
    except OSError:
        pass
    bd = FileBlockDev(path, 4096, 32)
    assert os.stat(path)[6] == 4096 * 32
    buf = bytearray(16)
    bd.readblocks(3, buf, 100)
    assert buf == b"\xff" * 16
    _umount()
    mount_lfs(bd, MNT)
    ob = Outbox(ROOT, 3, 4)
    for _ in range(6):
        add(ob)
    assert bd.programmed > 0 and bd.erased > 0
    ob.close()
    _umount()
    bd.close()
    bd = FileBlockDev(path, 4096, 32)  # as after a reboot: the same file
    mount_lfs(bd, MNT)
    ob = Outbox(ROOT, 3, 4)
    check_held(ob)
    assert ob.next_seq() == 7
    ob.close()
    _umount()
    bd.close()
    os.remove(path)


def test_counter_only_goes_up_and_survives_reboot():
    flash, ob = fresh()
    c = Counter(MNT + "/boot")
    assert c.value() == 0
    assert c.bump() == 1 and c.bump() == 2
    assert c.bump(at_least=10) == 10 and c.bump(at_least=3) == 11
    ob = reboot(flash, ob)
    assert Counter(MNT + "/boot").value() == 11
    with open(MNT + "/boot", "r+b") as f:
        f.write(b"\x00")
    raises(OSError, Counter, MNT + "/boot")


def test_atomic_read_states():
    fresh()
    buf = bytearray(6)
    assert atomic.read(MNT + "/none", buf) == atomic.MISSING
    buf[0] = 9
    atomic.write(MNT + "/a", buf)
    out = bytearray(6)
    assert atomic.read(MNT + "/a", out) == atomic.OK and out == buf
    assert atomic.read(MNT + "/a", bytearray(5)) == atomic.CORRUPT  # longer than expected
