"""Scenario files: the demo hall loads; every mistake is refused with its key's path, in
Chinese and English; arbitrary values never crash the parser."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.scenario import ScenarioError, credit_code_ok, load_scenario, parse_scenario
from tests.simulator.scenarios import busy_hour_data

DEFAULT = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "default.toml"


def test_the_demo_hall_has_twelve_windows_and_valid_departments() -> None:
    sc = load_scenario(DEFAULT)
    assert len(sc.windows) == 12
    assert all(credit_code_ok(i.dept_code) for i in sc.items)
    staff = [s.staff_id for w in sc.windows for s in w.shifts]
    assert len(staff) == len(set(staff)) == 24
    assert sc.clock(0) == "08:30:00" and sc.clock(sc.end_s()) == "17:00:00"
    # the habits the demo is meant to show are there
    assert any(s.self_rating_per_hour for w in sc.windows for s in w.shifts)
    assert any(s.forget_invite for w in sc.windows for s in w.shifts)


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()

BAD: list[tuple[str, Any, str, str]] = [
    # (path, value, where the error points, a word of the English message)
    ("hall.opening", "8:30", "hall.opening", "HH:MM"),
    ("hall.case_prefix", "有空格 x", "hall.case_prefix", "characters"),
    ("hall.colour", "red", "hall.colour", "unknown key"),
    ("arrivals.rate_per_hour", -1, "arrivals.rate_per_hour", "must be"),
    ("arrivals.rate_per_hour", "many", "arrivals.rate_per_hour", "got 'many'"),
    ("service.distribution", "gamma", "service.distribution", "one of"),
    ("service.mean_s", 5000, "service", "min_s ≤ mean_s ≤ max_s"),
    ("rating.levels", {"1": 0.5, "2": 0.4}, "rating.levels", "add up to 1"),
    ("rating.levels", {"1": 0.5, "6": 0.5}, "rating.levels.6", "levels are 1…5"),
    ("rating.no_rating", 0.95, "rating", "must not exceed 1"),
    ("rating.reasons", [501, 501], "rating.reasons", "distinct"),
    ("rating.reasons_per_bad", [2, 9], "rating.reasons_per_bad", "[min, max]"),
    ("rating.repeat_delay_s", [1, 10], "rating.repeat_delay_s", "[min, max]"),
    ("staff.forget_invite", 2, "staff.forget_invite", "must be 0.0…1.0"),
    ("items.0.dept_code", "11330203MB0123456X", "items[0].dept_code", "GB 32100"),
    ("items", [], "items", "at least one item"),
    ("windows.0.id", "W 01", "windows[0].id", "must be an id"),
    ("windows.1.id", "W01", "windows", "appears twice"),
    ("windows.0.shifts.0.end", "08:00", "windows[0].shifts[0].end", "before the hall opens"),
    ("windows.0.shifts.1.start", "09:20", "windows[0].shifts", "shifts overlap"),
    ("windows.0.shifts.0.name", "王" * 11, "windows[0].shifts[0].name", "32 bytes"),
    (
        "windows.0.shifts.0.breaks.0.start",
        "11:00",
        "windows[0].shifts[0].breaks[0].start",
        "inside",
    ),
    ("windows.1.shifts.0.staff_id", "S1", "windows", "one account, one window"),
    ("windows.0.shifts.0.staff_id", _DELETE, "windows[0].shifts[0].staff_id", "required"),
]


@pytest.mark.parametrize(("path", "value", "where", "word"), BAD, ids=[b[0] for b in BAD])
def test_mistakes_are_refused_with_their_path(path: str, value: Any, where: str, word: str) -> None:
    data = _set(busy_hour_data(), path, value)
    with pytest.raises(ScenarioError) as e:
        parse_scenario(data)
    assert e.value.where == where, e.value.en
    assert word in e.value.en
    assert e.value.zh.startswith(where) and e.value.zh != e.value.en


def test_a_file_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "hall.toml"
    bad.write_text("[hall\nname = 1", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid TOML") as e:
        load_scenario(bad)
    assert str(bad) in e.value.en and "不是有效的 TOML" in e.value.zh
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        p = f"{prefix}.{k}" if prefix else str(k)
        out.append(p)
        if isinstance(v, dict | list):
            out.extend(_paths(v, p))
    return out


PATHS = _paths(busy_hour_data())
TOML_VALUES = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True),
        st.text(max_size=40),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@given(path=st.sampled_from(PATHS), value=TOML_VALUES)
def test_any_value_anywhere_is_accepted_or_refused_cleanly(path: str, value: Any) -> None:
    data = _set(busy_hour_data(), path, value)
    try:
        parse_scenario(data)
    except ScenarioError as e:
        assert e.zh and e.en
