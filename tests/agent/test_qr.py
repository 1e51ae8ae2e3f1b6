"""Case QR tokens (sign, verify, tamper, expire) and their matrices in the protocol's bits."""

from __future__ import annotations

import pytest
import segno

from edge_agent.qr import (
    QrTooLong,
    TokenClaims,
    TokenError,
    make_token,
    pack_bits,
    render,
    token_url,
    unpack_bits,
    verify_token,
)

SECRET = bytes(range(32))
CLAIMS = TokenClaims(1, "H330201001", "W01", "S001", "330201-2026-000123", 1_790_000_060)


def test_round_trip_and_format() -> None:
    token = make_token(SECRET, CLAIMS)
    parts = token.split(".")
    assert parts[:7] == ["1", "1", "H330201001", "W01", "S001", "330201-2026-000123", "1790000060"]
    assert len(parts[7]) == 22  # 16 bytes of MAC, base64url without padding
    assert verify_token(token, {1: SECRET}, now_s=1_790_000_000) == CLAIMS


def test_static_staff_code_and_unusual_case_numbers() -> None:
    staff = TokenClaims(1, "H1", "W01", "S001", None, 2_000_000_000)
    assert make_token(SECRET, staff).split(".")[5] == ""
    odd = TokenClaims(1, "H1", "W01", None, "浙政办〔2026〕12号", 2_000_000_000)
    token = make_token(SECRET, odd)
    assert token.split(".")[5].startswith("~") and token.split(".")[4] == ""
    assert verify_token(token, {1: SECRET}, now_s=0) == odd


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("W01", "W02"),
        lambda t: t.replace("S001", "S002"),
        lambda t: t.replace("1790000060", "1890000060"),
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "2" + t[1:],
        lambda t: t.rsplit(".", 1)[0],
    ],
)
def test_tampering_is_detected(mutate: object) -> None:
    token = make_token(SECRET, CLAIMS)
    with pytest.raises(TokenError):
        verify_token(mutate(token), {1: SECRET}, now_s=0)  # type: ignore[operator]


def test_wrong_key_and_expiry() -> None:
    token = make_token(SECRET, CLAIMS)
    with pytest.raises(TokenError, match="bad MAC"):
        verify_token(token, {1: b"y" * 32}, now_s=0)
    with pytest.raises(TokenError, match="unknown key"):
        verify_token(token, {2: SECRET}, now_s=0)
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, {1: SECRET}, now_s=CLAIMS.expires_s + 1)


def test_matrix_bits_follow_the_protocol() -> None:
    url = token_url("https://hub.example.gov.cn/r", make_token(SECRET, CLAIMS))
    qr = render(url)
    size = qr["size"]
    assert isinstance(size, int) and 21 <= size <= 57 and (size - 17) % 4 == 0
    bits = qr["bits"]
    assert isinstance(bits, bytes) and len(bits) == (size * size + 7) // 8
    expected = segno.make_qr(url, error="m", boost_error=False)
    rows = [list(r) for r in expected.matrix_iter(scale=1, border=0)]
    assert unpack_bits(size, bits) == rows
    assert rows[0][:7] == [1] * 7  # the finder pattern: dark, MSB first
    assert pack_bits([[1, 0], [0, 1]]) == bytes([0b10010000])


def test_too_long_for_version_10() -> None:
    with pytest.raises(QrTooLong):
        render("https://x/" + "y" * 400)
