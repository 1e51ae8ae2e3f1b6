"""Replay window over the sender's (session, ctr) sequence number.

session is the sender's persisted boot counter and ctr its packet counter in
that session (packet.py), so (session, ctr) only ever grows at the sender. The
receiver keeps the highest ctr of the current session and a bitmap of the
WINDOW counters below it, like IPsec's anti-replay window (RFC 4303 §3.4.3):
late-but-new packets inside the window are accepted once; anything older or
seen is refused.

A handshake (HELLO at the agent, WELCOME at the device) calls floor(): every
counter up to the handshake packet's counts as seen, so packets of a peer's
session sent before the receiver restarted cannot be replayed into the new
link. The lowest acceptable session survives restarts through min_session,
which the caller persists (the agent keeps it per device in its store).

check() never changes state; accept() is called only after the packet was
verified and processed, so a forged packet cannot move the window.
"""

from protocol.errors import ReplayError

WINDOW = (
    32  # packets that may arrive out of order; MQTT QoS 1 and serial retransmits stay well inside
)


class ReplayWindow:
    def __init__(self, min_session=0):
        self.session = None  # the current peer session, None before the first packet
        self.min_session = min_session
        self.top = 0  # highest ctr accepted in the current session
        self.mask = 0  # bit i set: ctr (top - i) was accepted

    def check(self, session, ctr):
        """Raise ReplayError if (session, ctr) must be refused."""
        if self.session is None:
            if session < self.min_session:
                raise ReplayError(
                    "replay.session",
                    "session %d is older than the last known %d" % (session, self.min_session),
                )
            return
        if session < self.session:
            raise ReplayError(
                "replay.session",
                "session %d is older than the current %d" % (session, self.session),
            )
        if session > self.session or ctr > self.top:
            return
        age = self.top - ctr
        if age >= WINDOW:
            raise ReplayError(
                "replay.old",
                "ctr %d is %d behind %d, outside the window of %d" % (ctr, age, self.top, WINDOW),
            )
        if self.mask & (1 << age):
            raise ReplayError(
                "replay.seen", "ctr %d of session %d was seen before" % (ctr, session)
            )

    def accept(self, session, ctr):
        """Record (session, ctr) as seen. Call after check() and verification."""
        if self.session is None or session > self.session:
            self.session = session
            self.min_session = session
            self.top = ctr
            self.mask = 1
            return
        if ctr > self.top:
            shift = ctr - self.top
            self.mask = ((self.mask << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.top = ctr
        else:
            self.mask |= 1 << (self.top - ctr)

    def floor(self, session, ctr):
        """Start the window at a handshake packet: everything up to ctr counts as seen."""
        self.session = session
        self.min_session = session
        self.top = ctr
        self.mask = (1 << WINDOW) - 1
