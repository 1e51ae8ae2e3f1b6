"""MQTT 3.1.1 control packets, sans-IO: bytes in, tuples out, and back.

Strategy. The client (mqtt.py) owns sockets, timers and state; this module only builds
and checks packets, so CPython tests can run it under hypothesis and it can refuse any
malformed input from a broker with one clear error. Only what a device client needs is
here: it encodes CONNECT, PUBLISH, PUBACK, SUBSCRIBE, PINGREQ and DISCONNECT, and decodes
what a broker may send it (CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP). Everything else
from a broker is a protocol violation (MQTT 3.1.1 §2, §3). QoS 2 is not used (the
application deduplicates; DESIGN.md), so a QoS 2 packet from the broker is refused too.

Runs unchanged on CPython and MicroPython.
"""

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82  # §3.8.1: the fixed-header flags of SUBSCRIBE are 0b0010
SUBACK = 0x90
PINGREQ = b"\xc0\x00"
PINGRESP = 0xD0
DISCONNECT = b"\xe0\x00"

MAX_REMAINING = 268435455  # §2.2.3: four bytes of variable-length integer
MAX_STR = 65535  # §1.5.3: a two-byte length prefix

# §3.2.2.3 CONNACK return codes 1..5, for a clear refusal message.
REFUSALS = (
    "accepted",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
)


class MqttError(OSError):
    """A failed MQTT link, with a stable ``code`` ("mqtt.*") and a ``detail``.

    An OSError, so the application's one "link lost" handler covers it. Codes:
    mqtt.refused (CONNACK return code in ``rc``), mqtt.protocol (the broker broke
    MQTT 3.1.1), mqtt.oversize (a packet above the size limit), mqtt.timeout (a wait
    expired), mqtt.closed (the connection is gone), mqtt.suback (a subscription was
    refused), mqtt.tls (the TLS handshake failed, e.g. the broker's certificate is not
    signed by the configured CA), mqtt.arg (a bad argument).
    """

    def __init__(self, code, detail="", rc=0):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.rc = rc

    def __str__(self):
        if self.detail:
            return self.code + ": " + self.detail
        return self.code


def _bad(detail):
    return MqttError("mqtt.protocol", detail)


def varint(n):
    """The remaining-length encoding of n (§2.2.3)."""
    if n < 0 or n > MAX_REMAINING:
        raise MqttError("mqtt.arg", "remaining length %d outside 0..%d" % (n, MAX_REMAINING))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, pos=0):
    """(value, next position) of the remaining length at buf[pos:], or None if incomplete.

    A fifth continuation byte is refused (§2.2.3: at most four bytes); a non-minimal
    encoding is accepted, as the standard's decoding algorithm does.
    """
    n = 0
    shift = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        b = buf[pos + i]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos + i + 1
        shift += 7
    raise _bad("remaining length longer than four bytes")


