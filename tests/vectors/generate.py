"""Generate the protocol test vectors (tests/vectors/*.jsonl).

    uv run python tests/vectors/generate.py          # rewrite the files
    uv run python tests/vectors/generate.py --check  # fail if they are stale

Every good vector is built twice: by protocol/ and by an independent encoder
made of cbor2, the standard library's hmac and binascii.crc_hqx, and a COBS
written here from the paper. The two must agree byte for byte, so the vectors
pin down the spec (docs/protocol.md), not just our implementation. Bad vectors
are damaged frames with the error code a receiver must give.

Files (one JSON object per line, so small devices can stream them):
- messages.jsonl: message fields <-> packet hex <-> frame hex
- bad_frames.jsonl: frame hex -> error code
- replay.jsonl: (session, ctr) sequences -> accept or error code per step
"""

import binascii
import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path

import cbor2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "portable"))

from examples import bad_rating, examples

from protocol import messages as M
from protocol.framing import MAX_ENCODED, MAX_PACKET, encode_frame
from protocol.messages import Message, to_body
from protocol.packet import Signer, seal

HERE = Path(__file__).resolve().parent
KEY = bytes(range(32))
SESSION = 3
DIRS = {M.UP: "up", M.DOWN: "down"}


# ---- the independent reference encoder ----
def ref_cobs(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def ref_packet(
    mtype: int, body: bytes, direction: int, session: int, ctr: int, key: bytes
) -> bytes:
    header = struct.pack(">BBII", M.PROTOCOL_VERSION, mtype, session, ctr)
    tag = hmac.new(key, bytes([direction]) + header + body, hashlib.sha256).digest()[:8]
    return header + body + tag


def ref_frame(packet: bytes) -> bytes:
    crc = binascii.crc_hqx(packet, 0)
    return ref_cobs(packet + struct.pack(">H", crc)) + b"\x00"


# ---- JSON form of field values ----
def to_json(v):
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    return v


def direction_of(m: Message) -> int:
    d = M.CATALOGUE[m.type][1]
    return M.UP if d == M.BOTH else d


def good_vector(name: str, m: Message, ctr: int) -> dict:
    d = direction_of(m)
    packet = seal(m, Signer(KEY), d, SESSION, ctr)
    frame = encode_frame(packet)
    ref = ref_packet(m.type, cbor2.dumps(to_body(m)), d, SESSION, ctr, KEY)
    assert packet == ref, f"{name}: packet differs from the reference encoder"
    assert frame == ref_frame(ref), f"{name}: frame differs from the reference encoder"
    return {
        "name": name,
        "type": m.type,
        "direction": DIRS[d],
        "session": SESSION,
        "ctr": ctr,
        "fields": to_json(m.fields()),
        "packet": packet.hex(),
        "frame": frame.hex(),
        "wire_bytes": len(frame),
    }


def max_config() -> Message:
    """The largest message the catalogue allows: a CONFIG with every field at its limit."""
    reasons = [
        {
            "code": 60000 + i,
            "zh": "原因说明八个字符",
            "en": f"Reason text number {i:02d}...",
            "levels": 0x1F,
        }
        for i in range(M.REASONS_MAX)
    ]
    qr = {"size": M.QR_MAX, "bits": bytes((i * 37) & 0xFF for i in range((57 * 57 + 7) // 8))}
    m = Message(
        M.CONFIG,
        seq=M.U32,
        version=M.U32,
        window="综合受理服务窗口第01",
        qr=qr,
        reasons=reasons,
        staff={
            "name": "欧阳明月欧阳明月欧阳AB",
            "number": "330203-000000001",
            "title": "首席代办员首席代办员A",
        },
        policy={
            "invite_s": 3600,
            "reason_s": 600,
            "thanks_s": 60,
            "heartbeat_s": 3600,
            "reason_required": True,
        },
    )
    assert len(seal(m, Signer(KEY), M.DOWN, SESSION, 1)) <= MAX_PACKET
    return m


def messages() -> list[dict]:
    out = [good_vector(n, m, 10 + i) for i, (n, m) in enumerate(examples())]
    out.append(good_vector("rating-bad-two-reasons", bad_rating(), 40))
    out.append(good_vector("config-max-size", max_config(), 41))
    return out


# ---- bad frames ----
def signed_raw(mtype: int, body: bytes, direction: int = M.UP, version: int = 1) -> bytes:
    header = struct.pack(">BBII", version, mtype, SESSION, 99)
    tag = hmac.new(KEY, bytes([direction]) + header + body, hashlib.sha256).digest()[:8]
    return header + body + tag


def bad(name: str, frame: bytes, error: str, direction: str = "up", note: str = "") -> dict:
    return {
        "name": name,
        "frame": frame.hex(),
        "direction": direction,
        "error": error,
        "note": note,
    }


def bad_frames() -> list[dict]:
    _n, rating = examples()[1]
    good = seal(rating, Signer(KEY), M.UP, SESSION, 5)
    crc = struct.pack(">H", binascii.crc_hqx(good, 0) ^ 0x0001)
    flipped = bytearray(good)
    flipped[12] ^= 0x04
    ack_hdr = M.ACK
    return [
        bad(
            "crc-mismatch",
            ref_cobs(good + crc) + b"\x00",
            "frame.crc",
            note="one bit of the CRC flipped",
        ),
        bad(
            "cobs-overrun",
            b"\x05\x01\x02\x00",
            "frame.cobs",
            note="code byte 5 promises 4 bytes, only 2 follow",
        ),
        bad(
            "too-short",
            ref_cobs(b"\x01\x02") + b"\x00",
            "frame.short",
            note="2 bytes: no room for a packet and its CRC",
        ),
        bad(
            "oversize",
            b"\x01" * (MAX_ENCODED + 1) + b"\x00",
            "frame.oversize",
            note="no delimiter within MAX_ENCODED bytes",
        ),
        bad(
            "packet-truncated",
            ref_frame(good[:17]),
            "auth.truncated",
            note="17 bytes cannot hold a 10-byte header and an 8-byte tag",
        ),
        bad(
            "forged-body",
            ref_frame(bytes(flipped)),
            "auth.mac",
            note="a body byte changed, CRC recomputed: only the tag catches it",
        ),
        bad(
            "wrong-key",
            ref_frame(
                ref_packet(M.RATING, cbor2.dumps(to_body(rating)), M.UP, SESSION, 5, b"\x55" * 32)
            ),
            "auth.mac",
        ),
        bad(
            "reflected",
            ref_frame(good),
            "auth.mac",
            direction="down",
            note="a device's frame sent back to it as if from the agent",
        ),
        bad("version-2", ref_frame(signed_raw(ack_hdr, b"\x81\x01", version=2)), "msg.version"),
        bad("unknown-type", ref_frame(signed_raw(0x7E, b"\x80")), "msg.type"),
        bad("down-type-sent-up", ref_frame(signed_raw(M.INVITE, b"\x80")), "msg.direction"),
        bad("arity", ref_frame(signed_raw(ack_hdr, b"\x82\x01\x02")), "msg.arity"),
        bad(
            "field-range", ref_frame(signed_raw(ack_hdr, b"\x81\x20")), "msg.field", note="ack = -1"
        ),
        bad("body-not-array", ref_frame(signed_raw(ack_hdr, b"\x01")), "msg.body"),
        bad("cbor-tag", ref_frame(signed_raw(ack_hdr, b"\xc1\x81\x01")), "cbor.tag"),
        bad("cbor-float16", ref_frame(signed_raw(ack_hdr, b"\x81\xf9\x3c\x00")), "cbor.float16"),
        bad("cbor-indefinite", ref_frame(signed_raw(ack_hdr, b"\x9f\x01\xff")), "cbor.indefinite"),
        bad("cbor-trailing", ref_frame(signed_raw(ack_hdr, b"\x81\x01\x01")), "cbor.trailing"),
        bad("cbor-truncated", ref_frame(signed_raw(ack_hdr, b"\x82\x01")), "cbor.truncated"),
    ]


def replay() -> list[dict]:
    w = 32
    return [
        {
            "name": "in-order-then-duplicate",
            "min_session": 0,
            "steps": [[1, 1, "ok"], [1, 2, "ok"], [1, 2, "replay.seen"]],
        },
        {
            "name": "late-inside-window",
            "min_session": 0,
            "steps": [[1, 10, "ok"], [1, 8, "ok"], [1, 9, "ok"], [1, 8, "replay.seen"]],
        },
        {
            "name": "outside-window",
            "min_session": 0,
            "steps": [[1, 100, "ok"], [1, 100 - w + 1, "ok"], [1, 100 - w, "replay.old"]],
        },
        {
            "name": "new-session-resets",
            "min_session": 0,
            "steps": [
                [1, 500, "ok"],
                [2, 1, "ok"],
                [1, 501, "replay.session"],
                [2, 1, "replay.seen"],
            ],
        },
        {
            "name": "persisted-min-session",
            "min_session": 5,
            "steps": [[4, 1, "replay.session"], [5, 1, "ok"]],
        },
    ]


def write(name: str, rows: list[dict], check: bool) -> bool:
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path = HERE / name
    if check:
        same = path.exists() and path.read_text(encoding="utf-8") == text
        if not same:
            print(f"{path} is stale: run tests/vectors/generate.py")
        return same
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(rows)} vectors)")
    return True


def main() -> int:
    check = "--check" in sys.argv
    ok = all(
        [
            write("messages.jsonl", messages(), check),
            write("bad_frames.jsonl", bad_frames(), check),
            write("replay.jsonl", replay(), check),
        ]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
