"""Writing benchmark figures into docs/performance.md.

Each benchmark owns one block of that file, between `<!-- bench:NAME -->` and
`<!-- end:NAME -->`, and replaces only its own block.
"""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"


def write_block(name: str, text: str) -> None:
    doc = DOC.read_text("utf-8")
    start, end = f"<!-- bench:{name} -->\n", f"<!-- end:{name} -->"
    if start not in doc or end not in doc:
        raise SystemExit(f"bench: {DOC} has no {start.strip()} … {end} block")
    a, b = doc.index(start) + len(start), doc.index(end)
    DOC.write_text(doc[:a] + text + "\n" + doc[b:], "utf-8")
