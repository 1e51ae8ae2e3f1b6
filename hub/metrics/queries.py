"""The DOMAIN.md metrics for one period, grouped by one dimension (SQLAlchemy Core).

Strategy:
- The rating figures come from the per-day totals ingest keeps (``rating_rollup``,
  hub.metrics.rollup): the period's days of the dimension's rows, summed per group and
  counting class, folded into the figures here. Where the totals cannot answer (a scope on
  a column the dimension's rows do not carry) or with ``direct=True``: one aggregate scan
  of ``ratings`` over the period's ``rated_at`` range with conditional counts
  (``COUNT(CASE WHEN … THEN 1 END)``, the same SQL on SQLite and PostgreSQL). Both give the
  same figures (tests/hub/test_rollup.py). Every figure is a count; rates are computed here
  from counts, so each one can be checked by hand.
- Excluded ratings (``rating_exclusions``, a verification's 误评/恶意 outcome) leave the
  results: the direct aggregate is run over the excluded ratings only (driven from the small
  exclusions table) and subtracted group by group, for either source. The totals are never
  corrected in place, so whoever writes an exclusion, the result is exactly "the aggregate
  over the ratings that are not excluded".
- Coverage comes from ``cases``: cases finished in the period (not cancelled), and how many
  of them have a counted rating (active, or any including the default rule).
- Periods are calendar periods in China time (CHINA_TZ), turned into a UTC ``[start, end)``.

Counting rules (DOMAIN.md, "One rating per service", "Metrics"; docs/hub-operator.md):
- a *case rating* is a stored rating with ``assess_number`` 1 that is neither a repeat press
  nor an unsolicited press (flags) and is not excluded; only case ratings enter the levels,
  好评率 and 差评 figures;
- *active* case ratings are those not given by the default rule; default ratings are
  counted apart (``default_ratings``) and are not in the level counts or the rates;
- follow-up ratings (追评, ``assess_number`` 2) are counted apart and give 整改满意率;
- repeats and unsolicited presses are counted (they expose fraud patterns) but never rated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    exists,
    func,
    select,
)

from hub.db.schema import cases, rating_exclusions, rating_rollup, ratings
from hub.errors import Msg
from hub.metrics.rollup import CLASS_COLUMNS
from hub.workdays import CHINA_TZ

# Protocol RATING flag bits (hub.ingest.models.FLAG_BITS): repeat 0x01, unsolicited 0x02.
FLAG_REPEAT = 0x01
FLAG_UNSOLICITED = 0x02
NOT_COUNTED_FLAGS = FLAG_REPEAT | FLAG_UNSOLICITED
DEFAULT_SOURCE = "default_rule"
BAD_LEVEL = 4  # 不满意 (4) and 非常不满意 (5) are 差评 (DOMAIN.md, "Rating levels")
RATE_DIGITS = 4  # rates are shares rounded to 4 decimals (0.9286 = 92.86 %)


class MetricsError(ValueError):
    """A metrics request that cannot be answered as asked (bad period, bad dimension)."""

    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(message.en)
        self.code = code
        self.message = message


class PeriodKind(StrEnum):
    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Dimension(StrEnum):
    ALL = "all"
    DEPARTMENT = "department"
    HALL = "hall"
    WINDOW = "window"
    STAFF = "staff"
    ITEM = "item"
    CHANNEL = "channel"


# Group columns of each dimension, as names of ratings columns (cases has the same names).
# Windows and staff accounts are per hall, so their group includes the hall.
GROUP_COLUMNS: dict[Dimension, tuple[str, ...]] = {
    Dimension.ALL: (),
    Dimension.DEPARTMENT: ("dept_code",),
    Dimension.HALL: ("hall_id",),
    Dimension.WINDOW: ("hall_id", "window_id"),
    Dimension.STAFF: ("hall_id", "staff_id"),
    Dimension.ITEM: ("item_code",),
    Dimension.CHANNEL: ("channel",),
}

DIMENSION_ZH = {
    Dimension.ALL: "全部",
    Dimension.DEPARTMENT: "部门",
    Dimension.HALL: "大厅",
    Dimension.WINDOW: "窗口",
    Dimension.STAFF: "工作人员",
    Dimension.ITEM: "事项",
    Dimension.CHANNEL: "渠道",
}

_PERIOD_RE = {
    PeriodKind.DAY: re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),
    PeriodKind.MONTH: re.compile(r"^(\d{4})-(\d{2})$"),
    PeriodKind.QUARTER: re.compile(r"^(\d{4})-Q([1-4])$"),
    PeriodKind.YEAR: re.compile(r"^(\d{4})$"),
}
_PERIOD_EXAMPLE = {
    PeriodKind.DAY: "2026-03-02",
    PeriodKind.MONTH: "2026-03",
    PeriodKind.QUARTER: "2026-Q1",
    PeriodKind.YEAR: "2026",
}


@dataclass(frozen=True)
class Period:
    """A calendar period in China time, as a UTC half-open range."""

    kind: PeriodKind
    label: str
    start: datetime
    end: datetime


def _local(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=CHINA_TZ).astimezone(UTC)


def parse_period(kind: str, label: str) -> Period:
    """``quarter`` + ``2026-Q1`` → 2026-01-01 00:00 to 2026-04-01 00:00 China time."""
    try:
        pk = PeriodKind(kind)
    except ValueError:
        raise MetricsError(
            "metrics.period_kind",
            Msg(
                f"未知的统计周期类型 {kind!r}（可用：day、month、quarter、year）",
                f"unknown period kind {kind!r} (day, month, quarter, year)",
            ),
        ) from None
    match = _PERIOD_RE[pk].match(label)
    bad = MetricsError(
        "metrics.period",
        Msg(
            f"统计周期 {label!r} 不是有效的 {pk.value}（例如 {_PERIOD_EXAMPLE[pk]}）",
            f"period {label!r} is not a valid {pk.value} (e.g. {_PERIOD_EXAMPLE[pk]})",
        ),
    )
    if match is None:
        raise bad
    parts = [int(g) for g in match.groups()]
    try:
        if pk is PeriodKind.DAY:
            first = date(parts[0], parts[1], parts[2])
            start = _local(first.year, first.month, first.day)
            nxt = date.fromordinal(first.toordinal() + 1)
            end = _local(nxt.year, nxt.month, nxt.day)
        elif pk is PeriodKind.MONTH:
            y, m = parts
            start = _local(y, m, 1)
            end = _local(y + m // 12, m % 12 + 1, 1)
        elif pk is PeriodKind.QUARTER:
            y, q = parts
            m = 3 * (q - 1) + 1
            start = _local(y, m, 1)
            end = _local(y + (m + 3) // 13, (m + 2) % 12 + 1, 1)
        else:
            start = _local(parts[0], 1, 1)
            end = _local(parts[0] + 1, 1, 1)
    except ValueError:
        raise bad from None
    if parts[0] < 2000 or parts[0] > 2200:
        raise bad
    return Period(pk, label, start, end)


def infer_period(label: str) -> Period:
    """The period a label names, its kind read from its shape (2026, 2026-Q1, 2026-03,
    2026-03-02)."""
    for kind, pattern in _PERIOD_RE.items():
        if pattern.match(label):
            return parse_period(kind.value, label)
    raise MetricsError(
        "metrics.period",
        Msg(
            f"统计周期 {label!r} 无效（例如 2026、2026-Q1、2026-03、2026-03-02）",
            f"period {label!r} is not valid (e.g. 2026, 2026-Q1, 2026-03, 2026-03-02)",
        ),
    )


def _dimension(name: str) -> Dimension:
    try:
        return Dimension(name)
    except ValueError:
        raise MetricsError(
            "metrics.dimension",
            Msg(
                f"未知的统计维度 {name!r}（可用：{'、'.join(d.value for d in Dimension)}）",
                f"unknown dimension {name!r} ({', '.join(d.value for d in Dimension)})",
            ),
        ) from None


@dataclass
class MetricsRow:
    """The figures of one group. Counts are exact; rates are derived from them."""

    group: dict[str, str | None]
    uploaded: int = 0  # rating records stored in the period (not excluded)
    case_ratings: int = 0  # counted ratings: active + default
    active: int = 0
    default_ratings: int = 0
    levels: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    bad_real_name: int = 0  # 实名差评
    follow_ups: int = 0
    follow_ups_unhappy: int = 0
    repeats: int = 0
    unsolicited: int = 0
    excluded: int = 0  # records excluded by verification (误评/恶意); not in any figure above
    cases_finished: int | None = None  # None: the dimension has no case figures (channel)
    cases_rated: int | None = None
    cases_rated_active: int | None = None

    @property
    def good(self) -> int:
        return self.levels[1] + self.levels[2] + self.levels[3]

    @property
    def bad(self) -> int:
        return self.levels[4] + self.levels[5]

    @property
    def bad_anonymous(self) -> int:
        return self.bad - self.bad_real_name

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "uploaded": self.uploaded,
            "case_ratings": self.case_ratings,
            "active": self.active,
            "default_ratings": self.default_ratings,
            "levels": {str(k): v for k, v in self.levels.items()},
            "good": self.good,
            "bad": self.bad,
            "bad_real_name": self.bad_real_name,
            "bad_anonymous": self.bad_anonymous,
            "good_rate": rate(self.good, self.active),
            "bad_rate": rate(self.bad, self.active),
            "default_share": rate(self.default_ratings, self.case_ratings),
            "follow_ups": self.follow_ups,
            "follow_ups_unhappy": self.follow_ups_unhappy,
            "follow_up_satisfaction_rate": rate(
                self.follow_ups - self.follow_ups_unhappy, self.follow_ups
            ),
            "repeats": self.repeats,
            "unsolicited": self.unsolicited,
            "excluded": self.excluded,
            "cases_finished": self.cases_finished,
            "cases_rated": self.cases_rated,
            "cases_rated_active": self.cases_rated_active,
            "coverage": _opt_rate(self.cases_rated, self.cases_finished),
            "active_rate": _opt_rate(self.cases_rated_active, self.cases_finished),
        }


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to RATE_DIGITS; None when there is nothing to divide by."""
    return None if whole == 0 else round(part / whole, RATE_DIGITS)


