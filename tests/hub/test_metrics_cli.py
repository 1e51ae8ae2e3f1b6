"""``hcp hub report`` and ``hcp hub default-ratings`` in-process, on both databases, over the
hand-computed fixture of test_metrics.py."""

from __future__ import annotations

import csv
import io

import pytest

from tests.hub.conftest import HubDb
from tests.hub.helpers import DEPT, DEPT_2
from tests.hub.test_metrics import load_fixture
from tools import cli


def test_report_table_and_csv(db: HubDb, capsys: pytest.CaptureFixture[str]) -> None:
    load_fixture(db)
    base = ["hub", "report", "--database-url", db.url, "--period", "2026-Q1"]
    assert cli.main([*base, "--by", "department"]) == 0
    out = capsys.readouterr().out
    assert "按部门统计" in out and "好评率" in out and "合计" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(DEPT)}
    # Department A: good rate 3 / 5 = 60.00%, coverage 6 / 8 = 75.00% (test_metrics.py).
    assert "60.00%" in lines[DEPT] and "75.00%" in lines[DEPT]

    assert cli.main([*base, "--by", "department", "--csv", "--lang", "en"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["dept_code"] for r in rows] == [DEPT, DEPT_2, "total"]
    assert rows[0]["good %"] == "0.6" and rows[0]["bad"] == "2" and rows[0]["excluded"] == "1"
    assert rows[2]["active rate %"] == "0.6667"  # 8 / 12

    assert cli.main([*base, "--dept", DEPT_2, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "by all" in out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[1] == "3"  # department B uploaded 3 (r11, r12, r13)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-Q5"], "统计周期"),
        (["--period", "2026-Q1", "--by", "township"], "统计维度"),
    ],
)
def test_report_bad_arguments(
    db: HubDb, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["hub", "report", "--database-url", db.url, *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hcp: ") and message in err


def test_default_ratings_once_from_the_cli(db: HubDb, capsys: pytest.CaptureFixture[str]) -> None:
    load_fixture(db)
    url = ["--database-url", db.url, "--lookback-days", "400"]
    # The fixture's cases finished by 2026-03-31 are long past Mangshi's 5 working days now:
    # unrated are C9 and D4 (C7's only rating is excluded, but it was rated: no default).
    assert cli.main(["hub", "default-ratings", *url, "--policy", "mangshi"]) == 0
    assert "新增 2" in capsys.readouterr().out
    assert cli.main(["hub", "default-ratings", *url, "--policy", "mangshi", "--lang", "en"]) == 0
    assert "0 added" in capsys.readouterr().out
    assert cli.main(["hub", "default-ratings", *url, "--policy", "atlantis"]) == 1
    assert "atlantis" in capsys.readouterr().err
