"""The message catalogue: every message type, its fields, their types and limits.

(No comprehensions in this module: on MicroPython a comprehension that uses a
function's variables turns them into heap cells on every call of the function.)

Strategy: the catalogue is one table (CATALOGUE) of field specs. Encoding and
decoding both walk the same specs, so a limit is written once and enforced in
both directions. A body on the wire is a CBOR array of the fields in table
order (positional, not a map: it saves a key per field, which is what keeps a
typical rating frame under 48 bytes). The arity is exact; protocol changes bump
PROTOCOL_VERSION. Structs (staff, QR matrix, reason, policy) are nested arrays
on the wire and dicts in Python; lists are lists.

Reliable types (marked R) carry their stream sequence number as field "seq",
always first; the link session (session.py) numbers, acknowledges and
retransmits them. Everything else is fire-and-forget, repeated by its sender
when it matters (HELLO, SELFTEST, PROVISION).

Rating levels follow GB/T 39046-2020 annex A.8: 1 = 非常满意 ... 5 = 非常不满意;
4 and 5 are 差评 (DOMAIN.md). Other code orders are converted at the hub edge.

Runs unchanged on CPython and MicroPython.
"""

from protocol.errors import MessageError

PROTOCOL_VERSION = 1

# Direction of travel; also the first byte of every signature input (auth.py),
# so a frame can never be reflected back to its sender as the peer's.
UP = 0x55  # device -> agent ("U")
DOWN = 0x44  # agent -> device ("D")
BOTH = 0

# Link modes: provisioning messages are legal only on a link in provisioning mode.
NORMAL = 0
PROVISIONING = 1
ANY_MODE = 2

# --- message type codes (byte 1 of the header) ---
HELLO = 0x01
RATING = 0x02
STATUS = 0x03
SELFTEST_RESULT = 0x04
PROVISIONED = 0x05
STATE = 0x06
WELCOME = 0x20
CONFIG = 0x21
TIME = 0x22
INVITE = 0x23
CANCEL = 0x24
PAUSE = 0x25
RESUME = 0x26
DISPLAY = 0x27
SELFTEST = 0x28
PROVISION = 0x29
ACK = 0x40
ERROR = 0x41

# --- enumerations carried in fields ---
KIND_EVALUATOR = 1
KIND_QR = 2
KIND_COMBINED = 3
KINDS = (KIND_EVALUATOR, KIND_QR, KIND_COMBINED)

LEVEL_VERY_SATISFIED = 1  # 非常满意
LEVEL_SATISFIED = 2  # 满意
LEVEL_BASICALLY_SATISFIED = 3  # 基本满意
LEVEL_DISSATISFIED = 4  # 不满意 (差评)
LEVEL_VERY_DISSATISFIED = 5  # 非常不满意 (差评)
BAD_LEVELS = (LEVEL_DISSATISFIED, LEVEL_VERY_DISSATISFIED)

# RATING flags (bit set). A device never drops a press: it labels it.
FLAG_REPEAT = 0x01  # a further press in the same invite; only the first counts
FLAG_UNSOLICITED = 0x02  # no open invite: never counted as a case rating
FLAG_PAUSED = 0x04  # pressed while the window was paused
FLAG_REASON_TIMEOUT = 0x08  # 差评 whose reason screen timed out without a choice
FLAG_REASON_SKIPPED = 0x10  # 差评 whose rater pressed "skip" on the reason screen
FLAG_OFFLINE = 0x20  # pressed while the link to the agent was down
FLAGS_ALL = 0x3F

# SELFTEST items.
TEST_BUTTONS = 1
TEST_DISPLAY = 2
TEST_LED = 3
TEST_BUZZER = 4
TEST_FLASH = 5
TEST_LINK = 6
TESTS = (TEST_BUTTONS, TEST_DISPLAY, TEST_LED, TEST_BUZZER, TEST_FLASH, TEST_LINK)

# STATUS error counter positions (a list, so new counters append).
ERR_FRAME = 0
ERR_AUTH = 1
ERR_REPLAY = 2
ERR_MESSAGE = 3
ERR_FLASH = 4
ERR_WATCHDOG = 5

