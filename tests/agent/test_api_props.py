"""Property test of the case API (hypothesis): no payload gets a 500, and a refused request
changes nothing in the store.

Requests are drawn per endpoint as (a) valid bodies from small pools of window ids, staff
ids and case numbers, so events meet each other and walk the case table into every state,
(b) a valid body with one field replaced by a wild value (wrong type, too long, control
characters, unknown field), (c) arbitrary JSON values and (d) raw bytes. Every table of the
store is compared before and after each refused request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.agent.api_helpers import make_api

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
WILD = st.one_of(
    JSON,
    st.text(max_size=80),
    st.sampled_from(["", " x", "x\x00", "王" * 40, "x" * 70, "W 1", "../W01", "1" * 18]),
)
WINDOW = st.sampled_from(["W01", "W02", "W99"])
STAFF = st.sampled_from(["S001", "S002"])
CASE = st.sampled_from(["C-1", "C-2", "C-3", "办件〔2026〕4号"])
EVENT = st.sampled_from([None, None, None, "e1", "e2"])
NAME = st.sampled_from(["王小明", "李四", "A"])

VALID = {
    "sign-in": st.fixed_dictionaries(
        {"staff_id": STAFF, "name": NAME, "number": st.sampled_from(["A1", "0042"])},
        optional={"title": st.sampled_from(["综合受理", None]), "event_id": EVENT},
    ),
    "sign-out": st.fixed_dictionaries({"staff_id": STAFF}, optional={"event_id": EVENT}),
    "pause": st.fixed_dictionaries({}, optional={"reason": NAME, "event_id": EVENT}),
    "resume": st.fixed_dictionaries({}, optional={"event_id": EVENT}),
    "cases": st.fixed_dictionaries(
        {"case_no": CASE, "window_id": WINDOW},
        optional={
            "staff_id": STAFF,
            "item_code": st.just("330201-JD-0001"),
            "item_name": st.just("居民身份证换领"),
            "dept_code": st.just("11330200002950478P"),
            "applicant_type": st.sampled_from(["person", "legal_entity"]),
            "applicant_name": st.sampled_from(["张三丰", "张*丰"]),
            "applicant_phone": st.sampled_from(["13812345678", "138****5678"]),
            "event_id": EVENT,
        },
    ),
    "finish": st.fixed_dictionaries({"case_no": CASE}, optional={"event_id": EVENT}),
    "cancel": st.fixed_dictionaries({"case_no": CASE}, optional={"event_id": EVENT}),
}


def path_of(endpoint: str, window: str) -> str:
    if endpoint in ("cases",):
        return "/api/v1/cases"
    if endpoint in ("finish", "cancel"):
        return f"/api/v1/cases/{endpoint}"
    return f"/api/v1/windows/{window}/{endpoint}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    endpoint = draw(st.sampled_from(sorted(VALID)))
    window = draw(st.sampled_from(["W01", "W02", "W99"] * 4 + ["w%201", "x" * 33, "窗口"]))
    body: Any = draw(VALID[endpoint])
    kind = draw(st.sampled_from(["valid"] * 5 + ["one_wrong"] * 3 + ["json", "bytes"]))
    if kind == "one_wrong":
        fields = [*body, "extra"] if body else ["extra", "case_no", "staff_id"]
        body[draw(st.sampled_from(fields))] = draw(WILD)
    elif kind == "json":
        body = draw(JSON)
    elif kind == "bytes":
        return path_of(endpoint, window), draw(st.binary(max_size=40))
    return path_of(endpoint, window), json.dumps(body, ensure_ascii=False).encode()


def test_no_500s_and_refusals_change_nothing(tmp_path: Path) -> None:
    with make_api(tmp_path) as api:
        statuses: dict[int, int] = {}

        @settings(suppress_health_check=[HealthCheck.too_slow])
        @given(req=requests())
        def check(req: tuple[str, bytes]) -> None:
            path, content = req
            before = api.snapshot()
            r = api.post(path, content=content, headers={"content-type": "application/json"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, r.text
            if r.status_code >= 400:
                err = r.json()["error"]
                assert err["code"] and err["message"] and err["message_en"]
                assert api.snapshot() == before, f"{r.status_code} {err['code']} changed the store"

        check()
        accepted = dict(api.service.api_accepted)
        assert len(accepted) >= 5, f"too few kinds of events accepted: {accepted}"
        assert any(s >= 400 for s in statuses)
