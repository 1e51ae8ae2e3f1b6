"""The serial transport: COBS frames (docs/protocol.md §5) over a UART or, on the unix port,
a pty or tty path.

Strategy: the port is an asyncio stream, so the loop sleeps in poll() until bytes arrive
(no busy polling). On the unix port the tty is opened raw with termios and VMIN = VTIME = 0,
so a read returns what is there instead of blocking for a full buffer; a wake-up with
nothing to read is the other end hanging up (a pty whose master closed): the link is lost.
Writes go out only when the port can take them within _SEND_TIMEOUT_MS; a frame that cannot
is dropped and counted, and the session retransmits (a dead agent must not block the
device). Buffers: one receive chunk buffer and the frame decoder's own, both allocated here.
"""

import asyncio
import errno
import select
import sys

from micropython import const

from firmware.transport import Transport
from protocol.framing import FrameDecoder, encode_frame

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_BAUD = const(115200)  # docs/protocol.md §5
_READ_CHUNK = const(256)
_SEND_TIMEOUT_MS = const(1000)  # 1280 bytes at 9600 baud take ~1.3 s; at 115200 ~0.1 s
_BAUDS = const((9600, 57600, 115200, 230400, 460800, 921600))


class SerialTransport(Transport):
    """cfg: {"type": "serial", "port": path or UART id, "baud": 115200, "tx": pin, "rx": pin}."""

    def __init__(self, cfg):
        self.port = cfg.get("port")
        self.baud = cfg.get("baud", _BAUD)
        if self.baud not in _BAUDS:
            raise ValueError("serial baud %r is not one of %r" % (self.baud, _BAUDS))
        self.tx = cfg.get("tx")
        self.rx = cfg.get("rx")
        self._s = None
        self._stream = None
        self._poll = None
        self._buf = bytearray(_READ_CHUNK)
        self.decoder = FrameDecoder()
        self.tx_dropped = 0  # frames the port could not take in time
        self.rx_bytes = 0
        self.tx_bytes = 0

    async def connect(self):
        if self._s is not None:
            await self.close()
        if sys.platform == "linux":
            self._s = _open_tty(self.port, self.baud)
        else:
            from machine import UART  # a board: the profile's UART

            if self.tx is not None:
                self._s = UART(self.port, self.baud, tx=self.tx, rx=self.rx, timeout=0)
            else:
                self._s = UART(self.port, self.baud, timeout=0)
        self._stream = asyncio.StreamReader(self._s)
        self._poll = select.poll()
        self._poll.register(self._s, select.POLLOUT)
        self.decoder.reset()

    async def send(self, packet):
        s = self._s
        if s is None:
            raise OSError(errno.ENOTCONN)
        frame = encode_frame(packet)
        # Writable within the timeout, else drop: the session resends.
        t = 0
        while True:
            ev = self._poll.poll(0)
            if ev and ev[0][1] & select.POLLOUT:
                break
            if ev and ev[0][1] & (select.POLLHUP | select.POLLERR):
                raise OSError(errno.EIO)
            if t >= _SEND_TIMEOUT_MS:
                self.tx_dropped += 1
                return
            await asyncio.sleep_ms(10)
            t += 10
        n = s.write(frame)
        if n is None:  # a non-blocking port that was full after all
            self.tx_dropped += 1
            return
        self.tx_bytes += n

    async def recv(self):
        dec = self.decoder
        while True:
            p = dec.next_packet()
            if p is not None:
                return p
            if self._stream is None:
                raise OSError(errno.ENOTCONN)
            n = await self._stream.readinto(self._buf)
            if not n:
                raise OSError(errno.EIO)  # woken with nothing: the other end hung up
            self.rx_bytes += n
            dec.feed(bytes(memoryview(self._buf)[:n]))  # fed chunks are kept by reference

    async def close(self):
        s = self._s
        self._s = None
        self._stream = None
        self._poll = None
        if s is not None:
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                s.close()
            except OSError:
                pass


def _open_tty(path, baud):
    """A pty or tty, raw, non-blocking reads (VMIN = VTIME = 0) at baud."""
    import termios

    f = open(path, "r+b")  # noqa: SIM115 (open while the link is up; close() closes it)
    try:
        fd = f.fileno()
        termios.setraw(fd)
        attr = termios.tcgetattr(fd)
        attr[6][5] = 0  # VTIME
        attr[6][6] = 0  # VMIN
        speed = getattr(termios, "B%d" % baud)
        attr[4] = speed
        attr[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attr)
    except Exception:
        f.close()
        raise
    return f
