"""MQTT topic tree, ACLs and presence ordering (a stale will cannot win)."""

from check import raises

from protocol import topics as T
from protocol.errors import AuthError, TopicError
from protocol.packet import Signer

# Topics, packets and the whole message catalogue in one heap: 62 KB is the measured
# minimum on the 64-bit port, too close to 64 KB to pass reliably.
MICROPYTHON_HEAP = "80k"

KEY = b"0123456789abcdef0123456789abcdef"


def test_topic_round_trip():
    t = T.topic("hall-1", "EV-0001", T.UP_TOPIC)
    assert t == "hcp/v1/hall-1/EV-0001/up"
    assert T.parse(t) == ("hall-1", "EV-0001", "up")


def test_bad_topics_and_ids():
    raises(TopicError, "topic.id", T.topic, "hall/1", "EV", "up")
    raises(TopicError, "topic.id", T.topic, "hall", "+", "up")
    raises(TopicError, "topic.leaf", T.topic, "hall", "EV", "sideways")
    raises(TopicError, "topic.tree", T.parse, "hcp/v2/h/d/up")
    raises(TopicError, "topic.tree", T.parse, "hcp/v1/h/d/up/x")
    raises(TopicError, "topic.id", T.parse, "hcp/v1/h/#/up")


def test_acls_limit_a_device_to_its_own_topics():
    rules = T.acl_rules("h1", "EV-1")
    assert ("write", "hcp/v1/h1/EV-1/up") in rules
    assert ("read", "hcp/v1/h1/EV-1/down") in rules
    assert all("EV-1" in t for _a, t in rules) and len(rules) == 3
    assert T.agent_subscriptions("h1") == ["hcp/v1/h1/+/up", "hcp/v1/h1/+/state"]
    assert ("write", "hcp/v1/h1/+/down") in T.agent_acl_rules("h1")


def test_stale_will_cannot_mark_live_device_offline():
    s = Signer(KEY)
    p = T.Presence()
    will_1 = T.state_payload(s, False, 3, 1, 10)
    online_2 = T.state_payload(s, True, 3, 2, 20)
    assert p.update(s, T.state_payload(s, True, 3, 1, 9)) is True
    assert p.update(s, online_2) is True  # reconnected before the old will fired
    assert p.update(s, will_1) is False and p.online is True  # late will of conn 1
    assert p.update(s, T.state_payload(s, False, 3, 2, 21)) is True and p.online is False
    assert p.update(s, online_2) is False and p.online is False  # replayed online
    assert p.update(s, T.state_payload(s, True, 4, 0, 1)) is True  # reboot


def test_forged_state_is_refused():
    p = T.Presence()
    forged = T.state_payload(Signer(b"x" * 32), False, 9, 9, 1)
    raises(AuthError, "auth.mac", p.update, Signer(KEY), forged)
    assert p.online is None


def test_broker_password_is_hmac_of_the_key():
    key = bytes(range(32))
    # HMAC-SHA256(key, "hcp mqtt password")[:16] in hex, computed with CPython's hmac module
    assert T.broker_password(key) == "8cc20a8209aa7876b7321fabc3bf791c"
    assert T.broker_password(b"x" * 32) != T.broker_password(key)
