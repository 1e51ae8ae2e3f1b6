"""The link session: handshake, reliable streams, acks, retransmission, re-sync.

Everything that changes a session's state is in this module, and the legal
transitions are the table TRANSITIONS below; an event a state has no row for
raises StateError naming role, state and event.

Sans-IO: the caller feeds packets and the time in (integer milliseconds from a
monotonic clock that does not wrap) and takes packets, events and the next
timer deadline out:

    s.receive(packet, now)   # a packet that arrived (COBS/CRC or MQTT already removed)
    s.poll(now)              # run due timers: retransmit, HELLO retry, silence
    s.next_event()           # Message, LinkUp, LinkDown, Acked, Gap or Refused; None when empty
    s.packets_to_send()      # signed packets to write, in order
    s.next_deadline()        # when to call poll() next (None: no timer running)

Reliability (one stream per direction, cumulative acks, go-back-N):
- Up: RATINGs, numbered by the device's persisted rating seq, so a rating's
  stream number is its identity (device_id, seq). The device's outbox owns
  them; the session holds at most TX_WINDOW unacknowledged in RAM.
- Down: CONFIG, INVITE, CANCEL, PAUSE, RESUME, DISPLAY, numbered from 1 at
  every WELCOME. They are state updates; after a re-sync the agent sends the
  current state again instead of replaying old frames.
A receiver delivers a reliable message once, in order, and acknowledges it
only when the application calls acknowledge(seq) — the agent does so after
its database commit, which is what makes "acknowledged" mean "durable".

Re-sync after either side restarts: HELLO tells the agent the device's oldest
unacknowledged and next rating seq; WELCOME answers with the last seq the
agent committed. Both sides restart their windows from there. Ratings the
device dropped (outbox overflow) surface as a Gap event, never silently; a
device whose seq went backwards (wiped without re-provisioning) is refused,
because its new ratings would collide with stored ones.

Errors from lower layers are converted here, and only here: each refused
packet is counted by its error code and reported as a Refused event.
"""

from protocol.errors import ProtocolError, StateError
from protocol.messages import (
    ACK,
    ANY_MODE,
    CATALOGUE,
    DOWN,
    ERROR,
    HELLO,
    NORMAL,
    STATUS,
    UP,
    WELCOME,
    Message,
)
from protocol.packet import Signer, open_packet, read_header, seal
from protocol.replay import ReplayWindow

DEVICE = "device"
AGENT = "agent"

CLOSED = "closed"
HELLO_SENT = "hello_sent"
OPEN = "open"

TX_WINDOW = 8  # unacknowledged reliable messages in RAM; the device outbox holds the rest
RTO_MIN_MS = 1000  # first retransmission: a serial round trip is ~10 ms, MQTT ~100 ms
RTO_MAX_MS = 16000  # back off to this while the peer is away
HELLO_MIN_MS = 1000
HELLO_MAX_MS = 16000
SILENCE_HEARTBEATS = 3  # link is down after this many heartbeat periods without a packet
CTR_MAX = 0xFFFFFFFF

