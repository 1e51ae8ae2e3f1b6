"""Hall credentials: token format, hashing, the 401 answers, rotation, revocation, expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from hub.auth import tokens
from hub.auth.service import CredentialError, authenticate, issue_token, revoke_token
from hub.db.schema import hall_credentials, ratings
from hub.errors import ApiError
from tests.hub.conftest import NOW, Hall, HubDb
from tests.hub.helpers import RATINGS, SyncClient, rating


def test_token_format_and_hash() -> None:
    new = tokens.generate()
    assert new.token.startswith(f"hcpt_{new.token_id}_")
    assert len(new.token) == len("hcpt_") + 12 + 1 + 43
    assert tokens.parse(new.token) == new.token_id
    assert new.sha256 == tokens.digest(new.token) and len(new.sha256) == 64
    assert tokens.matches(new.token, new.sha256)
    assert not tokens.matches(new.token + "x", new.sha256)
    assert tokens.generate().token != new.token
    for bad in ("", "hcpt_", new.token[:-1], new.token + "A", "Bearer " + new.token,
                new.token.replace("hcpt_", "hcpx_"), new.token.upper()):  # fmt: skip
        assert tokens.parse(bad) is None, bad


def test_only_the_hash_is_stored(db: HubDb, hall: Hall) -> None:
    with db.engine.connect() as connection:
        row = connection.execute(select(hall_credentials)).one()
    assert row.token_sha256 == tokens.digest(hall.token)
    assert hall.token.split("_", 2)[2] not in row.token_sha256


def expect_401(api: SyncClient, code: str, token: str | None) -> None:
    headers = {} if token is None else {"Authorization": token}
    response = api.request(
        "POST",
        RATINGS,
        json_body={"items": [rating(1)]},
        headers=headers,
        token="",
    )
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == code


def test_401_answers(make_api: Callable[..., SyncClient], db: HubDb, hall: Hall) -> None:
    api = make_api()
    expect_401(api, "auth.missing", None)
    expect_401(api, "auth.missing", "Basic dXNlcjpwYXNz")
    expect_401(api, "auth.missing", "Bearer ")
    expect_401(api, "auth.malformed", "Bearer not-a-hub-token")
    unknown = tokens.generate().token
    expect_401(api, "auth.invalid_token", f"Bearer {unknown}")
    # The right id with a wrong secret looks exactly like an unknown id.
    wrong_secret = hall.token[:-4] + ("AAAA" if not hall.token.endswith("AAAA") else "BBBB")
    expect_401(api, "auth.invalid_token", f"Bearer {wrong_secret}")
    assert db.count(ratings) == 0


def test_rotation_revocation_and_expiry(
    make_api: Callable[..., SyncClient], db: HubDb, hall: Hall
) -> None:
    with db.engine.begin() as connection:
        second = issue_token(connection=connection, hall_id=hall.hall_id, now=NOW, actor="t")
        issued = datetime.now(UTC)
        short = issue_token(
            connection=connection, hall_id=hall.hall_id, now=issued, actor="t", expires_days=1
        )
    api = make_api()
    for token in (hall.token, second.token, short.token):
        assert api.post_items(RATINGS, [], token=token).status_code == 200
    with db.engine.begin() as connection:
        assert revoke_token(connection=connection, token_id=hall.token_id, now=NOW, actor="t")
    response = api.post_items(RATINGS, [rating(1)], token=hall.token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.token_revoked"
    assert hall.token_id in response.json()["error"]["message"]
    assert api.post_items(RATINGS, [rating(1)], token=second.token).status_code == 200

    later = issued + timedelta(days=2)
    with db.engine.connect() as connection, pytest.raises(ApiError) as raised:
        authenticate(connection=connection, authorization=f"Bearer {short.token}", now=later)
    assert raised.value.code == "auth.token_expired"
    with db.engine.connect() as connection:
        ok = authenticate(connection=connection, authorization=f"bearer {second.token}", now=later)
    assert ok.hall_id == hall.hall_id and ok.token_id == second.token_id


def test_credential_errors(db: HubDb, hall: Hall) -> None:
    with db.engine.begin() as connection:
        with pytest.raises(CredentialError, match="no hall"):
            issue_token(connection=connection, hall_id="nowhere", now=NOW, actor="t")
        with pytest.raises(CredentialError, match="between 1 and"):
            issue_token(connection=connection, hall_id=hall.hall_id, now=NOW, actor="t",
                        expires_days=0)  # fmt: skip
        with pytest.raises(CredentialError, match="no token"):
            revoke_token(connection=connection, token_id="000000000000", now=NOW, actor="t")
