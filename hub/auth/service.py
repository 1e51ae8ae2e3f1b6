"""Hall credentials: issue, revoke, authenticate (docs/hub-api.md, Credentials).

Service functions take the connection and everything else as keyword arguments (STYLE.md),
run inside the caller's transaction, and audit every change. Rotation is "issue a second
token, switch the agent over, revoke the first": a hall may hold several valid tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from hub import audit
from hub.auth import tokens
from hub.db.schema import hall_credentials, halls
from hub.errors import ApiError, Msg

# An expiry longer than this is almost certainly a typo (days given as minutes, say).
MAX_EXPIRY_DAYS = 3650

MSG_MISSING = Msg("缺少 Authorization: Bearer 令牌", "missing Authorization: Bearer token")
MSG_MALFORMED = Msg(
    "Authorization 头不是中心平台的大厅令牌（格式 hcpt_<编号>_<密钥>）",
    "the Authorization header is not a hub hall token (hcpt_<id>_<secret>)",
)
MSG_INVALID = Msg("令牌无效", "invalid token")
MSG_REVOKED = Msg("令牌 {token_id} 已被吊销", "token {token_id} has been revoked")
MSG_EXPIRED = Msg("令牌 {token_id} 已过期", "token {token_id} has expired")


class CredentialError(Exception):
    """An administrative credential operation failed; the message is (zh-CN, en)."""

    def __init__(self, message: Msg) -> None:
        super().__init__(message.en)
        self.message = message


@dataclass(frozen=True)
class HallCredential:
    hall_id: str
    token_id: str

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


def issue_token(
    *,
    connection: Connection,
    hall_id: str,
    now: datetime,
    actor: str,
    expires_days: int | None = None,
    note: str | None = None,
) -> tokens.NewToken:
    if (
        connection.execute(select(halls.c.hall_id).where(halls.c.hall_id == hall_id)).first()
        is None
    ):
        raise CredentialError(Msg("大厅 {hall} 不存在", "no hall {hall}").fill(hall=repr(hall_id)))
    expires_at = None
    if expires_days is not None:
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise CredentialError(
                Msg(
                    "有效天数必须在 1 到 {max} 之间", "expiry must be between 1 and {max} days"
                ).fill(max=MAX_EXPIRY_DAYS)
            )
        expires_at = now + timedelta(days=expires_days)
    new = tokens.generate()
    connection.execute(
        hall_credentials.insert(),
        {
            "token_id": new.token_id,
            "hall_id": hall_id,
            "token_sha256": new.sha256,
            "issued_at": now,
            "expires_at": expires_at,
            "note": note,
        },
    )
    audit.record(
        connection,
        at=now,
        actor=actor,
        action="token.issue",
        target=f"hall:{hall_id}",
        token_id=new.token_id,
        expires_at=expires_at,
        note=note,
    )
    return new


def revoke_token(*, connection: Connection, token_id: str, now: datetime, actor: str) -> str:
    """Revoke a token; returns its hall. Revoking twice is an error that says so."""
    row = connection.execute(
        select(hall_credentials.c.hall_id, hall_credentials.c.revoked_at).where(
            hall_credentials.c.token_id == token_id
        )
    ).first()
    if row is None:
        raise CredentialError(Msg("令牌 {t} 不存在", "no token {t}").fill(t=repr(token_id)))
    if row.revoked_at is not None:
        raise CredentialError(
            Msg("令牌 {t} 已于 {at} 吊销", "token {t} was already revoked at {at}").fill(
                t=token_id, at=row.revoked_at.isoformat()
            )
        )
    connection.execute(
        hall_credentials.update()
        .where(hall_credentials.c.token_id == token_id)
        .values(revoked_at=now)
    )
    audit.record(
        connection,
        at=now,
        actor=actor,
        action="token.revoke",
        target=f"hall:{row.hall_id}",
        token_id=token_id,
    )
    return str(row.hall_id)


def authenticate(
    *, connection: Connection, authorization: str | None, now: datetime
) -> HallCredential:
    """The hall credential behind an ``Authorization`` header, or ApiError 401."""
    if not authorization:
        raise _unauthorized("auth.missing", MSG_MISSING)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("auth.missing", MSG_MISSING)
    token_id = tokens.parse(token)
    if token_id is None:
        raise _unauthorized("auth.malformed", MSG_MALFORMED)
    row = connection.execute(
        select(
            hall_credentials.c.hall_id,
            hall_credentials.c.token_sha256,
            hall_credentials.c.expires_at,
            hall_credentials.c.revoked_at,
        ).where(hall_credentials.c.token_id == token_id)
    ).first()
    # Unknown id and wrong secret look the same from outside (no probing for ids).
    if row is None or not tokens.matches(token, row.token_sha256):
        raise _unauthorized("auth.invalid_token", MSG_INVALID)
    if row.revoked_at is not None:
        raise _unauthorized("auth.token_revoked", MSG_REVOKED.fill(token_id=token_id))
    if row.expires_at is not None and row.expires_at <= now:
        raise _unauthorized("auth.token_expired", MSG_EXPIRED.fill(token_id=token_id))
    return HallCredential(hall_id=str(row.hall_id), token_id=token_id)


def _unauthorized(code: str, message: Msg) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="hcp-hub"'})
