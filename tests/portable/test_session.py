"""Link session: every row of the transition table, re-sync, loss, replay, errors."""

from check import raises
from examples import example
from link import KEY, Hall

from protocol import session as S
from protocol.errors import StateError
from protocol.messages import (
    ACK,
    DOWN,
    ERROR,
    HELLO,
    INVITE,
    PROVISION,
    PROVISIONING,
    RATING,
    STATUS,
    UP,
    WELCOME,
    Message,
)
from protocol.packet import Signer, seal

# Both link ends, two sessions and their queues live in one heap here; a device holds one.
MICROPYTHON_HEAP = "128k"


def _status():
    return example("status")


def _config():
    return example("config")


def test_handshake_opens_both_ends():
    h = Hall()
    h.connect()
    assert h.device.state == S.OPEN and h.agent.state == S.OPEN
    assert h.kinds(h.agent_events) == ["LinkUp"]
    assert h.kinds(h.device_events) == ["LinkUp"]
    welcome = h.device_events[0].peer
    assert welcome.type == WELCOME and welcome.device_session == 1 and welcome.ack == 0
    assert welcome.time_ms == 1790000000000
    assert h.agent_events[0].peer.device_id == "dev-1"


def test_ratings_flow_and_are_acked_after_commit():
    h = Hall()
    h.connect()
    for _ in range(20):
        h.outbox.add()
    h.feed()
    h.pump()
    assert h.stored == list(range(1, 21))
    assert h.outbox.records == [] and h.outbox.acked == 20


def test_window_bounds_unacked_in_ram():
    h = Hall()
    h.connect()
    for _ in range(S.TX_WINDOW + 3):
        h.outbox.add()
    h.feed()
    assert h.device.window_free() == 0
    raises(StateError, "state.window_full", h.device.send, h.outbox.records[-1][1], h.now)


def test_uncommitted_ratings_are_retransmitted_and_deduplicated():
    h = Hall()
    h.connect()
    for _ in range(5):
        h.outbox.add()
    h.feed()
    h.pump(agent_commits=False)  # delivered, but the agent crashed before commit
    assert h.stored == [] and len(h.outbox.records) == 5
    h.advance(S.RTO_MIN_MS)  # go-back-N retransmission
    h.pump(agent_commits=False)
    assert h.agent.counters.get("duplicate") == 5
    assert h.device.counters.get("retransmit") == 5


def test_lost_packets_are_recovered_by_retransmission():
    h = Hall()
    h.connect()
    for _ in range(6):
        h.outbox.add()
    h.drop_next = 2  # the first two ratings vanish on the line
    h.feed()
    h.pump()
    assert h.stored == []  # out of order: nothing delivered past the hole
    assert h.agent.counters.get("out_of_order") == 4
    h.advance(S.RTO_MIN_MS)
    h.pump()
    assert h.stored == [1, 2, 3, 4, 5, 6]


def test_retransmission_backs_off_to_the_maximum():
    h = Hall()
    h.connect()
    h.outbox.add()
    h.feed()
    h.collect()
    h.in_flight = []  # agent unreachable
    waits = []
    for _ in range(8):
        due = h.device.next_deadline()
        waits.append(due - h.now)
        h.now = due
        h.device.poll(h.now)
        h.device.packets_to_send()
    assert waits[:5] == [1000, 2000, 4000, 8000, 16000]
    assert max(waits) == S.RTO_MAX_MS


def test_device_restart_resyncs_from_agent_ack():
    h = Hall()
    h.connect()
    for _ in range(4):
        h.outbox.add()
    h.feed()
    h.pump()
    for _ in range(3):
        h.outbox.add()  # 5, 6, 7 pressed, then power cut before sending
    # new boot: a new session; the outbox survived on flash
    h.device = S.LinkSession(S.DEVICE, KEY, 2)
    h.connect()
    assert h.device.tx_next == 8 and h.stored == [1, 2, 3, 4, 5, 6, 7]
    assert h.agent.state == S.OPEN