def _opt_rate(part: int | None, whole: int | None) -> float | None:
    return None if part is None or whole is None else rate(part, whole)


@dataclass
class Report:
    period: Period
    dimension: Dimension
    rows: list[MetricsRow]
    total: MetricsRow

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {
                "kind": self.period.kind.value,
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
                "timezone": "Asia/Shanghai (UTC+08:00)",
            },
            "dimension": self.dimension.value,
            "rows": [row.as_json() for row in self.rows],
            "total": self.total.as_json(),
        }


# --- the rating aggregate ---

_RATING_FIGURES = (
    "uploaded",
    "active",
    "default_ratings",
    "l1",
    "l2",
    "l3",
    "l4",
    "l5",
    "bad_real_name",
    "follow_ups",
    "follow_ups_unhappy",
    "repeats",
    "unsolicited",
)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


def _rating_figures() -> list[ColumnElement[Any]]:
    r = ratings.c
    flags_ok = r.flags.op("&")(NOT_COUNTED_FLAGS) == 0
    counted = and_(r.assess_number == 1, flags_ok)
    active = and_(counted, r.source != DEFAULT_SOURCE)
    figures: list[ColumnElement[Any]] = [
        func.count().label("uploaded"),
        _count(active).label("active"),
        _count(and_(counted, r.source == DEFAULT_SOURCE)).label("default_ratings"),
    ]
    figures += [_count(and_(active, r.level == k)).label(f"l{k}") for k in range(1, 6)]
    figures += [
        _count(and_(active, r.level >= BAD_LEVEL, r.rater_real_name.is_(True))).label(
            "bad_real_name"
        ),
        _count(r.assess_number == 2).label("follow_ups"),
        _count(and_(r.assess_number == 2, r.level >= BAD_LEVEL)).label("follow_ups_unhappy"),
        _count(r.flags.op("&")(FLAG_REPEAT) != 0).label("repeats"),
        _count(r.flags.op("&")(FLAG_UNSOLICITED) != 0).label("unsolicited"),
    ]
    return figures


