"""Test ratings whose every field derives from the seq, so a read-back can be checked."""


def fields(seq):
    """(invite, level, reasons, time, ticks, boot, flags) for seq: add()'s arguments."""
    reasons = []
    for i in range(seq % 5):
        reasons.append((seq * 7 + i) & 0xFFFF)
    return (
        None if seq % 3 == 0 else (seq * 11) & 0xFFFFFFFF,  # invite
        1 + seq % 5,  # level
        reasons,
        None if seq % 4 == 0 else (1790000000 + seq) & 0xFFFFFFFF,  # time
        (seq * 1000) & 0xFFFFFFFF,  # ticks
        7,  # boot
        seq & 0x3F,  # flags
    )


def expect(seq):
    """The record records() must return for seq, in RATING field order."""
    f = fields(seq)
    return (seq, f[0], f[1], f[2], f[3], f[4], f[5], f[6])


def add(ob):
    f = fields(ob.next_seq())
    return ob.add(f[0], f[1], f[2], f[3], f[4], f[5], f[6])
