"""Accounts and sessions: add, set password, disable, log in, authenticate, log out.

Service functions take the connection and everything else as keyword arguments (STYLE.md),
run inside the caller's transaction and audit every change. A session token is
``hcps_<session id>_<secret>``, shaped like a hall token (hub.auth.tokens) and stored the same
way: only its SHA-256. Sessions expire after SESSION_HOURS and end at logout, when the account
is disabled, or when its password changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from hub import audit
from hub.db.schema import departments, user_departments, user_sessions, users
from hub.errors import ApiError, Msg
from hub.registry.codes import CodeError, check_uscc
from hub.users import passwords
from hub.users.roles import LOGIN_ROLES, Role

SESSION_HOURS = 8  # one working day; a handler logs in again the next morning
USERNAME_RE = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
SESSION_PREFIX = "hcps_"
SESSION_RE = re.compile(r"hcps_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class UserError(Exception):
    """An account operation is refused; the message is (zh-CN, en)."""

    def __init__(self, code: str, message: Msg, status: int = 400) -> None:
        super().__init__(message.en)
        self.code = code
        self.message = message
        self.status = status

    def api(self) -> ApiError:
        return ApiError(self.status, self.code, self.message)


@dataclass(frozen=True)
class Principal:
    """Who is acting: a logged-in user (or the hub itself, role SYSTEM)."""

    username: str
    role: Role
    departments: frozenset[str]
    session_id: str | None = None

    @property
    def actor(self) -> str:
        return "system:hub" if self.role is Role.SYSTEM else f"user:{self.username}"


SYSTEM = Principal("hub", Role.SYSTEM, frozenset())


@dataclass(frozen=True)
class NewSession:
    token: str  # shown once, never stored
    session_id: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_row(connection: Connection, username: str) -> object | None:
    return connection.execute(select(users).where(users.c.username == username)).first()


def add_user(
    *,
    connection: Connection,
    username: str,
    display_name: str,
    role: str,
    password: str,
    dept_codes: Iterable[str] = (),
    now: datetime,
    actor: str,
) -> None:
    if not USERNAME_RE.fullmatch(username):
        raise UserError(
            "user.bad_username",
            Msg(
                "用户名须为 2–32 个小写字母、数字或 _ . -，以字母开头",
                "a username is 2-32 of a-z 0-9 _ . -, starting with a letter",
            ),
        )
    try:
        parsed_role = Role(role)
    except ValueError:
        parsed_role = Role.SYSTEM
    if parsed_role not in LOGIN_ROLES:
        raise UserError(
            "user.bad_role",
            Msg("未知角色 {r}（可用：{all}）", "unknown role {r} (one of: {all})").fill(
                r=repr(role), all=", ".join(LOGIN_ROLES)
            ),
        )
    if not display_name.strip() or len(display_name) > 200:
        raise UserError(
            "user.bad_name", Msg("姓名须为 1–200 个字符", "a display name has 1-200 characters")
        )
    codes = sorted(set(dept_codes))
    if parsed_role is Role.DEPT_HANDLER and not codes:
        raise UserError(
            "user.no_departments",
            Msg("责任部门经办人至少要有一个部门", "a department handler needs a department"),
        )
    if parsed_role is not Role.DEPT_HANDLER and codes:
        raise UserError(
            "user.departments_not_allowed",
            Msg("只有责任部门经办人才按部门授权", "only department handlers have departments"),
        )
    for code in codes:
        try:
            check_uscc(code)
        except CodeError as e:
            raise UserError(
                "user.bad_department",
                Msg("部门代码 {c} 无效", "department code {c} is not valid").fill(c=repr(code)),
            ) from e
    if _user_row(connection, username) is not None:
        raise UserError(
            "user.exists",
            Msg("用户 {u} 已存在", "user {u} already exists").fill(u=username),
            status=409,
        )
    try:
        digest = passwords.hash_password(password)
    except passwords.PasswordRuleError as e:
        raise UserError("user.bad_password", e.message) from e
    connection.execute(
        users.insert(),
        {
            "username": username,
            "display_name": display_name.strip(),
            "role": parsed_role.value,
            "password_hash": digest,
            "created_at": now,
            "password_changed_at": now,
        },
    )
    for code in codes:
        known = connection.execute(
            select(departments.c.dept_code).where(departments.c.dept_code == code)
        ).first()
        if known is None:  # a department may be set up before its first rating arrives
            connection.execute(departments.insert(), {"dept_code": code, "first_seen_at": now})
        connection.execute(user_departments.insert(), {"username": username, "dept_code": code})
    audit.record(
        connection,
        at=now,
        actor=actor,
        action="user.add",
        target=f"user:{username}",
        role=parsed_role.value,
        departments=codes,
    )


def _require_user(connection: Connection, username: str) -> object:
    row = _user_row(connection, username)
    if row is None:
        raise UserError(
            "user.not_found", Msg("用户 {u} 不存在", "no user {u}").fill(u=repr(username)), 404
        )
    return row


def _end_sessions(connection: Connection, username: str, now: datetime) -> None:
    connection.execute(
        user_sessions.update()
        .where(user_sessions.c.username == username, user_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def set_password(
    *, connection: Connection, username: str, password: str, now: datetime, actor: str
) -> None:
    _require_user(connection, username)
    try:
        digest = passwords.hash_password(password)
    except passwords.PasswordRuleError as e:
        raise UserError("user.bad_password", e.message) from e
    connection.execute(
        users.update()
        .where(users.c.username == username)
        .values(password_hash=digest, password_changed_at=now)
    )
    _end_sessions(connection, username, now)
    audit.record(
        connection, at=now, actor=actor, action="user.set_password", target=f"user:{username}"
    )


def disable_user(*, connection: Connection, username: str, now: datetime, actor: str) -> None:
    row = _require_user(connection, username)
    if row.disabled_at is not None:  # type: ignore[attr-defined]
        raise UserError(
            "user.already_disabled",
            Msg("用户 {u} 已停用", "user {u} is already disabled").fill(u=username),
            409,
        )
    connection.execute(users.update().where(users.c.username == username).values(disabled_at=now))
    _end_sessions(connection, username, now)
    audit.record(connection, at=now, actor=actor, action="user.disable", target=f"user:{username}")


MSG_LOGIN_FAILED = Msg("用户名或密码错误，或账号已停用", "wrong username or password, or disabled")


def login(*, connection: Connection, username: str, password: str, now: datetime) -> NewSession:
    row = _user_row(connection, username)
    # Same work and same answer whether the user is unknown, disabled or the password wrong.
    stored = row.password_hash if row is not None else passwords.DUMMY_HASH  # type: ignore[attr-defined]
    ok = passwords.verify(stored, password)
    if row is None or not ok or row.disabled_at is not None:  # type: ignore[attr-defined]
        audit.record(
            connection,
            at=now,
            actor="anonymous",
            action="user.login_failed",
            target=f"user:{username[:32]}",
        )
        raise UserError("auth.login_failed", MSG_LOGIN_FAILED, 401)
    session_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    token = f"{SESSION_PREFIX}{session_id}_{secret}"
    expires_at = now + timedelta(hours=SESSION_HOURS)
    connection.execute(
        user_sessions.insert(),
        {
            "session_id": session_id,
            "username": username,
            "token_sha256": _digest(token),
            "issued_at": now,
            "expires_at": expires_at,
        },
    )
    audit.record(
        connection,
        at=now,
        actor=f"user:{username}",
        action="user.login",
        target=f"user:{username}",
        session_id=session_id,
    )
    return NewSession(token, session_id, expires_at)


def logout(*, connection: Connection, principal: Principal, now: datetime) -> None:
    connection.execute(
        user_sessions.update()
        .where(user_sessions.c.session_id == principal.session_id)
        .values(revoked_at=now)
    )
    audit.record(
        connection,
        at=now,
        actor=principal.actor,
        action="user.logout",
        target=f"user:{principal.username}",
        session_id=principal.session_id,
    )


def _unauthorized(code: str, message: Msg) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="hcp-hub"'})


def authenticate(*, connection: Connection, authorization: str | None, now: datetime) -> Principal:
    """The user behind an ``Authorization: Bearer hcps_…`` header, or ApiError 401."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized(
            "auth.missing", Msg("缺少 Authorization: Bearer 会话令牌", "missing session token")
        )
    match = SESSION_RE.fullmatch(token)
    if match is None:
        raise _unauthorized(
            "auth.malformed",
            Msg(
                "不是中心平台的登录会话令牌（hcps_…；大厅令牌只能用于导入）",
                "not a hub session token (hcps_…; hall tokens are for ingest only)",
            ),
        )
    session_id = match.group(1)
    row = connection.execute(
        select(
            user_sessions.c.token_sha256,
            user_sessions.c.expires_at,
            user_sessions.c.revoked_at,
            users.c.username,
            users.c.role,
            users.c.disabled_at,
        )
        .join(users, users.c.username == user_sessions.c.username)
        .where(user_sessions.c.session_id == session_id)
    ).first()
    if row is None or not hmac.compare_digest(_digest(token), row.token_sha256):
        raise _unauthorized("auth.invalid_token", Msg("会话令牌无效", "invalid session token"))
    if row.revoked_at is not None or row.disabled_at is not None:
        raise _unauthorized("auth.session_ended", Msg("会话已结束", "the session has ended"))
    if row.expires_at <= now:
        raise _unauthorized(
            "auth.session_expired", Msg("会话已过期，请重新登录", "session expired")
        )
    depts = frozenset(
        r[0]
        for r in connection.execute(
            select(user_departments.c.dept_code).where(user_departments.c.username == row.username)
        )
    )
    return Principal(str(row.username), Role(row.role), depts, session_id)


def list_users(*, connection: Connection) -> list[dict[str, object]]:
    scopes: dict[str, list[str]] = {}
    for name, code in connection.execute(
        select(user_departments.c.username, user_departments.c.dept_code).order_by(
            user_departments.c.dept_code
        )
    ):
        scopes.setdefault(name, []).append(code)
    return [
        {
            "username": r.username,
            "display_name": r.display_name,
            "role": r.role,
            "departments": scopes.get(r.username, []),
            "disabled": r.disabled_at is not None,
            "created_at": r.created_at,
        }
        for r in connection.execute(select(users).order_by(users.c.username))
    ]


def is_active_user(connection: Connection, username: str, roles: Iterable[Role]) -> bool:
    row = connection.execute(
        select(users.c.role, users.c.disabled_at).where(users.c.username == username)
    ).first()
    return row is not None and row.disabled_at is None and Role(row.role) in set(roles)