# (role, state, event) -> (next state, action). Events: connect, close, hello,
# welcome, message, no_session, hello_timer, silence.
TRANSITIONS = {
    (DEVICE, CLOSED, "connect"): (HELLO_SENT, "send_hello"),
    (DEVICE, HELLO_SENT, "connect"): (HELLO_SENT, "send_hello"),
    (DEVICE, OPEN, "connect"): (HELLO_SENT, "send_hello"),
    (DEVICE, HELLO_SENT, "welcome"): (OPEN, "on_welcome"),
    (DEVICE, OPEN, "welcome"): (OPEN, "on_welcome"),
    (DEVICE, OPEN, "message"): (OPEN, "deliver"),
    (DEVICE, HELLO_SENT, "message"): (HELLO_SENT, "refuse_not_open"),
    (DEVICE, CLOSED, "message"): (CLOSED, "refuse_not_open"),
    (DEVICE, HELLO_SENT, "no_session"): (HELLO_SENT, "send_hello"),
    (DEVICE, OPEN, "no_session"): (HELLO_SENT, "resync"),
    (DEVICE, HELLO_SENT, "hello_timer"): (HELLO_SENT, "retry_hello"),
    (DEVICE, OPEN, "silence"): (HELLO_SENT, "resync"),
    (DEVICE, CLOSED, "close"): (CLOSED, "none"),
    (DEVICE, HELLO_SENT, "close"): (CLOSED, "none"),
    (DEVICE, OPEN, "close"): (CLOSED, "link_down"),
    (AGENT, CLOSED, "hello"): (OPEN, "on_hello"),
    (AGENT, OPEN, "hello"): (OPEN, "on_hello"),
    (AGENT, OPEN, "message"): (OPEN, "deliver"),
    (AGENT, CLOSED, "message"): (CLOSED, "refuse_no_session"),
    (AGENT, OPEN, "silence"): (CLOSED, "link_down"),
    (AGENT, CLOSED, "close"): (CLOSED, "none"),
    (AGENT, OPEN, "close"): (CLOSED, "link_down"),
}


class LinkUp:
    """The handshake completed. peer is the HELLO (at the agent) or WELCOME (at the device)."""

    def __init__(self, peer):
        self.peer = peer


class LinkDown:
    def __init__(self, reason):
        self.reason = reason


class Acked:
    """The peer acknowledged our reliable stream up to and including seq."""

    def __init__(self, seq):
        self.seq = seq


class Gap:
    """Ratings first..last will never arrive: the device no longer holds them."""

    def __init__(self, first, last):
        self.first = first
        self.last = last


class Refused:
    """A packet was refused; code is the ProtocolError code, also counted in .counters."""

    def __init__(self, code, detail):
        self.code = code
        self.detail = detail


