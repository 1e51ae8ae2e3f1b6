"""docs/technician.md "Device screens": its UI table is the code's table, its images exist.

python -m tests.firmware_ui.test_docs      # rewrite the generated table in the doc
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "technician.md"
BEGIN = "<!-- generated:ui-table -->"
END = "<!-- end:ui-table -->"


def table() -> str:
    sys.path.insert(0, str(ROOT))
    from firmware.ui import machine

    lines = ["| state | event | next state | action |", "|---|---|---|---|"]
    for state, event, nxt, action in machine.rows():
        lines.append(f"| {state} | {event} | {nxt} | {action} |")
    return "\n".join(lines)


def _replace(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def test_doc_table_is_the_code_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text == _replace(text), "run `python -m tests.firmware_ui.test_docs`"


def test_doc_images_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    images = re.findall(r"\]\((screens/[^)]+\.png)\)", text)
    assert len(images) >= 10
    missing = [i for i in images if not (DOC.parent / i).exists()]
    assert not missing, missing


if __name__ == "__main__":
    DOC.write_text(_replace(DOC.read_text(encoding="utf-8")), encoding="utf-8")