# --- limits, each with its reason ---
U8 = 0xFF
U16 = 0xFFFF
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
ID_MAX = 32  # device and hall ids are MQTT topic levels and file names
NAME_MAX = 32  # a staff name or window label on a 128-px-wide panel, in UTF-8 bytes
TEXT_MAX = 96  # free display text: 32 CJK characters, two lines on the QR unit
DETAIL_MAX = 96  # error detail: enough to name a field and a limit
KEY_MIN = 16  # 128-bit keys at least; HMAC-SHA256 keys longer than 64 bytes add nothing
KEY_MAX = 32
CHECK_LEN = 8  # key check value, same length as a frame tag
REASONS_MAX = 12  # catalogue entries sent to a device (it shows 4 at a time)
REASON_CHOICE_MAX = 4  # reasons attached to one rating: one per reason button
QR_MIN = 21  # QR version 1
QR_MAX = 57  # QR version 10: an HTTPS URL with a signed case token fits; larger won't fit a frame
SELFTEST_MAX = 8
ERR_COUNTERS_MAX = 16


def _check_id(value, path):
    if not isinstance(value, str) or not 1 <= len(value) <= ID_MAX:
        raise MessageError("msg.field", "%s: id must be 1..%d characters" % (path, ID_MAX))
    for ch in value:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "-_"):
            raise MessageError("msg.field", "%s: id character %r not in [A-Za-z0-9_-]" % (path, ch))


def check_id(value, what="id"):
    """Validate a device or hall identifier (also used for MQTT topic levels)."""
    _check_id(value, what)


# Field spec: (name, kind, arg, optional). Kinds:
#   "u" unsigned int, arg = max      "i" signed int, arg = (lo, hi)
#   "t" UTF-8 text, arg = max bytes  "b" bytes, arg = (min, max)
#   "?" bool                         "id" identifier
#   "e" int enum, arg = allowed values
#   "l" list, arg = (item kind, item arg, max count)
#   "s" struct (array on the wire, dict in Python), arg = field specs
#   "qr" QR matrix struct: [size, packed bits], checked for consistency
def _f(name, kind, arg=None, optional=False):
    return (name, kind, arg, optional)


def _flat(*specs):
    """Field specs as one flat tuple (name, kind, arg, optional, name, ...): a tuple per
    field would cost ~3.5 KB more heap on MicroPython."""
    out = []
    for f in specs:
        out.extend(f)
    return tuple(out)