def _in_period(period: Period) -> ColumnElement[bool]:
    return and_(ratings.c.rated_at >= period.start, ratings.c.rated_at < period.end)


def _scope(columns: Any, scope: dict[str, str] | None) -> list[ColumnElement[bool]]:
    return [columns[name] == value for name, value in (scope or {}).items()]


def rating_query(
    period: Period, dimension: Dimension, *, excluded: bool, scope: dict[str, str] | None = None
) -> Select[Any]:
    """The rating aggregate; ``excluded``: over excluded ratings only (to subtract)."""
    keys = [ratings.c[name] for name in GROUP_COLUMNS[dimension]]
    query = select(*keys, *_rating_figures()).where(_in_period(period), *_scope(ratings.c, scope))
    if excluded:
        # Driven from the small exclusions table (rowid IN …), never from the period's scan.
        query = query.where(ratings.c.id.in_(select(rating_exclusions.c.rating_id)))
    return query.group_by(*keys) if keys else query


def _case_query(period: Period, dimension: Dimension, scope: dict[str, str] | None) -> Select[Any]:
    """Cases finished in the period (not cancelled), and how many have a case rating, from
    the marks ingest keeps on each case (``cases.first_rated_at``, ``first_active_rated_at``):
    one range scan of ``cases``, no probe into ``ratings``. The marks also count ratings a
    verification later excluded; ``_excluded_case_fixes`` corrects for those few cases."""
    c = cases.c
    keys = [c[name] for name in GROUP_COLUMNS[dimension]]
    query = select(
        *keys,
        func.count().label("finished"),
        func.count(c.first_rated_at).label("rated"),
        func.count(c.first_active_rated_at).label("rated_active"),
    ).where(*_cases_in(period, scope))
    return query.group_by(*keys) if keys else query