def test_lost_ack_before_restart_is_resolved_by_welcome():
    h = Hall()
    h.connect()
    for _ in range(3):
        h.outbox.add()
    h.feed()
    h.collect()
    batch, h.in_flight = h.in_flight, []
    for _to, p in batch:
        h.agent.receive(p, h.now)
    h.react()  # agent committed 1..3; its ACKs are lost
    h.agent.packets_to_send()
    assert h.stored == [1, 2, 3] and len(h.outbox.records) == 3
    h.device = S.LinkSession(S.DEVICE, KEY, 2)
    h.connect()
    assert h.outbox.records == [] and h.stored == [1, 2, 3]
    assert h.kinds(h.device_events)[-2:] == ["Acked", "LinkUp"]


def test_agent_restart_answers_no_session_and_device_rehellos():
    h = Hall()
    h.connect()
    h.agent = S.LinkSession(S.AGENT, KEY, 2, device_id="dev-1", clock_ms=lambda: 1)
    h.agent.accept_hellos(h.committed)
    h.outbox.add()
    h.feed()
    h.pump()
    assert h.agent.counters.get("state.no_session") == 1
    assert "LinkDown" in h.kinds(h.device_events)
    assert h.stored == [1] and h.agent.state == S.OPEN


def test_gap_is_reported_when_device_dropped_ratings():
    h = Hall(outbox_next=1)
    h.outbox.next = 11
    h.outbox.add()  # seq 11; 1..10 were dropped by the overflow policy
    h.connect()
    gaps = [e for e in h.agent_events if type(e).__name__ == "Gap"]
    assert len(gaps) == 1 and (gaps[0].first, gaps[0].last) == (1, 10)
    assert h.stored == [11]


def test_seq_regression_is_refused_with_error():
    h = Hall(committed=50)
    h.outbox.add()  # a wiped device starting again at seq 1
    h.connect()
    assert h.agent.state == S.CLOSED
    assert h.agent.counters.get("state.seq_regressed") == 1
    errors = [e for e in h.device_events if isinstance(e, Message) and e.type == ERROR]
    assert errors and errors[0].code == "state.seq_regressed"


def test_downstream_reliable_stream_and_status_keepalive():
    h = Hall()
    h.connect()
    h.agent.send(_config(), h.now)
    h.agent.send(Message(INVITE, invite=7, timeout_s=60, staff=None, qr=None, item=None), h.now)
    h.pump()
    got = [e for e in h.device_events if isinstance(e, Message)]
    assert [m.name for m in got] == ["config", "invite"] and [m.seq for m in got] == [1, 2]
    assert h.agent.tx_acked == 2
    h.device.send(_status(), h.now)
    h.pump()
    assert h.agent_events[-1].type == STATUS


def test_device_silence_triggers_resync():
    h = Hall(heartbeat_s=10)
    h.connect()
    assert h.device.next_deadline() == h.now + 30000
    h.advance(30000)
    assert h.device.state == S.HELLO_SENT
    assert h.kinds(h.device_events)[-1] == "LinkDown"
    h.pump()
    assert h.device.state == S.OPEN


def test_agent_silence_closes_link():
    h = Hall(heartbeat_s=10)
    h.connect()
    h.agent.poll(h.now + 30000)
    assert h.agent.state == S.CLOSED


def test_hello_retries_back_off():
    h = Hall()
    h.device.connect(h.now, h.hello)
    h.device.packets_to_send()
    waits = []
    for _ in range(6):
        due = h.device.next_deadline()
        waits.append(due - h.now)
        h.now = due
        h.device.poll(h.now)
        assert len(h.device.packets_to_send()) == 1
    assert waits == [1000, 2000, 4000, 8000, 16000, 16000]


def test_replayed_packet_is_refused_without_answer():
    h = Hall()
    captured = []

    def tap(p):
        captured.append(p)
        return [p]

    h.up_filter = tap
    h.connect()
    h.outbox.add()
    h.feed()
    h.pump()
    before = len(h.agent.packets_to_send())
    h.agent.receive(captured[-1], h.now)
    assert h.agent.counters.get("replay.seen") == 1
    assert len(h.agent.packets_to_send()) == before == 0


def test_forged_packet_is_refused():
    h = Hall()
    h.connect()
    forged = seal(_status(), Signer(b"x" * 32), UP, 1, 99)
    h.agent.receive(forged, h.now)
    assert h.agent.counters.get("auth.mac") == 1
    assert h.agent.packets_to_send() == []


