"""The OpenAPI document of the hub, as committed in docs/hub-api.openapi.json.

``hcp hub openapi --output docs/hub-api.openapi.json`` writes it; tests/hub/test_openapi.py
fails when the committed file and the application disagree. The app is built over an engine
that is never connected (SQLAlchemy engines connect lazily), so generating the document
needs no database.
"""

from __future__ import annotations

import json

from hub.app import create_app
from hub.settings import HubSettings

# Never connected: only the routes and models are read.
SCHEMA_ONLY_URL = "postgresql+psycopg://schema-only.invalid/hub"


def document() -> str:
    app = create_app(HubSettings(database_url=SCHEMA_ONLY_URL))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
