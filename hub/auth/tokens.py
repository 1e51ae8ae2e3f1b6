"""Hall bearer tokens: format, generation, parsing and hashing (docs/hub-api.md, Credentials).

A token is ``hcpt_<token id>_<secret>``: the id (12 hex digits, not secret) finds the stored
credential by primary key; the secret is 32 random bytes, base64url. The hub stores only the
SHA-256 of the whole token. A fast hash is right for a 256-bit random secret (there is no
guessable space for salt or stretching to protect) and keeps every request's authentication
cheap; human passwords, which are guessable, are hashed with argon2id elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PREFIX = "hcpt_"
TOKEN_ID_HEX = 12  # 48 bits: collisions are negligible and the primary key catches one
SECRET_BYTES = 32  # 256 bits of entropy
SECRET_CHARS = 43  # base64url of 32 bytes, without padding
TOKEN_RE = re.compile(rf"{PREFIX}([0-9a-f]{{{TOKEN_ID_HEX}}})_([A-Za-z0-9_-]{{{SECRET_CHARS}}})")


class NewToken(NamedTuple):
    token_id: str
    token: str  # shown to the administrator once, never stored
    sha256: str


def generate() -> NewToken:
    token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    token = f"{PREFIX}{token_id}_{secret}"
    return NewToken(token_id, token, digest(token))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(token: str) -> str | None:
    """The token id of a well-formed token, or None."""
    match = TOKEN_RE.fullmatch(token)
    return match.group(1) if match else None


def matches(token: str, stored_sha256: str) -> bool:
    """Constant-time comparison of the token's hash with the stored one."""
    return hmac.compare_digest(digest(token), stored_sha256)
