"""The committed OpenAPI document is the application's, and the prose covers every path."""

from __future__ import annotations

import json
from pathlib import Path

from hub.openapi import document

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "hub-api.openapi.json"
PROSE = ROOT / "docs" / "hub-api.md"


def test_committed_schema_matches_the_app() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == document(), (
        "docs/hub-api.openapi.json is stale: run "
        "`.venv/bin/hcp hub openapi --output docs/hub-api.openapi.json`"
    )


def test_schema_is_openapi_3_1_with_the_batch_models() -> None:
    schema = json.loads(document())
    assert schema["openapi"].startswith("3.1")
    components = schema["components"]["schemas"]
    for name in ("RatingBatch", "RatingItem", "CaseEventBatch", "DeviceHealthBatch", "Rater"):
        assert name in components
    item = components["RatingItem"]
    assert item["additionalProperties"] is False
    assert item["properties"]["level"]["minimum"] == 1
    assert item["properties"]["level"]["maximum"] == 5
    post = schema["paths"]["/api/v1/ingest/ratings"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RatingBatch"}
    assert {"200", "401", "413", "429", "503"} <= set(post["responses"])
    assert post["security"] == [{"hallToken": []}]


def test_prose_names_every_path_and_method() -> None:
    prose = PROSE.read_text(encoding="utf-8")
    for path, operations in json.loads(document())["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in prose, f"docs/hub-api.md: {method} {path}"
