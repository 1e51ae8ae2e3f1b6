"""Signed QR tokens for phone rating (掌上评) and their matrices for the QR display unit.

Strategy: the QR unit at a window shows a URL of the hub's rating page carrying a token
that says which case, window and staff account a phone rating belongs to, and until when.
The agent signs it with a per-hall secret (HMAC-SHA256, created in the store on first use,
never logged; ``hcp agent qr-secret`` exports it once for the hub); the hub verifies it
offline, without asking the agent, so a phone rating is bound to the right case even when
the hall is unreachable (DOMAIN.md "User–case–rating fully linked").

Token, version 1 (docs/hall-admin.md, "Case QR tokens", is the reference for the hub)::

    token = "1" "." kid "." hall "." window "." staff "." case "." exp "." mac
    kid   = decimal key id (the secret's generation; rotation keeps old ids verifiable)
    hall, window, staff = ids [A-Za-z0-9_-]{1,32}; staff is empty when nobody is signed in
    case  = the case number itself if it matches [A-Za-z0-9_-]+, otherwise "~" followed by
            base64url (no padding) of its UTF-8; empty for the static staff code (一码一账号)
    exp   = expiry, Unix time in seconds, decimal
    mac   = base64url (no padding) of HMAC-SHA256(secret, every byte before ".mac")[:16]
    URL   = qr_base_url + "?t=" + token

128-bit MACs: unlike frame tags (verified online, one guess per frame), a token is public
and can be attacked offline at leisure, so it gets the full-strength margin that RFC 2104
recommends for that case (≥ 80 bits).

Matrices: segno renders the URL at error correction M (15 %: survives a scuffed screen),
falling back to L when M would need more than QR version 10, the largest the protocol
carries (``QR_MAX`` 57 modules). Larger still raises QrTooLong; the invite then goes out
without a QR and a counter says so. Bits are packed as docs/protocol.md says: row by row,
top-left first, 1 = dark, MSB first, no row padding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

import segno

TOKEN_VERSION = "1"
MAC_BYTES = 16  # 128 bits: tokens are public and can be attacked offline
QR_MAX_VERSION = 10  # protocol QR_MAX = 57 modules
_PLAIN_CASE = re.compile(r"^[A-Za-z0-9_-]+$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class QrTooLong(ValueError):
    """The URL needs more than QR version 10 even at error correction L."""


class TokenError(ValueError):
    """A token that does not verify: malformed, wrong MAC or expired."""


@dataclass(frozen=True)
class TokenClaims:
    kid: int
    hall_id: str
    window_id: str
    staff_id: str | None
    case_no: str | None  # None: the static staff code
    expires_s: int


# The static 一码一账号 code of a bound position is printed (hcp labels) and shown by the QR
# unit: both must be one matrix, stable until the window is bound to someone else.
STATIC_VALID_S = 3 * 365 * 86400


def static_expiry(since_ms: int) -> int:
    """The static code's expiry (s), derived from the position's start: the same token on
    every render, so the printed label and the QR unit's screen match."""
    return (since_ms // 1000 + STATIC_VALID_S) // 86400 * 86400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES])


def make_token(secret: bytes, claims: TokenClaims) -> str:
    if claims.case_no is None:
        case = ""
    elif _PLAIN_CASE.match(claims.case_no):
        case = claims.case_no
    else:
        case = "~" + _b64(claims.case_no.encode("utf-8"))
    body = ".".join(
        (
            TOKEN_VERSION,
            str(claims.kid),
            claims.hall_id,
            claims.window_id,
            claims.staff_id or "",
            case,
            str(claims.expires_s),
        )
    )
    return body + "." + _mac(secret, body)


def verify_token(token: str, secrets_by_kid: dict[int, bytes], now_s: int) -> TokenClaims:
    """The claims of a valid, unexpired token; TokenError otherwise (the hub's algorithm)."""
    parts = token.split(".")
    if len(parts) != 8 or parts[0] != TOKEN_VERSION or not parts[1].isdigit():
        raise TokenError("malformed token")
    secret = secrets_by_kid.get(int(parts[1]))
    if secret is None:
        raise TokenError("unknown key id")
    body, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(_mac(secret, body), mac):
        raise TokenError("bad MAC")
    _, kid, hall, window, staff, case, exp = parts[:7]
    if not (_ID.match(hall) and _ID.match(window) and (staff == "" or _ID.match(staff))):
        raise TokenError("malformed ids")
    if not exp.isdigit() or int(exp) < now_s:
        raise TokenError("expired")
    case_no: str | None
    if case == "":
        case_no = None
    elif case.startswith("~"):
        case_no = _unb64(case[1:]).decode("utf-8")
    else:
        case_no = case
    return TokenClaims(int(kid), hall, window, staff or None, case_no, int(exp))


def token_url(base_url: str, token: str) -> str:
    return f"{base_url}?t={token}"


def render(data: str) -> dict[str, object]:
    """The protocol's QR struct {size, bits} for data (QrTooLong past version 10)."""
    qr = None
    for level in ("m", "l"):
        candidate = segno.make_qr(data, error=level, boost_error=False)
        if isinstance(candidate.version, int) and candidate.version <= QR_MAX_VERSION:
            qr = candidate
            break
    if qr is None:
        raise QrTooLong(f"{len(data.encode())} bytes need more than QR version {QR_MAX_VERSION}")
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=0)]
    return {"size": len(rows), "bits": pack_bits(rows)}


def pack_bits(rows: list[list[int]]) -> bytes:
    """Rows of 0/1 modules -> MSB-first bits, row by row, no row padding."""
    size = len(rows)
    out = bytearray((size * size + 7) // 8)
    i = 0
    for row in rows:
        for module in row:
            if module:
                out[i >> 3] |= 0x80 >> (i & 7)
            i += 1
    return bytes(out)


def unpack_bits(size: int, bits: bytes) -> list[list[int]]:
    """The inverse of pack_bits (tests, and anything drawing the matrix)."""
    return [
        [(bits[(r * size + c) >> 3] >> (7 - ((r * size + c) & 7))) & 1 for c in range(size)]
        for r in range(size)
    ]
