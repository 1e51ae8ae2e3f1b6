"""schemathesis against the running agent's case API and admin API (issue 4, "Bad input").

The documented contract (docs/agent-case-api.openapi.json) drives schemathesis; requests go
over real HTTP to the real Agent (uvicorn, store, service) in a thread. For every generated
request: no 5xx, the response conforms to the document (status codes, content type,
schema), and a refused request (4xx) changes nothing — every table of the store is
compared before and after. GETs change nothing either. Positive and negative data both.

Excluded: schemathesis's "schema-valid data must be accepted" check. Some rules live in the
models' validators, not in the document (dept_code must be an 18-character unified social
credit code, a phone number's shape), so a schema-valid body can rightly get a 422; what
matters here is that it is a clear 4xx that changes nothing, which is checked.

Invites are given an hour, so the sweeper cannot change the store between two snapshots.
Example counts follow the test profile (tests/fuzzing.py): a few hundred requests in dev,
about a minute in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from edge_agent import registry
from edge_agent.store import Store, now_ms
from protocol import messages as M
from tests.agent.helpers import AgentThread, make_config
from tests.fuzzing import fuzz_examples

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_path(ROOT / "docs" / "agent-case-api.openapi.json")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentThread]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    cfg = make_config(data, policy={"invite_s": 3600, "expire_grace_s": 3600})
    store = Store(cfg.store_path)
    t = now_ms()
    for w in ("W01", "W02"):
        registry.add_window(store, window_id=w, label=f"综合窗口 {w}", now_ms=t)
    registry.add_device(
        store, device_id="EV1", key=bytes(16), kind=M.KIND_COMBINED, window_id="W01", now_ms=t
    )
    store.close()
    a = AgentThread(cfg).start()
    yield a
    a.stop()


def snapshot(agent: AgentThread) -> dict[str, list[tuple[Any, ...]]]:
    def read(s: Store) -> dict[str, list[tuple[Any, ...]]]:
        tables = [r[0] for r in s.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [tuple(r) for r in s.all(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}

    return agent.db(read)


@schema.parametrize()
@settings(
    max_examples=fuzz_examples(60),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_and_refusals_change_nothing(agent: AgentThread, case: Any) -> None:
    before = snapshot(agent)
    response = case.call_and_validate(
        base_url=f"http://127.0.0.1:{agent.agent.port}",
        excluded_checks=[positive_data_acceptance],  # see the module docstring
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400 or case.method.upper() == "GET":
        assert snapshot(agent) == before, (
            f"{case.method} {case.formatted_path} -> {response.status_code} changed the store"
        )
    content_type = response.headers.get("content-type") or [""]
    if response.status_code >= 400 and str(content_type[0]).startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "error" in body:  # the agent's own refusals
            err = body["error"]
            assert err["code"] and err["message"] and err["message_en"], body