def _cases_in(period: Period, scope: dict[str, str] | None) -> list[ColumnElement[bool]]:
    c = cases.c
    return [
        c.finished_at >= period.start,
        c.finished_at < period.end,
        c.cancelled_at.is_(None),
        *_scope(c, scope),
    ]


def _excluded_case_fixes(
    connection: Connection, period: Period, dimension: Dimension, scope: dict[str, str] | None
) -> list[tuple[tuple[Any, ...], int, int]]:
    """For the period's cases with an excluded rating (driven from the small exclusions
    table): the group key and how much the marks overcount rated / rated_active, from an
    exact probe of the case's ratings that are not excluded."""
    c, r = cases.c, ratings.c
    inner = ratings.alias("probe")
    p = inner.c
    best = (
        select(func.min(case((p.source == DEFAULT_SOURCE, 2), else_=1)))
        .where(
            p.hall_id == c.hall_id,
            p.case_no == c.case_no,
            p.assess_number == 1,
            p.flags.op("&")(NOT_COUNTED_FLAGS) == 0,
            ~exists().where(rating_exclusions.c.rating_id == p.id),
        )
        .scalar_subquery()
    )
    names = GROUP_COLUMNS[dimension]
    query = (
        select(
            c.hall_id.label("case_hall"),
            c.case_no.label("case_no"),
            c.first_rated_at,
            c.first_active_rated_at,
            best.label("best"),
            *(c[name].label(f"k_{name}") for name in names),
        )
        .select_from(ratings.join(cases, and_(c.hall_id == r.hall_id, c.case_no == r.case_no)))
        .where(r.id.in_(select(rating_exclusions.c.rating_id)), *_cases_in(period, scope))
    )
    seen: set[tuple[str, str]] = set()
    fixes = []
    for rec in connection.execute(query).mappings():
        case_id = (rec["case_hall"], rec["case_no"])
        if case_id in seen:
            continue
        seen.add(case_id)
        over_rated = int(rec["first_rated_at"] is not None and rec["best"] is None)
        over_active = int(rec["first_active_rated_at"] is not None and rec["best"] != 1)
        if over_rated or over_active:
            fixes.append((tuple(rec[f"k_{n}"] for n in names), over_rated, over_active))
    return fixes