class LinkSession:
    """One end of the link between one device and its agent."""

    def __init__(
        self,
        role,
        key,
        session,
        mode=NORMAL,
        device_id=None,
        min_peer_session=0,
        heartbeat_s=30,
        clock_ms=None,
    ):
        if role not in (DEVICE, AGENT):
            raise StateError("state.role", "role must be device or agent, not %r" % (role,))
        self.role = role
        self.mode = mode
        self.session = session  # our persisted boot/session counter
        self.device_id = device_id  # the agent checks HELLOs against it (normal mode)
        self.heartbeat_s = heartbeat_s  # agent: the period WELCOME gives the device
        self._clock_ms = clock_ms  # agent: callable giving epoch ms for WELCOME
        self.state = CLOSED
        self._signer = Signer(key)
        self._tx_dir = UP if role == DEVICE else DOWN
        self._rx_dir = DOWN if role == DEVICE else UP
        self._ctr = 0
        self.window = ReplayWindow(min_peer_session)
        self.counters = {}
        self._events = []
        self._out = []
        # reliable stream we send
        self.tx_next = 1
        self._unacked = []  # [(seq, message)] in seq order, at most TX_WINDOW
        self.tx_acked = 0  # highest seq the peer acknowledged
        self._rto = RTO_MIN_MS
        self._rto_at = None
        # reliable stream we receive
        self.rx_next = 1
        self.rx_acked = 0  # highest seq the application acknowledged
        self._rx_high = 0  # highest seq ever delivered on this link
        # handshake and liveness
        self._make_hello = None
        self._hello_every = HELLO_MIN_MS
        self._hello_at = None
        self._last_rx = None
        self.silence_ms = None
        self.peer = None  # the peer's HELLO or WELCOME

    # ---- the table ----
    def _fire(self, event, now, msg=None):
        row = TRANSITIONS.get((self.role, self.state, event))
        if row is None:
            raise StateError(
                "state.illegal",
                "%s in state %s cannot handle %s" % (self.role, self.state, event),
            )
        new_state, action = row
        getattr(self, "_do_" + action)(now, msg)  # raises: state stays as it was
        self.state = new_state

    # ---- application interface ----
    def connect(self, now, make_hello):
        """Device: start (or restart) the handshake.

        make_hello() returns a fresh HELLO each time one is sent, so a re-sync
        reports the outbox as it is then. After LinkUp the device sends its
        outbox from tx_next on (the session keeps only TX_WINDOW in RAM).
        """
        self._make_hello = make_hello
        self._fire("connect", now)

    def close(self, now):
        self._fire("close", now)

    def accept_hellos(self, committed):
        """Agent: wait for HELLOs; committed is the last rating seq stored durably."""
        self.rx_acked = committed
        self.rx_next = committed + 1

    def is_open(self):
        return self.state == OPEN

    def window_free(self):
        return TX_WINDOW - len(self._unacked)

    def send(self, msg, now):
        """Send a message. Reliable ones get the next stream seq (or must carry it)."""
        if self.state != OPEN:
            raise StateError(
                "state.not_open", "cannot send %s: link is %s" % (msg.name, self.state)
            )
        if CATALOGUE[msg.type][2]:
            if len(self._unacked) >= TX_WINDOW:
                raise StateError(
                    "state.window_full",
                    "%d reliable messages unacknowledged (TX_WINDOW=%d)" % (TX_WINDOW, TX_WINDOW),
                )
            if msg.seq is None:
                msg.seq = self.tx_next
            elif msg.seq != self.tx_next:
                raise StateError(
                    "state.seq_order",
                    "%s seq %d, stream expects %d" % (msg.name, msg.seq, self.tx_next),
                )
            self._emit(msg)  # validates before the stream advances
            self.tx_next += 1
            self._unacked.append((msg.seq, msg))
            if self._rto_at is None:
                self._rto_at = now + self._rto
        else:
            self._emit(msg)

    def acknowledge(self, seq):
        """The application has durably handled the received stream up to seq.

        seq may belong to a delivery from before a re-sync (the agent commits
        asynchronously); the stream then skips the redelivered duplicates.
        """
        if seq > self._rx_high:
            raise StateError(
                "state.ack_ahead", "cannot acknowledge %d: only %d delivered" % (seq, self._rx_high)
            )
        if seq > self.rx_acked:
            self.rx_acked = seq
        if self.rx_next <= seq:
            self.rx_next = seq + 1
        self._emit(Message(ACK, ack=self.rx_acked))

    def next_event(self):
        if self._events:
            return self._events.pop(0)
        return None

    def packets_to_send(self):
        out = self._out
        self._out = []
        return out

    def next_deadline(self):
        # Called on every loop of the device: no list, no allocation.
        soonest = None
        for t in (self._rto_at, self._hello_at, self._silence_at()):
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        return soonest

    def poll(self, now):
        if self._hello_at is not None and now >= self._hello_at:
            self._fire("hello_timer", now)
        silence = self._silence_at()
        if silence is not None and now >= silence:
            self._fire("silence", now, "no packet for %d ms" % self.silence_ms)
        if self._rto_at is not None and now >= self._rto_at and self.state == OPEN:
            for _seq, msg in self._unacked:  # go-back-N: resend everything outstanding
                self._emit(msg)
            self.count("retransmit", len(self._unacked))
            self._rto = min(self._rto * 2, RTO_MAX_MS)
            self._rto_at = now + self._rto

    def count(self, name, n=1):
        self.counters[name] = self.counters.get(name, 0) + n

    # ---- receiving ----
    def receive(self, packet, now):
        """Process one packet. Bad packets are counted and reported, never raised.

        An authentic packet that breaks the catalogue or the state machine is
        answered with an ERROR naming the fault, so the peer's logs say why.
        Forged and replayed packets get no answer: they are not from a peer.
        """
        self._authentic = None
        try:
            self._receive(packet, now)
        except ProtocolError as e:
            self.count(e.code)
            self._events.append(Refused(e.code, e.detail))
            msg = self._authentic
            if msg is not None and msg.type != ERROR and _answerable(e.code):
                self._emit(Message(ERROR, code=e.code, detail=_clip(e.detail), ref=msg.ctr))

    def _receive(self, packet, now):
        read_header(packet)  # auth.truncated before anything else
        msg = open_packet(packet, self._signer, self._rx_dir)
        self._authentic = msg
        mode = CATALOGUE[msg.type][3]
        if mode != ANY_MODE and mode != self.mode:
            raise StateError(
                "state.mode",
                "%s is not allowed on a link in %s mode" % (msg.name, _MODE_NAMES[self.mode]),
            )
        self.window.check(msg.session, msg.ctr)
        handshake = HELLO if self.role == AGENT else WELCOME
        if msg.type == handshake:
            self._fire("hello" if self.role == AGENT else "welcome", now, msg)
            self.window.floor(msg.session, msg.ctr)
        elif msg.type == ERROR and self.role == DEVICE:
            # The agent says why it refused us; believed in any state, since it
            # is authentic and newer than anything the window has seen.
            self.window.accept(msg.session, msg.ctr)
            self._events.append(msg)
            if msg.code == "state.no_session" and self.state != CLOSED:
                self._fire("no_session", now, "the agent has no session for us")
            return
        elif self.window.session is None or msg.session > self.window.session:
            # The peer restarted (or we did) and this is not a handshake.
            if self.role == AGENT:
                self._do_refuse_no_session(now, msg)
            raise StateError("state.no_session", "%s from a session without a WELCOME" % msg.name)
        else:
            self._fire("message", now, msg)
            self.window.accept(msg.session, msg.ctr)
        self._last_rx = now

    # ---- actions (named in TRANSITIONS) ----
    def _do_none(self, now, msg):
        pass

    def _do_send_hello(self, now, reason):
        self._hello_every = HELLO_MIN_MS
        self._send_hello(now)

    def _do_retry_hello(self, now, reason):
        self._hello_every = min(self._hello_every * 2, HELLO_MAX_MS)
        self._send_hello(now)

    def _send_hello(self, now):
        hello = self._make_hello()
        if hello.type != HELLO:
            raise StateError("state.hello", "make_hello() returned %s, not hello" % hello.name)
        # Until the WELCOME says what the agent holds, nothing is in flight.
        self._unacked = []
        self._rto_at = None
        self.tx_next = hello.oldest
        self._emit(hello)
        self._hello_at = now + self._hello_every

    def _do_resync(self, now, reason):
        self._do_link_down(now, reason)
        self._do_send_hello(now, reason)

    def _do_link_down(self, now, reason):
        self._events.append(LinkDown(reason or "closed"))
        self._rto_at = None
        self._last_rx = None

    def _do_on_welcome(self, now, msg):
        if msg.device_session != self.session:
            raise StateError(
                "state.stale_welcome",
                "WELCOME answers session %d, this is session %d"
                % (msg.device_session, self.session),
            )
        self.peer = msg
        self._hello_at = None
        self.silence_ms = msg.heartbeat_s * 1000 * SILENCE_HEARTBEATS if msg.heartbeat_s else None
        self._last_rx = now
        self.rx_next = 1  # the agent's down stream restarts at every WELCOME
        self.rx_acked = 0
        if msg.ack >= self.tx_next:
            self.tx_next = msg.ack + 1  # stored before our last restart; the ack was lost
        self._drop_acked(msg.ack)
        self._rto = RTO_MIN_MS
        self._events.append(LinkUp(msg))

    def _do_on_hello(self, now, msg):
        if msg.mode != self.mode:
            raise StateError(
                "state.mode",
                "HELLO in %s mode on a %s link" % (_MODE_NAMES[msg.mode], _MODE_NAMES[self.mode]),
            )
        if self.mode == NORMAL and self.device_id is not None and msg.device_id != self.device_id:
            raise StateError(
                "state.device_id",
                "HELLO from %s on the link of %s" % (msg.device_id, self.device_id),
            )
        if msg.next <= self.rx_acked or msg.oldest > msg.next:
            self._emit(
                Message(
                    ERROR,
                    code="state.seq_regressed",
                    detail="device next seq %d, agent holds up to %d" % (msg.next, self.rx_acked),
                    ref=msg.ctr,
                )
            )
            raise StateError(
                "state.seq_regressed",
                "device %s offers seqs %d..%d but the agent committed up to %d"
                % (msg.device_id, msg.oldest, msg.next, self.rx_acked),
            )
        self.peer = msg
        self._last_rx = now
        if msg.oldest > self.rx_acked + 1:
            self._events.append(Gap(self.rx_acked + 1, msg.oldest - 1))
            self.rx_acked = msg.oldest - 1
        self.rx_next = self.rx_acked + 1
        # our down stream restarts: the application re-sends current state on LinkUp
        self.tx_next = 1
        self.tx_acked = 0
        self._unacked = []
        self._rto = RTO_MIN_MS
        self._rto_at = None
        self._emit(
            Message(
                WELCOME,
                device_session=msg.session,
                time_ms=self._time_ms(now),
                ack=self.rx_acked,
                heartbeat_s=self.heartbeat_s,
            )
        )
        self.silence_ms = self.heartbeat_s * 1000 * SILENCE_HEARTBEATS
        self._events.append(LinkUp(msg))

    def _do_refuse_not_open(self, now, msg):
        raise StateError("state.not_open", "%s before the WELCOME" % msg.name)

    def _do_refuse_no_session(self, now, msg):
        self._emit(Message(ERROR, code="state.no_session", detail="send HELLO first", ref=msg.ctr))
        raise StateError(
            "state.no_session", "%s from session %d before its HELLO" % (msg.name, msg.session)
        )

    def _do_deliver(self, now, msg):
        if msg.type == ACK:
            self._on_ack(msg.ack, now)
            return
        if CATALOGUE[msg.type][2]:
            seq = msg.seq
            if seq < self.rx_next:
                self.count("duplicate")
                self._emit(Message(ACK, ack=self.rx_acked))
                return
            if seq > self.rx_next:
                self.count("out_of_order")
                self._emit(Message(ACK, ack=self.rx_acked))
                return
            self.rx_next += 1
            if seq > self._rx_high:
                self._rx_high = seq
        elif msg.type == STATUS and self.role == AGENT:
            self._emit(Message(ACK, ack=self.rx_acked))  # keepalive answer to the heartbeat
        self._events.append(msg)

    def _on_ack(self, ack, now):
        if ack >= self.tx_next:
            raise StateError(
                "state.ack_unsent", "ack %d for seqs not yet sent (next %d)" % (ack, self.tx_next)
            )
        if self._drop_acked(ack):
            self._rto = RTO_MIN_MS
            self._rto_at = now + self._rto if self._unacked else None

    # ---- helpers ----
    def _time_ms(self, now):
        return self._clock_ms() if self._clock_ms is not None else 0

    def _drop_acked(self, ack):
        """Forget what the peer acknowledged; True (and an Acked event) if ack moved."""
        while self._unacked and self._unacked[0][0] <= ack:
            self._unacked.pop(0)
        if ack <= self.tx_acked:
            return False
        self.tx_acked = ack
        self._events.append(Acked(ack))
        return True

    def _silence_at(self):
        if self.state != OPEN or self.silence_ms is None or self._last_rx is None:
            return None
        return self._last_rx + self.silence_ms

    def _emit(self, msg):
        if self._ctr >= CTR_MAX:
            raise StateError("state.ctr_exhausted", "packet counter exhausted: start a new session")
        self._ctr += 1
        self._out.append(seal(msg, self._signer, self._tx_dir, self.session, self._ctr))


_MODE_NAMES = {0: "normal", 1: "provisioning"}


def _answerable(code):
    """Whether a refusal gets an ERROR answer: authentic faults, not ones already answered."""
    if code in ("state.no_session", "state.seq_regressed"):
        return False  # the action sent its own ERROR
    return code.startswith("msg.") or code.startswith("cbor.") or code.startswith("state.")


def _clip(text):
    """Shorten an error detail to fit ERROR.detail (DETAIL_MAX bytes of UTF-8)."""
    while len(text.encode("utf-8")) > 90:
        text = text[:-4] + "..."
    return text
