"""Passwords: argon2id (argon2-cffi's RFC 9106 low-memory profile), never stored in clear.

Limits: a password shorter than MIN_LENGTH is refused (a guessable password is what argon2
protects badly); longer than MAX_LENGTH is refused too, so nobody can make every login hash
megabytes.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.errors import Msg

MIN_LENGTH = 10
MAX_LENGTH = 256

_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4 (RFC 9106 second recommendation)


class PasswordRuleError(ValueError):
    def __init__(self, message: Msg) -> None:
        super().__init__(message.en)
        self.message = message


def check_rules(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordRuleError(
            Msg(
                "密码长度必须在 {a} 到 {b} 个字符之间", "a password has {a} to {b} characters"
            ).fill(a=MIN_LENGTH, b=MAX_LENGTH)
        )


def hash_password(password: str) -> str:
    check_rules(password)
    return _HASHER.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so "no such user" and "wrong
# password" take the same time.
DUMMY_HASH = _HASHER.hash("hcp-no-such-user-dummy")
