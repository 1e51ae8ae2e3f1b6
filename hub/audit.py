"""The append-only audit log: who did what, when, to what, and why.

Every administrative change (a hall added, a token issued or revoked), every ingest batch and
every identity conflict is one row. There is no function here to change or remove a row, and
the database refuses UPDATE and DELETE on the table (migration 0001). Details are JSON and
never contain secrets or unmasked personal data.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from hub.db.schema import audit_log


def record(
    connection: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str | None = None,
    **detail: Any,
) -> None:
    connection.execute(
        audit_log.insert(),
        {
            "at": at,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str),
        },
    )
