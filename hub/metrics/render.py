"""A metrics report as a text table (zh-CN first, English available) or CSV, for
``hcp hub report``. Column headers are bilingual pairs; values are the report's own figures.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

from hub.metrics.queries import DIMENSION_ZH, Report

# (key in MetricsRow.as_json(), zh header, en header, percent?)
COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("uploaded", "上传数", "uploaded", False),
    ("active", "主动评价", "active", False),
    ("default_ratings", "默认评价", "default", False),
    ("level_1", "非常满意", "very sat.", False),
    ("level_2", "满意", "satisfied", False),
    ("level_3", "基本满意", "basic", False),
    ("level_4", "不满意", "dissat.", False),
    ("level_5", "非常不满意", "very dis.", False),
    ("good_rate", "好评率", "good %", True),
    ("bad", "差评数", "bad", False),
    ("bad_rate", "差评率", "bad %", True),
    ("bad_anonymous", "匿名差评", "anon. bad", False),
    ("follow_ups", "追评", "follow-ups", False),
    ("follow_up_satisfaction_rate", "整改满意率", "follow-up sat. %", True),
    ("repeats", "重复按键", "repeats", False),
    ("unsolicited", "未邀评按键", "unsolicited", False),
    ("excluded", "已剔除", "excluded", False),
    ("cases_finished", "办结办件", "cases", False),
    ("coverage", "评价覆盖率", "coverage %", True),
    ("active_rate", "主动评价率", "active rate %", True),
    ("default_share", "默认评价占比", "default %", True),
)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for level, count in row["levels"].items():
        out[f"level_{level}"] = count
    return out


def _group_label(group: dict[str, Any], lang: str) -> str:
    if not group:
        return "合计" if lang != "en" else "total"
    return "/".join("-" if v is None else str(v) for v in group.values())


def _value(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:.2f}%"
    return str(value)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def table(report: Report, lang: str = "zh-CN") -> str:
    body = report.as_json()
    en = lang == "en"
    dim = report.dimension
    first = dim.value if en else DIMENSION_ZH[dim]
    headers = [first] + [c[2] if en else c[1] for c in COLUMNS]
    rows = [*body["rows"], body["total"]] if body["rows"] else [body["total"]]
    cells = [
        [_group_label(r["group"], lang)] + [_value(_flat(r)[c[0]], c[3]) for c in COLUMNS]
        for r in rows
    ]
    widths = [max(_width(line[i]) for line in [headers, *cells]) for i in range(len(headers))]
    title = (
        f"{report.period.label} ({report.period.kind.value}, China time), by {dim.value}"
        if en
        else f"{report.period.label}（{report.period.kind.value}，北京时间），"
        f"按{DIMENSION_ZH[dim]}统计"
    )
    out = [title, "  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in cells:
        out.append("  ".join(_pad(v, w) for v, w in zip(line, widths, strict=True)))
    return "\n".join(out) + "\n"


def to_csv(report: Report, lang: str = "zh-CN") -> str:
    """One row per group and a total row; rates as shares (0.9286), not percent."""
    body = report.as_json()
    en = lang == "en"
    group_names = [*(body["rows"][0]["group"] if body["rows"] else {})]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["period", *group_names, *(c[2] if en else c[1] for c in COLUMNS)]
        if en
        else ["统计周期", *group_names, *(c[1] for c in COLUMNS)]
    )
    for r in [*body["rows"], body["total"]]:
        flat = _flat(r)
        if r["group"]:
            group = ["" if r["group"][n] is None else r["group"][n] for n in group_names]
        else:  # the total row
            label = "total" if en else "合计"
            group = [label if i == 0 else "" for i in range(len(group_names))]
        writer.writerow(
            [
                report.period.label,
                *group,
                *("" if flat[c[0]] is None else flat[c[0]] for c in COLUMNS),
            ]
        )
    return buffer.getvalue()


__all__ = ["COLUMNS", "table", "to_csv"]