def report(
    *,
    connection: Connection,
    period: Period,
    dimension: str | Dimension,
    scope: dict[str, str] | None = None,
    direct: bool = False,
) -> Report:
    """The metrics of ``period`` per group of ``dimension`` (rows sorted by group), and the
    total over all groups. ``scope`` narrows to e.g. one department: {"dept_code": …}.
    The rating figures come from the per-day totals (``rating_rollup``) where they can
    answer (every dimension, narrowed by department or by a column of the group), else,
    or with ``direct``, from one scan of the period's ratings; the figures are the same."""
    dim = _dimension(str(dimension))
    names = GROUP_COLUMNS[dim]
    for name in scope or {}:
        if name not in ("dept_code", "hall_id", "window_id", "staff_id", "item_code"):
            raise MetricsError(
                "metrics.scope",
                Msg(f"不能按 {name} 限定范围", f"cannot narrow the report by {name}"),
            )
    rows: dict[tuple[Any, ...], MetricsRow] = {}

    def row_for(key: tuple[Any, ...]) -> MetricsRow:
        if key not in rows:
            rows[key] = MetricsRow(group=dict(zip(names, key, strict=True)))
        return rows[key]

    from_rollup = not direct and _rollup_answers(dim, scope)
    if from_rollup:
        for key, figures in _rollup_figures(connection, period, dim, scope).items():
            _add(row_for(key), figures, 1)
    for sign, excluded in ((1, False), (-1, True)):
        if from_rollup and not excluded:
            continue
        for rec in connection.execute(
            rating_query(period, dim, excluded=excluded, scope=scope)
        ).mappings():
            if rec["uploaded"] == 0:
                continue  # the aggregate without GROUP BY answers one row over nothing
            key = tuple(rec[n] for n in names)
            _add(row_for(key), rec, sign)
    if dim is not Dimension.CHANNEL:
        for rec in connection.execute(_case_query(period, dim, scope)).mappings():
            if rec["finished"] == 0:
                continue
            row = row_for(tuple(rec[n] for n in names))
            row.cases_finished = int(rec["finished"])
            row.cases_rated = int(rec["rated"])
            row.cases_rated_active = int(rec["rated_active"])
        for key, over_rated, over_active in _excluded_case_fixes(connection, period, dim, scope):
            row = rows[key]  # the case is finished in the period: its group has a row
            row.cases_rated = (row.cases_rated or 0) - over_rated
            row.cases_rated_active = (row.cases_rated_active or 0) - over_active
        for row in rows.values():
            if row.cases_finished is None:
                row.cases_finished = row.cases_rated = row.cases_rated_active = 0
    ordered = [rows[k] for k in sorted(rows, key=lambda k: tuple((v is None, v or "") for v in k))]
    return Report(period, dim, ordered, _total(ordered, dim))


# --- the same rating figures from the per-day totals (hub.metrics.rollup) ---

# dimension → (rollup dim, rollup columns of the group columns, in GROUP_COLUMNS order)
_ROLLUP_OF: dict[Dimension, tuple[str, tuple[str, ...]]] = {
    Dimension.ALL: ("department", ()),
    Dimension.DEPARTMENT: ("department", ("dept_code",)),
    Dimension.HALL: ("hall", ("k1",)),
    Dimension.WINDOW: ("window", ("k1", "k2")),
    Dimension.STAFF: ("staff", ("k1", "k2")),
    Dimension.ITEM: ("item", ("k1",)),
    Dimension.CHANNEL: ("channel", ("k1",)),
}


def _rollup_column(dim: Dimension, name: str) -> str | None:
    """The rollup column holding rating column ``name`` for ``dim``'s rows, if any."""
    if name == "dept_code":
        return "dept_code"
    columns = dict(zip(GROUP_COLUMNS[dim], _ROLLUP_OF[dim][1], strict=True))
    return columns.get(name)


def _rollup_answers(dim: Dimension, scope: dict[str, str] | None) -> bool:
    return all(_rollup_column(dim, name) is not None for name in scope or {})