def _text(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > MAX_STR:
        raise MqttError("mqtt.arg", "string of %d bytes, limit %d" % (len(b), MAX_STR))
    return len(b).to_bytes(2, "big") + b


def encode_str(s):
    """A UTF-8 string (or bytes) with its two-byte length (§1.5.3)."""
    return _text(s)


def decode_str(buf, pos):
    """(str, next position) of the length-prefixed UTF-8 string at buf[pos:]."""
    if pos + 2 > len(buf):
        raise _bad("string length truncated")
    n = (buf[pos] << 8) | buf[pos + 1]
    end = pos + 2 + n
    if end > len(buf):
        raise _bad("string of %d bytes truncated at %d" % (n, len(buf) - pos - 2))
    raw = bytes(buf[pos + 2 : end])
    if b"\x00" in raw:
        raise _bad("U+0000 in a string")  # §1.5.3
    try:
        return str(raw, "utf-8"), end
    except UnicodeError:
        raise _bad("string is not UTF-8")


def check_topic(topic, filter_ok=False):
    """Refuse an empty topic, or wildcards in a topic name (§4.7)."""
    if not topic:
        raise MqttError("mqtt.arg", "empty topic")
    if not filter_ok and ("+" in topic or "#" in topic):
        raise MqttError("mqtt.arg", "wildcard in topic name %r" % topic)


def packet(first, body):
    """A whole control packet: fixed header (type and flags, remaining length) and body."""
    return bytes((first,)) + varint(len(body)) + body


def _pid(pid):
    if not 0 < pid < 65536:
        raise MqttError("mqtt.arg", "packet id %d outside 1..65535" % pid)
    return pid.to_bytes(2, "big")


def connect(client_id, keepalive, clean=True, user=None, password=None, will=None):
    """CONNECT (§3.1). will: (topic, payload, qos, retain) or None."""
    if not 0 <= keepalive < 65536:
        raise MqttError("mqtt.arg", "keepalive %d outside 0..65535 s" % keepalive)
    if password is not None and user is None:
        raise MqttError("mqtt.arg", "a password needs a user name")  # §3.1.2.9
    flags = 0x02 if clean else 0
    tail = _text(client_id)
    if will is not None:
        topic, payload, qos, retain = will
        check_topic(topic)
        if qos not in (0, 1):
            raise MqttError("mqtt.arg", "will QoS %r not 0 or 1" % qos)
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        tail += _text(topic) + _text(payload)
    if user is not None:
        flags |= 0x80
        tail += _text(user)
    if password is not None:
        flags |= 0x40
        tail += _text(password)
    body = b"\x00\x04MQTT\x04" + bytes((flags,)) + keepalive.to_bytes(2, "big") + tail
    return packet(CONNECT, body)


def publish(topic, payload, qos=0, pid=0, retain=False, dup=False):
    """PUBLISH (§3.3) of bytes payload; pid only for QoS 1."""
    check_topic(topic)
    if qos not in (0, 1):
        raise MqttError("mqtt.arg", "QoS %r not 0 or 1" % qos)
    if dup and not qos:
        raise MqttError("mqtt.arg", "DUP on a QoS 0 message")  # §3.3.1.1
    first = PUBLISH | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    return packet(first, _text(topic) + (_pid(pid) if qos else b"") + bytes(payload))


def puback(pid):
    return packet(PUBACK, _pid(pid))


def subscribe(pid, topics):
    """SUBSCRIBE (§3.8) of [(topic filter, qos), ...]."""
    if not topics:
        raise MqttError("mqtt.arg", "SUBSCRIBE without a topic")  # §3.8.3
    body = _pid(pid)
    for topic, qos in topics:
        check_topic(topic, True)
        if qos not in (0, 1):
            raise MqttError("mqtt.arg", "QoS %r not 0 or 1" % qos)
        body += _text(topic) + bytes((qos,))
    return packet(SUBSCRIBE, body)


def split(buf, limit=MAX_REMAINING):
    """(first byte, body, packet length) of the first whole packet in buf, or None.

    limit bounds the remaining length: a larger packet is refused before it is read.
    """
    if not buf:
        return None
    got = read_varint(buf, 1)
    if got is None:
        return None
    n, start = got
    if n > limit:
        raise MqttError("mqtt.oversize", "packet of %d bytes, limit %d" % (n, limit))
    if start + n > len(buf):
        return None
    return buf[0], bytes(buf[start : start + n]), start + n


def _get_pid(body, pos):
    if pos + 2 > len(body):
        raise _bad("packet id truncated")
    pid = (body[pos] << 8) | body[pos + 1]
    if pid == 0:
        raise _bad("packet id 0")  # §2.3.1
    return pid


def decode(first, body):
    """Check one packet a broker sent; returns a tuple naming it:

    ("connack", session_present, rc), ("publish", topic, payload, qos, pid, retain, dup),
    ("puback", pid), ("suback", pid, [codes]), ("pingresp",).
    Anything malformed or not sent by brokers raises MqttError("mqtt.protocol").
    """
    kind = first & 0xF0
    n = len(body)
    if kind == PUBLISH:
        qos = (first >> 1) & 3
        dup = bool(first & 0x08)
        if qos > 1:
            raise _bad("PUBLISH with QoS %d (this client subscribes at QoS 0/1)" % qos)
        if dup and not qos:
            raise _bad("DUP on a QoS 0 PUBLISH")
        topic, pos = decode_str(body, 0)
        if not topic or "+" in topic or "#" in topic:
            raise _bad("PUBLISH topic %r is not a topic name" % topic)
        pid = 0
        if qos:
            pid = _get_pid(body, pos)
            pos += 2
        return ("publish", topic, body[pos:], qos, pid, bool(first & 1), dup)
    if kind == CONNACK:
        if first != CONNACK or n != 2 or body[0] & 0xFE:
            raise _bad("malformed CONNACK")
        if body[1] >= len(REFUSALS):
            raise _bad("CONNACK return code %d" % body[1])
        return ("connack", bool(body[0]), body[1])
    if kind == PUBACK:
        if first != PUBACK or n != 2:
            raise _bad("malformed PUBACK")
        return ("puback", _get_pid(body, 0))
    if kind == SUBACK:
        if first != SUBACK or n < 3:
            raise _bad("malformed SUBACK")
        codes = list(body[2:])
        for c in codes:
            if c not in (0, 1, 2, 0x80):
                raise _bad("SUBACK return code 0x%02x" % c)
        return ("suback", _get_pid(body, 0), codes)
    if kind == PINGRESP:
        if first != PINGRESP or n:
            raise _bad("malformed PINGRESP")
        return ("pingresp",)
    raise _bad("packet type %d is not one a broker sends this client" % (first >> 4))


def backoff_ms(failures, base_ms, cap_ms, r16):
    """Delay before reconnect attempt number failures+1: exponential, capped, jittered.

    Equal jitter: half the exponential delay is fixed, the other half scaled by r16
    (a random 0..65535), so devices that lost the same broker do not return in step.
    """
    if failures <= 0:
        return 0
    d = base_ms << min(failures - 1, 16)
    if d > cap_ms:
        d = cap_ms
    half = d // 2
    return half + (half * r16 >> 16)
