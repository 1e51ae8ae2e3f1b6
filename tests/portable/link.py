"""A fake link joining a device session and an agent session, for portable tests.

Packets travel through lists; tests may drop, duplicate, reorder or corrupt
them in flight. Time is an integer the test advances.
"""

from protocol.messages import HELLO, NORMAL, RATING, Message
from protocol.session import AGENT, DEVICE, LinkSession

KEY = b"0123456789abcdef0123456789abcdef"


class Outbox:
    """The device's durable rating store, as far as the session sees it."""

    def __init__(self, next_seq=1):
        self.records = []  # [(seq, Message)]
        self.next = next_seq
        self.acked = next_seq - 1

    def add(self, level=2, flags=0):
        m = Message(
            RATING,
            seq=self.next,
            invite=None,
            level=level,
            reasons=[],
            time=None,
            ticks=self.next * 10,
            boot=1,
            flags=flags,
        )
        self.records.append((self.next, m))
        self.next += 1
        return m

    def truncate(self, ack):
        self.records = [r for r in self.records if r[0] > ack]
        self.acked = max(self.acked, ack)

    def oldest(self):
        return self.records[0][0] if self.records else self.next


class Hall:
    """One device, one agent, one link between them."""

    def __init__(
        self,
        device_session=1,
        agent_session=1,
        committed=0,
        outbox_next=1,
        heartbeat_s=30,
        mode=NORMAL,
        device_id="dev-1",
        key=KEY,
        agent_key=None,
    ):
        self.now = 1000
        self.outbox = Outbox(outbox_next)
        self.device = LinkSession(DEVICE, key, device_session, mode=mode)
        self.agent = LinkSession(
            AGENT,
            agent_key or key,
            agent_session,
            mode=mode,
            device_id=device_id,
            heartbeat_s=heartbeat_s,
            clock_ms=lambda: 1790000000000,
        )
        self.agent.accept_hellos(committed)
        self.device_id = device_id
        self.mode = mode
        self.device_events = []
        self.agent_events = []
        self.stored = []  # ratings the agent committed, in commit order
        self.committed = committed
        self.in_flight = []  # (to, packet)
        self.drop_next = 0
        self.up_filter = None  # callable(packet) -> list of packets, to mangle

    def hello(self):
        return Message(
            HELLO,
            device_id=self.device_id,
            kind=1,
            board="unix-sim",
            firmware="0.1.0",
            mode=self.mode,
            config_version=0,
            outbox_depth=len(self.outbox.records),
            oldest=self.outbox.oldest(),
            next=self.outbox.next,
            ticks=self.now,
        )

    def connect(self):
        self.device.connect(self.now, self.hello)
        self.pump()

    def collect(self):
        for p in self.device.packets_to_send():
            self.in_flight.append(("agent", p))
        for p in self.agent.packets_to_send():
            self.in_flight.append(("device", p))

    def pump(self, rounds=50, agent_commits=True, device_feeds=True):
        """Deliver packets until the link is quiet; the apps react like real ones."""
        for _ in range(rounds):
            self.collect()
            if not self.in_flight:
                return
            batch, self.in_flight = self.in_flight, []
            for to, p in batch:
                if self.drop_next:
                    self.drop_next -= 1
                    continue
                if to == "agent":
                    packets = self.up_filter(p) if self.up_filter else [p]
                    for q in packets:
                        self.agent.receive(q, self.now)
                else:
                    self.device.receive(p, self.now)
            self.react(agent_commits, device_feeds)

    def react(self, agent_commits=True, device_feeds=True):
        while True:
            e = self.agent.next_event()
            if e is None:
                break
            self.agent_events.append(e)
            if isinstance(e, Message) and e.type == RATING and agent_commits:
                if e.seq > self.committed:  # dedupe on (device, seq) like the real store
                    self.stored.append(e.seq)
                    self.committed = e.seq
                self.agent.acknowledge(e.seq)
        while True:
            e = self.device.next_event()
            if e is None:
                break
            self.device_events.append(e)
            if type(e).__name__ == "Acked":
                self.outbox.truncate(e.seq)
            if isinstance(e, Message) and getattr(e, "seq", None) is not None:
                self.device.acknowledge(e.seq)
        if device_feeds:
            self.feed()

    def feed(self):
        """Device app: send outbox records from tx_next while the window has room."""
        if not self.device.is_open():
            return
        for seq, m in self.outbox.records:
            if seq >= self.device.tx_next and self.device.window_free() > 0:
                self.device.send(m, self.now)

    def advance(self, ms):
        self.now += ms
        self.device.poll(self.now)
        self.agent.poll(self.now)
        self.react()

    def kinds(self, events):
        return [type(e).__name__ if not isinstance(e, Message) else e.name for e in events]
