"""Render the generated parts of docs/protocol.md from the code that defines them.

The message field tables come from protocol.messages.CATALOGUE and the state
table from protocol.session.TRANSITIONS, so the spec cannot drift from the
implementation. Generated blocks sit between marker comments:

    <!-- generated:NAME -->  ...  <!-- end:NAME -->

    python -m tools.protocol_doc          # rewrite docs/protocol.md in place
    python -m tools.protocol_doc --check  # exit 1 if it is stale (run by the tests)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from protocol import messages as M
from protocol import session as S

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

_DIRECTIONS = {M.UP: "device → agent", M.DOWN: "agent → device", M.BOTH: "both"}
_MODES = {M.NORMAL: "normal", M.PROVISIONING: "provisioning", M.ANY_MODE: "any"}


def _kind(kind: str, arg: Any) -> str:
    if kind == "u":
        return f"uint ≤ {arg:#x}" if arg > 0xFFFF else f"uint ≤ {arg}"
    if kind == "i":
        return f"int {arg[0]}..{arg[1]}"
    if kind == "t":
        return f"text ≤ {arg} B"
    if kind == "b":
        return f"bytes {arg[0]}..{arg[1]}" if arg[0] != arg[1] else f"bytes = {arg[0]}"
    if kind == "?":
        return "bool"
    if kind == "id":
        return f"id (text [A-Za-z0-9_-], 1..{M.ID_MAX})"
    if kind == "e":
        return "one of " + ", ".join(str(v) for v in arg)
    if kind == "l":
        item = _kind(arg[0], arg[1]) if arg[0] not in ("s", "qr") else _struct_name(arg[1])
        return f"array of ≤ {arg[2]} × {item}"
    if kind in ("s", "qr"):
        return _struct_name(arg)
    raise ValueError(kind)


_STRUCTS = {
    "Staff": M.STAFF,
    "QR": M.QR,
    "Reason": M.REASON,
    "Policy": M.POLICY,
    "Link": M.LINK,
    "TestResult": M.TEST_RESULT,
}


def _struct_name(specs: tuple[Any, ...]) -> str:
    for name, s in _STRUCTS.items():
        if s is specs:
            return f"struct {name}"
    raise ValueError("unnamed struct")


def _field_rows(specs: tuple[Any, ...]) -> list[str]:
    rows = []
    for i in range(0, len(specs), 4):
        name, kind, arg, optional = specs[i : i + 4]
        rows.append(
            f"| {i // 4} | `{name}` | {_kind(kind, arg)} | {'null allowed' if optional else ''} |"
        )
    return rows


def types_table() -> str:
    lines = ["| code | name | direction | reliable | link mode |", "|---|---|---|---|---|"]
    for code in sorted(M.CATALOGUE):
        name, direction, reliable, mode, _f = M.CATALOGUE[code]
        lines.append(
            f"| `0x{code:02x}` | {name.upper()} | {_DIRECTIONS[direction]} | "
            f"{'yes' if reliable else ''} | {_MODES[mode]} |"
        )
    return "\n".join(lines)


def fields_tables() -> str:
    out = []
    for code in sorted(M.CATALOGUE):
        name, _d, _r, _m, specs = M.CATALOGUE[code]
        out.append(f"#### `0x{code:02x}` {name.upper()}\n")
        out.append("| # | field | type | |\n|---|---|---|---|")
        out.extend(_field_rows(specs))
        out.append("")
    for sname, specs in _STRUCTS.items():
        out.append(f"#### struct {sname}\n")
        out.append("| # | field | type | |\n|---|---|---|---|")
        out.extend(_field_rows(specs))
        out.append("")
    return "\n".join(out).rstrip()


def states_table() -> str:
    lines = ["| role | state | event | next state | action |", "|---|---|---|---|---|"]
    for (role, state, event), (nxt, action) in S.TRANSITIONS.items():
        lines.append(f"| {role} | {state} | {event} | {nxt} | {action} |")
    return "\n".join(lines)


BLOCKS = {"types": types_table, "fields": fields_tables, "states": states_table}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise SystemExit(f"protocol_doc: {DOC} lacks the block generated:{name}")
        text = text[: match.end(1)] + make() + "\n" + text[match.start(2) :]
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in argv:
        if fresh != current:
            print(f"{DOC} is stale: run python -m tools.protocol_doc")
            return 1
        return 0
    DOC.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
