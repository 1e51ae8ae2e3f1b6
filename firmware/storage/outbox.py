"""The durable outbox: every rating the device thanked someone for, kept until the agent has it.

Strategy (DESIGN.md "Device storage", issue 3 "Durable outbox"):

- Records are 32 bytes with a CRC (record.py), appended to segment files in one
  directory. A segment is named by the seq of its first record (`0000a3f0`) and holds at
  most `records` consecutive seqs, so where a seq lives is arithmetic, not an index.
- add() writes the record and flushes the file before it returns; on LittleFS the flush
  is the commit (lfs_file_sync), so a returned seq survives any later power cut. Only
  then may the device say "感谢您的评价".
- The next seq is never written on its own. It is recovered on boot as
  max(floor in `meta`, last valid record's seq + 1). Two rules make that exact:
  the newest segment is never deleted (it holds the highest seq ever returned), and
  every deletion is preceded by a `meta` write whose floor is the next seq. A seq that
  add() returned is therefore always below the recovered next: never reused. A record
  whose add() did not return (power cut mid-write) is not there after reboot, and its
  seq is given to the next rating, so the stream stays gap-free.
- `meta` (atomic.py: written as a copy and renamed over) holds the floor, the agent's
  cumulative ack, the dropped counter and the highest dropped seq. It is written only
  when segments are deleted, dropped or the seq jumps: about once per `records` ratings,
  not per rating (flash is rated ~10k erase cycles). The ack in RAM runs ahead of the
  one in `meta`; after a reboot the device resends from the persisted one and the
  agent deduplicates (the protocol's WELCOME carries the true ack anyway).
- Segments whose seqs are all acknowledged are deleted whole (except the newest).
- Capacity is `segments` x `records` ratings. Overflow policy, when a new segment is
  needed and all are in use: the OLDEST segment is deleted and its unacknowledged
  records are counted in dropped(), which the STATUS heartbeat reports
  (outbox_dropped), mark() shows on the screen, and the agent sees as a Gap at the next
  HELLO (`oldest` jumped). Newest are kept: they are the ratings whose citizens may
  still be at the counter, and a gap at the front is the one the protocol reports.
  The drop is first written to `meta` (dropped count, highest dropped seq) and then the
  file is removed; a power cut in between is finished on the next boot without
  counting twice.
- Recovery on boot reads every segment: a record that is short, fails its CRC, or
  carries the wrong seq ends that segment's valid part, and the segment takes no more
  appends. Which seqs may be given out again depends on what the damage can be:
  a partial record (the file ends inside it) is a write that never completed, so its
  add() never returned and the seq is reused. A whole 32-byte record that fails its
  check may be a returned rating damaged on flash afterwards (LittleFS checks its
  metadata, not file data), so its seq is never reused: the counter is recovered past
  every whole record, max(floor, first seq + whole records). (On LittleFS a flush is
  atomic, so neither should happen; the checks are for flash that lies.) Lost seqs
  are a hole, counted in flash_errors; records() stops at a hole and oldest() skips it
  once everything before it is acknowledged, so a re-HELLO makes the agent report it
  as a Gap. Nothing damaged is ever returned.

RAM: two arrays of `segments` entries, a 32-byte record buffer and a 22-byte meta
buffer, all allocated in the constructor; one file (the newest segment) stays open
while the device runs.
"""

import errno
import os
import struct
from array import array

from firmware.compat import const
from firmware.storage import atomic, record

SEGMENTS = 64  # default N: with RECORDS, 1024 ratings, about a week of a busy window
RECORDS = 16  # default M: 16 x 32 B = 512 B, the most LittleFS keeps inline at progsize 256
# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_RECORDS_MAX = const(255)  # counts live in a bytearray
_U32 = const(0xFFFFFFFF)
_META = const("meta")
_META_MAGIC = const(b"HOB1")  # hcp outbox, format 1
_META_SIZE = const(22)  # magic, floor, ack, dropped, drop_upto (u32 each), CRC-16
_META_FIELDS = const("<IIII")
MARK_NEAR_FULL = 1  # the next new segment will drop the oldest unacknowledged ratings
MARK_DROPPED = 2  # ratings were dropped and the agent has not acknowledged past them


