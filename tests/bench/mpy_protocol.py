"""Protocol benchmark, MicroPython side (run by bench_protocol.py under the unix port).

Prints one line per figure: "name value". Times are microseconds per operation,
best of REPEATS runs of N operations; heap figures are bytes.
"""

import gc
import sys
import time

gc.collect()
_BEFORE = gc.mem_alloc()
from protocol.framing import FrameDecoder, decode_frame, encode_frame  # noqa: E402
from protocol.messages import DOWN, UP  # noqa: E402
from protocol.packet import Signer, open_packet, seal  # noqa: E402

gc.collect()
IMPORT_HEAP = gc.mem_alloc() - _BEFORE

# tests/portable/examples.py, built with the modules; imported after the measurement.
from examples import example  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
REPEATS = 5
KEY = bytes(range(32))


def best(fn):
    t = None
    for _ in range(REPEATS):
        gc.collect()
        t0 = time.ticks_us()
        fn()
        dt = time.ticks_diff(time.ticks_us(), t0)
        t = dt if t is None or dt < t else t
    return t / N


def main():
    signer = Signer(KEY)
    msg = example("rating")

    def encode_path():
        for i in range(N):
            encode_frame(seal(msg, signer, UP, 3, i + 1))

    frame = encode_frame(seal(msg, signer, UP, 3, 1))
    body = frame[:-1]

    def decode_path():
        for _ in range(N):
            open_packet(decode_frame(body), signer, UP)

    print("encode_sign_frame_us", best(encode_path))
    print("deframe_verify_decode_us", best(decode_path))
    print("rating_wire_bytes", len(frame))
    gc.collect()
    a = gc.mem_alloc()
    gc.disable()
    open_packet(decode_frame(body), signer, UP)
    b = gc.mem_alloc()
    gc.enable()
    print("rating_decode_heap", b - a)
    print("import_heap", IMPORT_HEAP)

    # Heap while decoding the largest frame the catalogue allows, through the
    # stream decoder as a device receives it. With the GC disabled nothing is
    # freed, so the bytes allocated are an upper bound on the peak.
    with open(sys.argv[2], "rb") as f:
        big = f.read()
    gc.collect()
    a = gc.mem_alloc()
    decoder = FrameDecoder()
    gc.collect()
    b = gc.mem_alloc()
    gc.disable()
    decoder.feed(big)
    packet = decoder.next_packet()
    m = open_packet(packet, signer, DOWN)
    c = gc.mem_alloc()
    gc.enable()
    assert m.name == "config"
    print("max_frame_bytes", len(big))
    print("decoder_buffer_heap", b - a)
    print("max_frame_decode_heap", c - b)


main()
