"""MQTT mapping: the topic tree, presence (retained state + Last Will), ACL rules.

    hcp/v1/<hall>/<device>/up      device -> agent   signed packets (QoS 1)
    hcp/v1/<hall>/<device>/down    agent -> device   signed packets (QoS 1)
    hcp/v1/<hall>/<device>/state   device presence   signed STATE, retained; also the Last Will

The payload of up and down is the signed packet of packet.py, without COBS and
CRC (TCP and TLS already protect the bytes). The link session runs over it
unchanged; QoS 1 may redeliver, which the session treats like a serial
retransmission (replay window and stream seq deduplicate).

Presence: each MQTT connection of a device has a number (boot, conn): the
boot session and a per-boot connection counter, both only growing. The device
publishes STATE(online=True, boot, conn) retained on connect and registers
STATE(online=False, boot, conn) as its Last Will. The broker may deliver a
will late — after the device has reconnected — so a state only counts if its
(boot, conn) is at least the newest one seen: a stale will cannot mark a live
device offline (Presence below). State packets are verified by their tag but
not by the replay window, since a will is signed at connect time and
delivered at an unknown later moment; ordering by (boot, conn) replaces it.

ACLs: a device may publish only to its own up and state topics and read only
its own down topic; the agent of a hall reads every up/state and writes every
down topic of the hall. acl_rules() gives these as data for the agent to write
mosquitto's acl_file (edge_agent owns files).

Broker credentials: a device's username is its device id and its password is derived
from its link key (broker_password), so provisioning installs one secret, not two, and
the agent can write the broker's password file from its registry.
"""

from protocol.errors import MessageError, TopicError
from protocol.messages import STATE, UP, Message, check_id
from protocol.packet import Signer, open_packet, seal

ROOT = "hcp/v1"
UP_TOPIC = "up"
DOWN_TOPIC = "down"
STATE_TOPIC = "state"
LEAVES = (UP_TOPIC, DOWN_TOPIC, STATE_TOPIC)


def _id(value, what):
    try:
        check_id(value, what)
    except MessageError as e:  # same check, reported in the topic layer's terms
        raise TopicError("topic.id", str(e)) from None


def topic(hall, device, leaf):
    """The topic of one device's up, down or state messages."""
    _id(hall, "hall")
    _id(device, "device")
    if leaf not in LEAVES:
        raise TopicError("topic.leaf", "leaf %r is not one of %r" % (leaf, LEAVES))
    return "%s/%s/%s/%s" % (ROOT, hall, device, leaf)


def parse(name):
    """(hall, device, leaf) of a topic in the tree; TopicError otherwise."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] + "/" + parts[1] != ROOT:
        raise TopicError("topic.tree", "%r is not %s/<hall>/<device>/<leaf>" % (name, ROOT))
    _id(parts[2], "hall")
    _id(parts[3], "device")
    if parts[4] not in LEAVES:
        raise TopicError("topic.leaf", "leaf %r is not one of %r" % (parts[4], LEAVES))
    return parts[2], parts[3], parts[4]


def agent_subscriptions(hall):
    """What a hall's agent subscribes to (QoS 1)."""
    _id(hall, "hall")
    return ["%s/%s/+/%s" % (ROOT, hall, UP_TOPIC), "%s/%s/+/%s" % (ROOT, hall, STATE_TOPIC)]


def device_subscriptions(hall, device):
    return [topic(hall, device, DOWN_TOPIC)]


def acl_rules(hall, device):
    """(access, topic) pairs a device's broker account is allowed; nothing else."""
    return [
        ("write", topic(hall, device, UP_TOPIC)),
        ("write", topic(hall, device, STATE_TOPIC)),
        ("read", topic(hall, device, DOWN_TOPIC)),
    ]


def broker_password(key):
    """A device's MQTT password: 32 hex digits of HMAC-SHA256(key, "hcp mqtt password").

    The broker keeps only a salted hash of it; knowing it does not reveal the link key."""
    return "".join("%02x" % b for b in Signer(key).mac(b"hcp mqtt password")[:16])


def agent_acl_rules(hall):
    _id(hall, "hall")
    base = "%s/%s/+/" % (ROOT, hall)
    return [("read", base + UP_TOPIC), ("read", base + STATE_TOPIC), ("write", base + DOWN_TOPIC)]


def state_payload(signer, online, boot, conn, ctr):
    """A signed STATE packet: the retained presence, or (online=False) the Last Will."""
    return seal(Message(STATE, online=online, boot=boot, conn=conn), signer, UP, boot, ctr)


class Presence:
    """A device's online state as seen through its state topic."""

    def __init__(self):
        self.online = None  # None: never heard
        self.boot = -1
        self.conn = -1

    def update(self, signer, payload):
        """Apply one state payload: True if applied, False if stale (ignored).

        Raises AuthError/MessageError/CborError for a bad payload.
        """
        msg = open_packet(payload, signer, UP)
        if msg.type != STATE:
            raise TopicError("topic.payload", "%s on a state topic" % msg.name)
        if (msg.boot, msg.conn) < (self.boot, self.conn):
            return False  # a late will of an older connection
        if (msg.boot, msg.conn) == (self.boot, self.conn) and self.online is False:
            return False  # offline is final for a connection; a replayed online cannot undo it
        self.boot, self.conn, self.online = msg.boot, msg.conn, msg.online
        return True