class Outbox:
    """Ratings on flash in seq order, from the oldest unacknowledged to the newest.

    The directory `root` must be on a filesystem that commits on flush (LittleFS v2;
    POSIX for tests). Constructing an Outbox recovers it (see the module docstring).
    """

    def __init__(self, root, segments=SEGMENTS, records=RECORDS):
        if segments < 2:
            raise ValueError("outbox needs at least 2 segments, not %d" % segments)
        if records < 1 or records > _RECORDS_MAX:
            raise ValueError("outbox records per segment %d not in 1..255" % records)
        self.root = root
        self.segments = segments
        self.records_per_segment = records
        self.flash_errors = 0  # failed writes and damaged records found (STATUS errors[4])
        self.repaired = 0  # segments whose tail was damaged, seen at the last recovery
        self._first = array("I", bytes(4 * segments))  # first seq of each live segment
        self._count = bytearray(segments)  # valid records in each
        self._n = 0  # live segments, oldest first
        self._sealed = False  # the newest segment takes no more appends
        self._f = None  # the newest segment, open for appending
        self._buf = bytearray(record.SIZE)
        self._meta = bytearray(_META_SIZE)
        self._next = 0
        self._floor = 0
        self._ack = 0
        self._dropped = 0
        self._drop_upto = 0
        self._recover()

    # ---- the application's interface ----
    def add(self, invite, level, reasons, time, ticks, boot, flags):
        """Store one rating durably and return its seq.

        ValueError for a bad field (before anything is written); OSError if flash
        failed, in which case the rating was not stored and the seq will be reused.
        """
        seq = self._next
        record.pack(self._buf, seq, invite, level, reasons, time, ticks, boot, flags)
        new = self._need_segment(seq)
        if new:
            self._start_segment(seq)
        elif self._f is None:
            self._f = open(self._path(seq - self._count[self._n - 1]), "ab")  # noqa: SIM115
        try:
            self._f.write(self._buf)
            self._f.flush()  # LittleFS: lfs_file_sync, the commit
        except OSError:
            if not self._write_failed(seq):
                raise
        self._count[self._n - 1] += 1
        self._next = seq + 1
        if new:
            self._collect()  # after the new record is durable: it now holds the top seq
        return seq

    def records(self, seq, limit):
        """Up to `limit` records from seq on, consecutive, stopping at a hole or the end.

        Each record is a tuple in RATING field order: (seq, invite, level, reasons,
        time, ticks, boot, flags).
        """
        out = []
        i = self._find(seq)
        buf = self._buf
        while i >= 0 and i < self._n and len(out) < limit:
            first = self._first[i]
            end = first + self._count[i]
            if seq < first or seq >= end:
                break  # a hole
            with open(self._path(first), "rb") as f:
                f.seek((seq - first) * record.SIZE)
                while seq < end and len(out) < limit:
                    if f.readinto(buf) != record.SIZE or not record.valid(buf, seq):
                        # Damaged since boot: from here on this segment is a hole.
                        self.flash_errors += 1
                        self._count[i] = seq - first
                        if i == self._n - 1:
                            self._seal()
                        return out
                    out.append(record.unpack(buf))
                    seq += 1
            i += 1
        return out

    def ack(self, seq):
        """The agent has durably stored every rating up to seq (cumulative)."""
        if seq <= self._ack:
            return
        self._ack = seq
        if seq >= self._next:
            # The agent holds seqs this outbox never issued (flash wiped without
            # re-provisioning): never issue them again.
            self._next = seq + 1
            self._write_meta()
        self._collect()

    def set_next(self, seq):
        """Provisioning (seq_base): continue numbering at seq, which must not go back."""
        if seq < self._next:
            raise ValueError("outbox next seq %d would go back from %d" % (seq, self._next))
        self._next = seq
        self._write_meta()

    def next_seq(self):
        """The seq the next add() will return (HELLO `next`)."""
        return self._next

    def oldest(self):
        """The oldest unacknowledged seq held, or next_seq() when none (HELLO `oldest`)."""
        low = self._ack + 1
        for i in range(self._n):
            c = self._count[i]
            if c and self._first[i] + c > low:
                return max(self._first[i], low)
        return self._next

    def depth(self):
        """Unacknowledged ratings held (HELLO and STATUS `outbox_depth`)."""
        low = self._ack + 1
        n = 0
        for i in range(self._n):
            first = self._first[i]
            end = first + self._count[i]
            if end > low:
                n += end - max(first, low)
        return n

    def dropped(self):
        """Ratings lost to the overflow policy, ever (STATUS `outbox_dropped`)."""
        return self._dropped

    def capacity(self):
        return self.segments * self.records_per_segment

    def mark(self):
        """What the screen should flag: MARK_NEAR_FULL and/or MARK_DROPPED bits (0: none)."""
        m = 0
        if self._ack < self._drop_upto:
            m |= MARK_DROPPED
        if self.depth() > (self.segments - 1) * self.records_per_segment:
            m |= MARK_NEAR_FULL
        return m

    def close(self):
        if self._f is not None:
            f = self._f
            self._f = None
            f.close()

    # ---- segments ----
    def _path(self, first):
        return "%s/%08x" % (self.root, first)

    def _find(self, seq):
        for i in range(self._n):
            if self._first[i] <= seq < self._first[i] + self._count[i]:
                return i
        return -1

    def _need_segment(self, seq):
        n = self._n
        if n == 0 or self._sealed:
            return True
        c = self._count[n - 1]
        return c >= self.records_per_segment or self._first[n - 1] + c != seq

    def _start_segment(self, seq):
        self.close()
        n = self._n
        if n and self._count[n - 1] == 0:
            # An empty newest segment (created, then power cut or sealed at once): it
            # holds no rating and may even carry this name.
            self._unlink(self._first[n - 1])
            self._n = n = n - 1
        if n == self.segments:
            self._drop_oldest()
            n = self._n
        self._f = open(self._path(seq), "ab")  # noqa: SIM115 (open while the device runs)
        self._first[n] = seq
        self._count[n] = 0
        self._n = n + 1
        self._sealed = False

    def _drop_oldest(self):
        """Overflow: delete the oldest segment, counting what the agent never acknowledged."""
        first = self._first[0]
        end = first + self._count[0]
        low = max(first, self._ack + 1)
        if end > low:
            self._dropped += end - low
            self._drop_upto = max(self._drop_upto, end - 1)
        self._write_meta()  # before the file goes: a power cut cannot lose the count
        self._unlink(first)
        self._shift(1)

    def _collect(self):
        """Delete the oldest segments whose ratings are all acknowledged (never the newest)."""
        k = 0
        while k < self._n - 1 and self._first[k] + self._count[k] - 1 <= self._ack:
            k += 1
        if k == 0:
            return
        self._write_meta()  # floor and ack first: then the files may go
        for j in range(k):
            self._unlink(self._first[j])
        self._shift(k)

    def _shift(self, k):
        n = self._n
        for j in range(k, n):
            self._first[j - k] = self._first[j]
            self._count[j - k] = self._count[j]
        self._n = n - k

    def _unlink(self, first):
        try:
            os.remove(self._path(first))
        except OSError as e:
            if e.args[0] != errno.ENOENT:  # a deletion repeated after a power cut
                raise

    def _seal(self):
        self._sealed = True
        self.close()

    def _write_failed(self, seq):
        """A write or flush raised: True if the record is durable anyway, else reseal."""
        self.flash_errors += 1
        f = self._f
        self._f = None
        try:  # noqa: SIM105 (MicroPython has no contextlib)
            f.close()
        except OSError:
            pass
        i = self._n - 1
        first = self._first[i]
        try:
            count, torn, whole = self._scan(first)
        except OSError:
            count, torn, whole = self._count[i], True, 0
        self._count[i] = count
        self._sealed = torn
        if first + count == seq + 1:
            self._count[i] = count - 1  # add() counts it
            return True
        if first + whole > self._next:
            self._next = first + whole  # a whole damaged record: never reuse its seq
        return False

    # ---- meta ----
    def _write_meta(self):
        m = self._meta
        m[0:4] = _META_MAGIC
        struct.pack_into(_META_FIELDS, m, 4, self._next, self._ack, self._dropped, self._drop_upto)
        try:
            atomic.write(self.root + "/" + _META, m)
        except OSError:
            self.flash_errors += 1
            raise
        self._floor = self._next

    def _read_meta(self):
        m = self._meta
        state = atomic.read(self.root + "/" + _META, m)
        if state == atomic.OK and m[0:4] == _META_MAGIC:
            self._floor, self._ack, self._dropped, self._drop_upto = struct.unpack_from(
                _META_FIELDS, m, 4
            )
        elif state != atomic.MISSING:
            # Damaged on flash. The newest segment still holds the top seq, so the
            # counter is safe; the ack and the dropped count restart from 0.
            self.flash_errors += 1

    # ---- recovery ----
    def _recover(self):
        root = self.root
        try:  # noqa: SIM105 (MicroPython has no contextlib)
            os.mkdir(root)
        except OSError:
            pass  # exists
        self._read_meta()
        atomic.discard_tmp(root + "/" + _META)
        firsts = []
        for name in os.listdir(root):
            if len(name) == 8:
                try:  # noqa: SIM105 (MicroPython has no contextlib)
                    firsts.append(int(name, 16))
                except ValueError:
                    pass  # not a segment
        firsts.sort()
        # First read everything and settle the counter; only then write anything.
        counts = bytearray(len(firsts))
        top = self._floor
        torn = False
        for k in range(len(firsts)):
            counts[k], torn, whole = self._scan(firsts[k])
            if torn:
                self.repaired += 1
                self.flash_errors += whole - counts[k]  # whole records that fail: damage
            if firsts[k] + whole > top:
                top = firsts[k] + whole
        if self._ack >= top:
            top = self._ack + 1
        self._next = top
        last = len(firsts) - 1
        for k in range(len(firsts)):
            first = firsts[k]
            if k < last and (counts[k] == 0 or first + counts[k] - 1 <= self._drop_upto):
                # Empty, or dropped before a power cut cut its deletion short.
                self._unlink(first)
                continue
            if self._n == self.segments:
                # More segments than this configuration allows (it was made smaller):
                # the overflow policy applies now. The newest is never the one dropped.
                self._drop_oldest()
            self._first[self._n] = first
            self._count[self._n] = counts[k]
            self._n += 1
        self._sealed = torn  # the newest segment's state (torn: no more appends)

    def _scan(self, first):
        """(valid records, torn, whole records) of a segment file.

        The valid records are the prefix that checks; torn means something follows
        them; whole counts every complete 32-byte record, valid or not.
        """
        buf = self._buf
        count = 0
        whole = 0
        torn = False
        with open(self._path(first), "rb") as f:
            while True:
                n = f.readinto(buf)
                if n != record.SIZE:
                    return count, torn or n > 0, whole
                whole += 1
                if not torn and count < _RECORDS_MAX and record.valid(buf, first + count):
                    count += 1  # (a segment may exceed a smaller new M, up to 255)
                else:
                    torn = True