STAFF = _flat(
    _f("name", "t", NAME_MAX),  # shown at the window ("亮证上岗"), not personal data of a rater
    _f("number", "t", 16),  # 工号
    _f("title", "t", NAME_MAX, True),
)
QR = _flat(_f("size", "u", QR_MAX), _f("bits", "b", (0, (QR_MAX * QR_MAX + 7) // 8)))
REASON = _flat(
    _f("code", "u", U16),  # indicator code from the jurisdiction's catalogue, e.g. 501
    _f("zh", "t", 24),
    _f("en", "t", 24, True),
    _f("levels", "u", 0x1F),  # bit (level-1) set: offered for that level
)
POLICY = _flat(
    _f("invite_s", "u", 3600),  # rating window after an invite
    _f("reason_s", "u", 600),  # reason screen timeout
    _f("thanks_s", "u", 60),  # thanks screen duration
    _f("heartbeat_s", "u", 3600),
    _f("reason_required", "?"),  # a 差评 must carry a reason or text (DOMAIN.md)
)
LINK = _flat(_f("rssi", "i", (-127, 0), True), _f("rx_dropped", "u", U32))
TEST_RESULT = _flat(_f("item", "e", TESTS), _f("ok", "?"), _f("detail", "t", 48, True))

# type: (name, direction, reliable, mode, fields)
CATALOGUE = {
    HELLO: (
        "hello",
        UP,
        False,
        ANY_MODE,
        _flat(
            _f("device_id", "id"),
            _f("kind", "e", KINDS),
            _f("board", "t", 24),
            _f("firmware", "t", 24),
            _f("mode", "e", (NORMAL, PROVISIONING)),
            _f("config_version", "u", U32),
            _f("outbox_depth", "u", U32),
            _f("oldest", "u", U32),  # oldest unacknowledged rating seq (= next when empty)
            _f("next", "u", U32),  # next rating seq the device will assign
            _f("ticks", "u", U32),
        ),
    ),
    RATING: (
        "rating",
        UP,
        True,
        NORMAL,
        _flat(
            _f("seq", "u", U32),  # the rating's identity with the device id; never repeats
            _f("invite", "u", U32, True),
            _f("level", "e", (1, 2, 3, 4, 5)),
            _f("reasons", "l", ("u", U16, REASON_CHOICE_MAX)),
            _f("time", "u", U32, True),  # device's epoch estimate (s), None before first sync
            _f("ticks", "u", U32),  # ms ticks at the press, for the agent's correction
            _f("boot", "u", U32),  # boot (session) in which ticks were taken
            _f("flags", "u", FLAGS_ALL),
        ),
    ),
    STATUS: (
        "status",
        UP,
        False,
        ANY_MODE,
        _flat(
            _f("uptime_s", "u", U32),
            _f("ticks", "u", U32),
            _f("free_heap", "u", U32),
            _f("outbox_depth", "u", U32),
            _f("outbox_dropped", "u", U32),
            _f("errors", "l", ("u", U32, ERR_COUNTERS_MAX)),
            _f("link", "s", LINK),
            _f("ui", "u", U8),  # UI state code, see firmware
            _f("config_version", "u", U32),
        ),
    ),
    SELFTEST_RESULT: (
        "selftest_result",
        UP,
        False,
        ANY_MODE,
        _flat(_f("test", "u", U32), _f("results", "l", ("s", TEST_RESULT, SELFTEST_MAX))),
    ),
    PROVISIONED: (
        "provisioned",
        UP,
        False,
        PROVISIONING,
        _flat(_f("device_id", "id"), _f("check", "b", (CHECK_LEN, CHECK_LEN))),
    ),
    STATE: (
        "state",
        UP,
        False,
        NORMAL,
        # MQTT presence (retained, and the Last Will). Ordered by (boot, conn).
        _flat(_f("online", "?"), _f("boot", "u", U32), _f("conn", "u", U32)),
    ),
    WELCOME: (
        "welcome",
        DOWN,
        False,
        ANY_MODE,
        _flat(
            _f("device_session", "u", U32),  # echo of the HELLO's session: binds the answer
            _f("time_ms", "u", U64),  # agent's epoch time in ms
            _f("ack", "u", U32),  # last rating seq the agent has committed
            _f("heartbeat_s", "u", 3600),
        ),
    ),
    CONFIG: (
        "config",
        DOWN,
        True,
        NORMAL,
        _flat(
            _f("seq", "u", U32),
            _f("version", "u", U32),
            _f("window", "t", NAME_MAX),
            _f("staff", "s", STAFF, True),  # None: nobody signed in at the window
            _f("qr", "qr", QR, True),  # static one-code-one-account QR
            _f("reasons", "l", ("s", REASON, REASONS_MAX)),
            _f("policy", "s", POLICY),
        ),
    ),
    TIME: ("time", DOWN, False, NORMAL, _flat(_f("time_ms", "u", U64))),
    INVITE: (
        "invite",
        DOWN,
        True,
        NORMAL,
        _flat(
            _f("seq", "u", U32),
            _f("invite", "u", U32),  # bound to a case by the agent
            _f("timeout_s", "u", 3600),
            _f("staff", "s", STAFF, True),
            _f("qr", "qr", QR, True),  # dynamic per-case QR
            _f("item", "t", 48, True),  # 事项 name shown to the rater
        ),
    ),
    CANCEL: ("cancel", DOWN, True, NORMAL, _flat(_f("seq", "u", U32), _f("invite", "u", U32))),
    PAUSE: (
        "pause",
        DOWN,
        True,
        NORMAL,
        _flat(_f("seq", "u", U32), _f("reason", "t", NAME_MAX, True)),
    ),
    RESUME: ("resume", DOWN, True, NORMAL, _flat(_f("seq", "u", U32))),
    DISPLAY: (
        "display",
        DOWN,
        True,
        NORMAL,
        _flat(
            _f("seq", "u", U32),
            _f("zh", "t", TEXT_MAX),
            _f("en", "t", TEXT_MAX, True),
            _f("seconds", "u", 3600),  # 0: until the next screen change
        ),
    ),
    SELFTEST: (
        "selftest",
        DOWN,
        False,
        ANY_MODE,
        _flat(_f("test", "u", U32), _f("items", "l", ("e", TESTS, SELFTEST_MAX))),
    ),
    PROVISION: (
        "provision",
        DOWN,
        False,
        PROVISIONING,
        _flat(
            _f("device_id", "id"),
            _f("hall", "id"),
            _f("key", "b", (KEY_MIN, KEY_MAX)),
            _f("seq_base", "u", U32),  # first rating seq: above anything the agent has seen
            _f("session_base", "u", U32),  # first boot session: above anything seen
        ),
    ),
    ACK: ("ack", BOTH, False, ANY_MODE, _flat(_f("ack", "u", U32))),
    ERROR: (
        "error",
        BOTH,
        False,
        ANY_MODE,
        _flat(_f("code", "t", 24), _f("detail", "t", DETAIL_MAX), _f("ref", "u", U32, True)),
    ),
}


def spec(mtype):
    """The catalogue row of a type, or MessageError "msg.type"."""
    row = CATALOGUE.get(mtype)
    if row is None:
        raise MessageError("msg.type", "unknown message type 0x%02x" % mtype)
    return row


class Message:
    """One catalogue message. Fields are attributes; unset optional fields are None.

    session and ctr are filled in from the header when a message is decoded.
    """

    def __init__(self, mtype, **fields):
        row = spec(mtype)
        self.type = mtype
        self.session = None
        self.ctr = None
        specs = row[4]
        for i in range(0, len(specs), 4):
            setattr(self, specs[i], fields.pop(specs[i], None))
        if fields:
            raise MessageError(
                "msg.field", "%s has no field %r" % (row[0], sorted(fields.keys())[0])
            )

    @property
    def name(self):
        return CATALOGUE[self.type][0]

    def fields(self):
        """The fields as a dict, in catalogue order."""
        out = {}
        specs = CATALOGUE[self.type][4]
        for i in range(0, len(specs), 4):
            out[specs[i]] = getattr(self, specs[i])
        return out

    def __eq__(self, other):
        return (
            isinstance(other, Message)
            and self.type == other.type
            and self.fields() == other.fields()
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Message(%s, %r)" % (self.name, self.fields())


def _name(name, index):
    return name if index < 0 else "%s[%d]" % (name, index)


def _fail(name, index, what):
    # The path starts as the failing field's own name; each enclosing struct and
    # finally the message prefix theirs while the error propagates (_within), so a
    # valid message builds no path strings at all.
    raise MessageError("msg.field", _name(name, index) + ": " + what)


def _within(e, prefix):
    e.detail = prefix + "." + e.detail
    return e


def _has_field(specs, key):
    # No any(generator): a generator is a heap object on MicroPython.
    for i in range(0, len(specs), 4):  # noqa: SIM110
        if specs[i] == key:
            return True
    return False


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_qr(value):
    size = value["size"]
    if size < QR_MIN or (size - 17) % 4:
        _fail("size", -1, "%d is not a QR size (21, 25, ... %d)" % (size, QR_MAX))
    need = (size * size + 7) // 8
    if len(value["bits"]) != need:
        _fail(
            "bits",
            -1,
            "%d bytes for a %dx%d matrix, need %d" % (len(value["bits"]), size, size, need),
        )


def _to_wire(kind, arg, optional, value, name, index=-1):
    """Validate one Python value against its spec; return its wire form."""
    if value is None:
        if optional:
            return None
        _fail(name, index, "is required")
    if kind == "u":
        if not _is_int(value) or value < 0 or value > arg:
            _fail(name, index, "%r is not an integer in 0..%d" % (value, arg))
        return value
    if kind == "e":
        if not _is_int(value) or value not in arg:
            _fail(name, index, "%r is not one of %r" % (value, arg))
        return value
    if kind == "i":
        if not _is_int(value) or not arg[0] <= value <= arg[1]:
            _fail(name, index, "%r is not an integer in %d..%d" % (value, arg[0], arg[1]))
        return value
    if kind == "t":
        if not isinstance(value, str):
            _fail(name, index, "expected text, got %s" % type(value).__name__)
        if len(value) * 4 > arg:  # may not fit: count the UTF-8 bytes (at most 4 a character)
            n = len(value.encode("utf-8"))
            if n > arg:
                _fail(name, index, "text of %d bytes exceeds %d" % (n, arg))
        return value
    if kind == "b":
        if not isinstance(value, (bytes, bytearray)):
            _fail(name, index, "expected bytes, got %s" % type(value).__name__)
        if not arg[0] <= len(value) <= arg[1]:
            _fail(name, index, "%d bytes, need %d..%d" % (len(value), arg[0], arg[1]))
        return value if isinstance(value, bytes) else bytes(value)
    if kind == "?":
        if value is not True and value is not False:
            _fail(name, index, "expected true or false, got %r" % (value,))
        return value
    if kind == "id":
        _check_id(value, _name(name, index))
        return value
    if kind == "l":
        if not isinstance(value, (list, tuple)):
            _fail(name, index, "expected a list, got %s" % type(value).__name__)
        if len(value) > arg[2]:
            _fail(name, index, "%d items exceed %d" % (len(value), arg[2]))
        out = [None] * len(value)
        for i in range(len(value)):
            out[i] = _to_wire(arg[0], arg[1], False, value[i], name, i)
        return out
    if kind == "s" or kind == "qr":
        if not isinstance(value, dict):
            _fail(name, index, "expected a struct (dict), got %s" % type(value).__name__)
        try:
            known = 0
            for i in range(0, len(arg), 4):
                if arg[i] in value:
                    known += 1
            if known != len(value):
                for k in value:
                    if not _has_field(arg, k):
                        _fail(k, -1, "unknown field")
            out = [None] * (len(arg) // 4)
            for i in range(0, len(arg), 4):
                out[i // 4] = _to_wire(
                    arg[i + 1], arg[i + 2], arg[i + 3], value.get(arg[i]), arg[i]
                )
            if kind == "qr":
                _check_qr(value)
        except MessageError as e:
            raise _within(e, _name(name, index))
        return out
    raise MessageError("msg.spec", "bad spec kind %r at %s" % (kind, _name(name, index)))


def _from_wire(kind, arg, optional, value, name, index=-1):
    """Validate one decoded CBOR value against its spec; return its Python form."""
    if value is None:
        if optional:
            return None
        _fail(name, index, "is required")
    if kind == "s" or kind == "qr":
        if not isinstance(value, list):
            _fail(name, index, "expected a struct (array), got %s" % type(value).__name__)
        if len(value) * 4 != len(arg):
            _fail(name, index, "struct of %d fields, need %d" % (len(value), len(arg) // 4))
        out = {}
        try:
            for i in range(0, len(arg), 4):
                out[arg[i]] = _from_wire(arg[i + 1], arg[i + 2], arg[i + 3], value[i // 4], arg[i])
            if kind == "qr":
                _check_qr(out)
        except MessageError as e:
            raise _within(e, _name(name, index))
        return out
    if kind == "l":
        if not isinstance(value, list):
            _fail(name, index, "expected a list, got %s" % type(value).__name__)
        if len(value) > arg[2]:
            _fail(name, index, "%d items exceed %d" % (len(value), arg[2]))
        out = [None] * len(value)
        for i in range(len(value)):
            out[i] = _from_wire(arg[0], arg[1], False, value[i], name, i)
        return out
    # Scalars have the same form on the wire and in Python.
    return _to_wire(kind, arg, optional, value, name, index)


def to_body(msg):
    """The message's body as a list of wire values (validated)."""
    row = spec(msg.type)
    f = row[4]
    out = [None] * (len(f) // 4)
    try:
        for i in range(0, len(f), 4):
            out[i // 4] = _to_wire(f[i + 1], f[i + 2], f[i + 3], getattr(msg, f[i]), f[i])
    except MessageError as e:
        raise _within(e, row[0])
    return out


def from_body(mtype, body):
    """Build a validated Message from a decoded CBOR body."""
    row = spec(mtype)
    f = row[4]
    if not isinstance(body, list):
        raise MessageError("msg.body", "%s body must be an array" % row[0])
    if len(body) * 4 != len(f):
        raise MessageError(
            "msg.arity", "%s has %d fields, got %d" % (row[0], len(f) // 4, len(body))
        )
    msg = Message(mtype)
    try:
        for i in range(0, len(f), 4):
            setattr(msg, f[i], _from_wire(f[i + 1], f[i + 2], f[i + 3], body[i // 4], f[i]))
    except MessageError as e:
        raise _within(e, row[0])
    return msg