def test_wrong_device_id_is_refused():
    h = Hall(device_id="dev-1")
    h.device_id = "dev-2"
    h.connect()
    assert h.agent.counters.get("state.device_id") and h.agent.state == S.CLOSED


def test_provisioning_messages_only_on_provisioning_links():
    h = Hall()
    h.connect()
    p = Message(
        PROVISION, device_id="dev-9", hall="hall-1", key=b"k" * 32, seq_base=1, session_base=1
    )
    h.agent.send(p, h.now)
    h.pump()
    assert h.device.counters.get("state.mode") == 1
    errors = [e for e in h.agent_events if isinstance(e, Message) and e.type == ERROR]
    assert errors and errors[0].code == "state.mode"


def test_provisioning_link_handshake():
    h = Hall(mode=PROVISIONING)
    h.connect()
    assert h.device.state == S.OPEN and h.agent.state == S.OPEN


def test_normal_hello_on_provisioning_link_is_refused():
    h = Hall(mode=PROVISIONING)
    h.mode = 0  # the device says HELLO in normal mode
    h.connect()
    refused = [e.code for e in h.agent_events if type(e).__name__ == "Refused"]
    assert refused and refused[0] == "state.mode" and h.agent.state == S.CLOSED


def test_ack_for_unsent_seq_is_refused():
    h = Hall()
    h.connect()
    h.device.receive(_agent_packet(h, Message(ACK, ack=99)), h.now)
    assert h.device.counters.get("state.ack_unsent") == 1


def _agent_packet(h, msg):
    h.agent._ctr += 1
    return seal(msg, Signer(KEY), DOWN, h.agent.session, h.agent._ctr)


def test_stale_welcome_is_refused():
    h = Hall(device_session=5)
    h.device.connect(h.now, h.hello)
    h.device.packets_to_send()
    w = Message(WELCOME, device_session=4, time_ms=0, ack=0, heartbeat_s=30)
    h.device.receive(_agent_packet(h, w), h.now)
    assert h.device.counters.get("state.stale_welcome") == 1 and h.device.state == S.HELLO_SENT


def test_local_misuse_raises():
    h = Hall()
    raises(StateError, "state.not_open", h.device.send, _status(), h.now)
    raises(StateError, "state.illegal", h.agent.connect, h.now, h.hello)
    h.connect()
    raises(StateError, "state.ack_ahead", h.agent.acknowledge, 5)
    m = h.outbox.add()
    m.seq = 9
    raises(StateError, "state.seq_order", h.device.send, m, h.now)
    raises(StateError, "state.role", S.LinkSession, "hub", KEY, 1)


def test_every_transition_row_is_reachable():
    # Each (role, state, event) row is driven directly and lands in its next state.
    for key in S.TRANSITIONS:
        role, state, event = key
        h = Hall()
        s = h.device if role == S.DEVICE else h.agent
        s.state = state
        s._make_hello = h.hello
        msg = None
        if event in ("welcome",):
            msg = Message(WELCOME, device_session=1, time_ms=0, ack=0, heartbeat_s=30)
        elif event == "hello":
            msg = h.hello()
            msg.session, msg.ctr = 1, 1
        elif event == "message":
            msg = Message(ACK, ack=0)
            msg.session, msg.ctr = 1, 1
        try:
            s._fire(event, h.now, msg)
        except StateError as e:
            assert e.code in ("state.not_open", "state.no_session"), (key, e)
            assert s.state == state, key
            continue
        assert s.state == S.TRANSITIONS[key][0], key


def test_illegal_event_names_role_state_and_event():
    h = Hall()
    e = raises(StateError, "state.illegal", h.agent._fire, "welcome", h.now)
    assert "agent" in e.detail and "closed" in e.detail and "welcome" in e.detail


def test_hello_is_fresh_on_every_resync():
    h = Hall(heartbeat_s=10)
    h.connect()
    for _ in range(3):
        h.outbox.add()
    h.feed()
    h.pump()
    h.advance(30000)  # silence: the new HELLO must report next=4, not the boot-time 1
    hellos = [e.peer for e in h.agent_events if type(e).__name__ == "LinkUp"]
    h.pump()
    hellos = [e.peer for e in h.agent_events if type(e).__name__ == "LinkUp"]
    assert hellos[-1].next == 4 and h.agent.state == S.OPEN
    assert hellos[-1].type == HELLO and RATING != HELLO
