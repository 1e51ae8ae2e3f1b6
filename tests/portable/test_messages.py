"""Message catalogue: every type round-trips; every field limit is enforced both ways."""

from check import raises
from examples import QR21, STAFF, examples

from protocol import messages as M
from protocol.errors import MessageError
from protocol.messages import Message, from_body, to_body


def test_every_type_has_an_example_and_round_trips():
    names = [n for n, _ in examples()]
    assert sorted(names) == sorted(row[0] for row in M.CATALOGUE.values())
    for _name, m in examples():
        back = from_body(m.type, to_body(m))
        assert back == m, (m, back)


def test_reliable_types_carry_seq_first():
    for _t, row in M.CATALOGUE.items():
        if row[2]:
            assert row[4][0] == "seq", row[0]


def test_directions():
    assert M.CATALOGUE[M.RATING][1] == M.UP
    assert M.CATALOGUE[M.INVITE][1] == M.DOWN
    assert M.CATALOGUE[M.ACK][1] == M.BOTH


def _rating(**kw):
    f = {
        "seq": 1,
        "invite": None,
        "level": 2,
        "reasons": [],
        "time": None,
        "ticks": 0,
        "boot": 1,
        "flags": 0,
    }
    f.update(kw)
    return Message(M.RATING, **f)


def _bad(msg, path_part):
    e = raises(MessageError, "msg.field", to_body, msg)
    assert path_part in e.detail, e.detail
    return e


def test_field_limits_on_encode():
    _bad(_rating(level=0), "rating.level")
    _bad(_rating(level=6), "rating.level")
    _bad(_rating(level=True), "rating.level")
    _bad(_rating(seq=-1), "rating.seq")
    _bad(_rating(seq=M.U32 + 1), "rating.seq")
    _bad(_rating(flags=0x40), "rating.flags")
    _bad(_rating(reasons=[1, 2, 3, 4, 5]), "rating.reasons")
    _bad(_rating(reasons=[70000]), "rating.reasons[0]")
    _bad(_rating(seq=None), "is required")
    _bad(_rating(ticks="1"), "rating.ticks")


def test_text_limits_count_utf8_bytes():
    staff = dict(STAFF, name="王" * 10)  # 30 bytes: fits NAME_MAX=32
    m = Message(M.INVITE, seq=1, invite=1, timeout_s=60, staff=staff, qr=None, item=None)
    to_body(m)
    m.staff = dict(STAFF, name="王" * 11)  # 33 bytes
    _bad(m, "invite.staff.name")


def test_struct_and_bytes_checks():
    m = Message(M.INVITE, seq=1, invite=1, timeout_s=60, staff={"name": "a"}, qr=None, item=None)
    _bad(m, "invite.staff.number")
    m.staff = dict(STAFF, extra=1)
    _bad(m, "unknown field")
    m.staff = {"name": "a", "number": "1", "titel": "typo"}  # same size as the spec
    _bad(m, "unknown field")
    m.staff = None
    m.qr = {"size": 22, "bits": b"\x00" * 61}
    _bad(m, "invite.qr.size")
    m.qr = {"size": 21, "bits": b"\x00" * 55}
    _bad(m, "invite.qr.bits")
    m.qr = {"size": 61, "bits": b"\x00" * 466}
    _bad(m, "invite.qr.size")
    m.qr = QR21
    to_body(m)
    p = Message(M.PROVISION, device_id="EV-1", hall="h", key=b"k" * 15, seq_base=1, session_base=1)
    _bad(p, "provision.key")
    p.key = b"k" * 16
    to_body(p)


def test_ids_are_topic_safe():
    for bad in ("", "a/b", "a+b", "a#", "设备", "x" * 33, "a b"):
        m = Message(M.PROVISIONED, device_id=bad, check=b"12345678")
        _bad(m, "device_id")
    M.check_id("EV-0001_a")


def test_decode_checks_arity_body_and_types():
    raises(MessageError, "msg.arity", from_body, M.RATING, [1, None, 2])
    raises(MessageError, "msg.body", from_body, M.RATING, {"seq": 1})
    raises(MessageError, "msg.type", from_body, 0x7F, [])
    body = to_body(_rating())
    body[2] = 9
    raises(MessageError, "msg.field", from_body, M.RATING, body)
    body = to_body(
        Message(M.INVITE, seq=1, invite=1, timeout_s=60, staff=STAFF, qr=None, item=None)
    )
    body[3] = ["a", "b"]  # struct with a missing field
    raises(MessageError, "msg.field", from_body, M.INVITE, body)
    body[3] = "not a struct"
    raises(MessageError, "msg.field", from_body, M.INVITE, body)


def test_unknown_constructor_field_is_an_error():
    e = raises(MessageError, "msg.field", Message, M.ACK, ack=1, nak=2)
    assert "nak" in e.detail


def test_equality_and_repr():
    a, b = _rating(), _rating()
    assert a == b and not (a != b)  # noqa: SIM202 (tests __ne__, which MicroPython does not derive)
    b.level = 4
    assert a != b
    assert "rating" in repr(a)
