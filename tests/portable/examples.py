"""One realistic example of every message type (used by tests, vectors and benchmarks)."""

from protocol import messages as M
from protocol.messages import Message

STAFF = {"name": "王小明", "number": "A0123", "title": "综合窗口"}
QR21 = {"size": 21, "bits": bytes(range(56))}  # 21*21 bits = 56 bytes
POLICY = {"invite_s": 60, "reason_s": 20, "thanks_s": 3, "heartbeat_s": 30, "reason_required": True}
REASONS = [
    {"code": 501, "zh": "服务态度差", "en": "Attitude", "levels": 0x18},
    {"code": 502, "zh": "办理效率低", "en": "Slow", "levels": 0x18},
    {"code": 503, "zh": "流程繁琐", "en": None, "levels": 0x18},
]


def examples():
    """A list of (name, Message), one per catalogue type, in type order."""
    ex = [
        Message(
            M.HELLO,
            device_id="EV-0001",
            kind=M.KIND_EVALUATOR,
            board="esp32s3-oled",
            firmware="0.1.0",
            mode=M.NORMAL,
            config_version=3,
            outbox_depth=2,
            oldest=1233,
            next=1235,
            ticks=123456,
        ),
        Message(
            M.RATING,
            seq=1234,
            invite=77,
            level=M.LEVEL_SATISFIED,
            reasons=[],
            time=1790000000,
            ticks=123456789,
            boot=3,
            flags=0,
        ),
        Message(
            M.STATUS,
            uptime_s=86400,
            ticks=86400000,
            free_heap=41234,
            outbox_depth=0,
            outbox_dropped=0,
            errors=[0, 1, 0, 0, 0, 0],
            link={"rssi": -61, "rx_dropped": 2},
            ui=1,
            config_version=3,
        ),
        Message(
            M.SELFTEST_RESULT,
            test=9,
            results=[
                {"item": M.TEST_BUTTONS, "ok": True, "detail": None},
                {"item": M.TEST_BUZZER, "ok": False, "detail": "no current"},
            ],
        ),
        Message(M.PROVISIONED, device_id="EV-0001", check=b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        Message(M.STATE, online=False, boot=3, conn=2),
        Message(M.WELCOME, device_session=3, time_ms=1790000000123, ack=1232, heartbeat_s=30),
        Message(
            M.CONFIG,
            seq=1,
            version=3,
            window="综合窗口 01",
            staff=STAFF,
            qr=QR21,
            reasons=REASONS,
            policy=POLICY,
        ),
        Message(M.TIME, time_ms=1790000000456),
        Message(
            M.INVITE, seq=2, invite=78, timeout_s=60, staff=STAFF, qr=None, item="居民身份证换领"
        ),
        Message(M.CANCEL, seq=3, invite=78),
        Message(M.PAUSE, seq=4, reason="午休"),
        Message(M.RESUME, seq=5),
        Message(M.DISPLAY, seq=6, zh="系统维护中，请稍候", en="Maintenance", seconds=10),
        Message(M.SELFTEST, test=9, items=[M.TEST_BUTTONS, M.TEST_DISPLAY, M.TEST_BUZZER]),
        Message(
            M.PROVISION,
            device_id="EV-0001",
            hall="hall-330203",
            key=b"K" * 32,
            seq_base=1,
            session_base=1,
        ),
        Message(M.ACK, ack=1234),
        Message(
            M.ERROR,
            code="msg.field",
            detail="rating.level: 9 is not one of (1, 2, 3, 4, 5)",
            ref=17,
        ),
    ]
    return [(m.name, m) for m in ex]


def example(name):
    """A fresh example message of the named type ("rating", "config", ...)."""
    for n, m in examples():
        if n == name:
            return m
    raise KeyError(name)


def bad_rating():
    """A 差评 with two reasons: the typical worst case of the frequent message."""
    return Message(
        M.RATING,
        seq=70000,
        invite=100000,
        level=M.LEVEL_VERY_DISSATISFIED,
        reasons=[501, 502],
        time=1790000000,
        ticks=123456789,
        boot=300,
        flags=M.FLAG_REPEAT,
    )
