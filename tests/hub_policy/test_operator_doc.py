"""The TOML examples in docs/hub-operator.md are real: the Dezhou profile loads over the
shipped ones, and the holiday-table example passes the importer's checks."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

from hub.policy import PROFILES_DIR, Channel, PolicyLoader
from hub.workdays import DayUnit, Period, load_holiday_table

DOC = Path(__file__).parents[2] / "docs" / "hub-operator.md"


def toml_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [textwrap.dedent(b) for b in re.findall(r"```toml\n(.*?)```", text, re.S)]


def block_starting(prefix: str) -> str:
    matches = [b for b in toml_blocks() if b.startswith(prefix)]
    assert len(matches) == 1, prefix
    return matches[0]


def test_the_sections_are_there() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "\n## Jurisdiction policies\n" in text and "\n## Working-day calendar\n" in text


def test_the_dezhou_example_loads(tmp_path: Path) -> None:
    (tmp_path / "dezhou.toml").write_text(block_starting("# Dezhou"), encoding="utf-8")
    profile = PolicyLoader(profile_dirs=[PROFILES_DIR, tmp_path]).profile("dezhou")
    assert profile.rectification.within == Period(5, DayUnit.WORKING_DAYS)
    assert profile.feedback.within == Period(5, DayUnit.WORKING_DAYS)
    assert profile.rating.invite_window_seconds == 10
    assert profile.channels("pf").encode(Channel.PHONE) == 6
    assert profile.supervision.revisit_sample_percent == 20  # from shandong-hrss


def test_the_holiday_table_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "holidays-2025.toml"
    path.write_text(block_starting("# The 2025 arrangement"), encoding="utf-8")
    table = load_holiday_table(path)
    assert [h.name for h in table.holidays] == ["春节", "劳动节"]


def test_every_other_toml_example_parses() -> None:
    for block in toml_blocks():
        tomllib.loads(block.replace("# …", "#").replace("…", "x"))