def _rollup_figures(
    connection: Connection, period: Period, dim: Dimension, scope: dict[str, str] | None
) -> dict[tuple[Any, ...], dict[str, int]]:
    """The rating figures per group over every stored rating of the period (excluded ones
    included: the caller subtracts them), summed from the per-day totals."""
    t = rating_rollup.c
    stored_dim, key_columns = _ROLLUP_OF[dim]
    keys = [t[name] for name in key_columns]
    classes = [t[name] for name in CLASS_COLUMNS]
    first = period.start.astimezone(CHINA_TZ).date().isoformat()
    last = period.end.astimezone(CHINA_TZ).date().isoformat()
    where = [t.dim == stored_dim, t.day >= first, t.day < last]
    for name, value in (scope or {}).items():
        column = _rollup_column(dim, name)
        assert column is not None
        where.append(t[column] == value)
    query = (
        select(*keys, *classes, func.sum(t.n).label("n")).where(*where).group_by(*keys, *classes)
    )
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for rec in connection.execute(query):
        key = tuple(v or None for v in rec[: len(keys)])  # '' stands for NULL
        is_default, level, assess, repeat, unsolicited, real_name, n = rec[len(keys) :]
        n = int(n)
        figures = out.get(key)
        if figures is None:
            figures = out[key] = dict.fromkeys(_RATING_FIGURES, 0)
        figures["uploaded"] += n
        if assess == 1 and not repeat and not unsolicited:
            if is_default:
                figures["default_ratings"] += n
            else:
                figures["active"] += n
                figures[f"l{level}"] += n
                if level >= BAD_LEVEL and real_name:
                    figures["bad_real_name"] += n
        if assess == 2:
            figures["follow_ups"] += n
            if level >= BAD_LEVEL:
                figures["follow_ups_unhappy"] += n
        if repeat:
            figures["repeats"] += n
        if unsolicited:
            figures["unsolicited"] += n
    return out


def _add(row: MetricsRow, rec: Any, sign: int) -> None:
    row.uploaded += sign * int(rec["uploaded"])
    row.active += sign * int(rec["active"])
    row.default_ratings += sign * int(rec["default_ratings"])
    row.case_ratings = row.active + row.default_ratings
    for k in range(1, 6):
        row.levels[k] += sign * int(rec[f"l{k}"])
    row.bad_real_name += sign * int(rec["bad_real_name"])
    row.follow_ups += sign * int(rec["follow_ups"])
    row.follow_ups_unhappy += sign * int(rec["follow_ups_unhappy"])
    row.repeats += sign * int(rec["repeats"])
    row.unsolicited += sign * int(rec["unsolicited"])
    if sign < 0:
        row.excluded += int(rec["uploaded"])


def _total(rows: Sequence[MetricsRow], dim: Dimension) -> MetricsRow:
    total = MetricsRow(group={})
    with_cases = dim is not Dimension.CHANNEL
    if with_cases:
        total.cases_finished = total.cases_rated = total.cases_rated_active = 0
    for row in rows:
        for name in (
            "uploaded",
            "active",
            "default_ratings",
            "case_ratings",
            "bad_real_name",
            "follow_ups",
            "follow_ups_unhappy",
            "repeats",
            "unsolicited",
            "excluded",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        for k in range(1, 6):
            total.levels[k] += row.levels[k]
        if with_cases:
            total.cases_finished = (total.cases_finished or 0) + (row.cases_finished or 0)
            total.cases_rated = (total.cases_rated or 0) + (row.cases_rated or 0)
            total.cases_rated_active = (total.cases_rated_active or 0) + (
                row.cases_rated_active or 0
            )
    return total


# --- the auditor's view: what was excluded, and why ---


def excluded_ratings(
    *, connection: Connection, period: Period, scope: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every excluded rating of the period with its verification decision (auditors see what
    left the results; DOMAIN.md, workflow step 2). Rater identity is not included."""
    r, x = ratings.c, rating_exclusions.c
    query = (
        select(
            r.id,
            r.rating_key,
            r.source,
            r.hall_id,
            r.window_id,
            r.staff_id,
            r.case_no,
            r.dept_code,
            r.item_code,
            r.level,
            r.assess_number,
            r.rated_at,
            x.outcome,
            x.work_order_id,
            x.reason,
            x.evidence,
            x.decided_by,
            x.approved_by,
            x.decided_at,
        )
        .select_from(rating_exclusions.join(ratings, r.id == x.rating_id))
        .where(_in_period(period), *_scope(ratings.c, scope))
        .order_by(r.rated_at, r.id)
    )
    out = []
    for rec in connection.execute(query).mappings():
        item = dict(rec)
        item["rating_id"] = item.pop("id")
        for name in ("rated_at", "decided_at"):
            item[name] = item[name].isoformat()
        out.append(item)
    return out


__all__ = [
    "GROUP_COLUMNS",
    "Dimension",
    "MetricsError",
    "MetricsRow",
    "Period",
    "PeriodKind",
    "Report",
    "excluded_ratings",
    "infer_period",
    "parse_period",
    "rate",
    "rating_query",
    "report",
]
