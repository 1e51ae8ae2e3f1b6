"""A hall scenario as data: windows, staff shifts, arrivals, service times, rating behaviour.

Strategy: a TOML file (simulator/scenarios/default.toml is the demo hall) parsed into frozen
dataclasses and validated completely before anything runs, like agent.toml: unknown keys are
errors (a misspelt key would silently keep its default), and the first mistake is reported
with the key's path, what it expects and what it got, in Chinese and English. Nothing
random happens here; simulator.plan turns a Scenario and a seed into the day's events.

Times of day are "HH:MM" on the simulated clock; the simulation starts at ``hall.opening``
and every event time is seconds after it. Shares are probabilities in [0, 1].

What the behaviour knobs model (DOMAIN.md, "Known failure and fraud patterns"):
- ``rating.no_rating``: the citizen walks away without rating; ``rating.phone_qr``: rates by
  scanning the QR code with a phone (掌上评) instead of pressing; ``rating.repeat_press``:
  presses again after the first (only the first counts).
- ``staff.forget_invite``: the staff member does not finish the case while the citizen is at
  the counter (finishes it later, in a batch), so nobody is invited: no case rating.
- ``staff.self_rating_per_hour``: the staff member presses the evaluator themselves between
  citizens (工作人员自我评价): unsolicited presses, never a case rating.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # the agent's id rule (windows, staff)
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
LEVELS = (1, 2, 3, 4, 5)  # 1 非常满意 … 5 非常不满意 (GB/T 39046 order, as the protocol)
BAD_LEVELS = (4, 5)  # 差评
DISTRIBUTIONS = ("exponential", "lognormal", "uniform", "fixed")
REPEAT_DELAY_MAX_S = 2.5  # a repeat follows the first press closely (on its thanks screen)
SHARE_TOLERANCE = 1e-6
CASE_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,24}$")  # leaves room in the 64-char case number
_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class ScenarioError(ValueError):
    """A scenario mistake: the key's path and what is wrong, zh-CN and English."""

    def __init__(self, where: str, zh: str, en: str) -> None:
        self.where = where
        self.zh = f"{where}：{zh}" if where else zh
        self.en = f"{where}: {en}" if where else en
        super().__init__(self.en)


def credit_code_ok(value: str) -> bool:
    """A GB 32100-2015 unified social credit code with a correct check character."""
    if len(value) != 18 or any(ch not in _CREDIT_CHARS for ch in value):
        return False
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(value, _CREDIT_WEIGHTS, strict=False))
    return _CREDIT_CHARS[(31 - total % 31) % 31] == value[17]


@dataclass(frozen=True)
class Distribution:
    """A service-time distribution in seconds, clipped to [min_s, max_s]."""

    kind: str
    mean_s: float
    sd_s: float = 0.0
    min_s: float = 1.0
    max_s: float = 7200.0


@dataclass(frozen=True)
class Item:
    code: str  # 事项编码 (taskCode)
    name: str  # 事项名称
    dept_code: str  # 18-character unified social credit code of the department
    weight: float = 1.0


@dataclass(frozen=True)
class Break:
    start_s: float
    minutes: float


@dataclass(frozen=True)
class Shift:
    staff_id: str
    name: str
    number: str
    start_s: float
    end_s: float
    breaks: tuple[Break, ...] = ()
    forget_invite: float | None = None  # None: the hall's staff.forget_invite
    self_rating_per_hour: float | None = None


@dataclass(frozen=True)
class Window:
    window_id: str
    label: str
    shifts: tuple[Shift, ...]
    rate_per_hour: float | None = None  # None: the hall's arrivals.rate_per_hour


@dataclass(frozen=True)
class Rating:
    levels: Mapping[int, float]  # level -> share of pressing citizens
    no_rating: float
    phone_qr: float
    repeat_press: float
    press_delay_s: tuple[float, float]
    repeat_delay_s: tuple[float, float]
    reasons: tuple[int, ...]
    reasons_per_bad: tuple[int, int]


@dataclass(frozen=True)
class StaffBehaviour:
    forget_invite: float
    self_rating_per_hour: float
    late_finish_s: tuple[float, float]  # a forgotten case is finished this long after


@dataclass(frozen=True)
class Scenario:
    name: str
    case_prefix: str
    opening_s: float  # time of day of the simulation's start (seconds after midnight)
    seed: int
    rate_per_hour: float
    service: Distribution
    rating: Rating
    staff: StaffBehaviour
    items: tuple[Item, ...]
    windows: tuple[Window, ...]
    applicant_legal_entity: float = 0.2
    call_gap_s: float = 15.0  # calling the next number to opening its case
    source: str = field(default="", compare=False)

    def end_s(self) -> float:
        """When the last shift ends (simulated seconds after opening)."""
        return max(s.end_s for w in self.windows for s in w.shifts)

    def clock(self, t: float) -> str:
        """Simulated seconds after opening as a time of day, HH:MM:SS."""
        total = int(self.opening_s + t)
        return f"{total // 3600 % 24:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


# ---------------------------------------------------------------- parsing


class _Reader:
    """Typed access to one TOML table; remembers which keys were read to refuse the rest."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(where, "应为表（table）", "must be a table")
        self.data: dict[str, Any] = data
        self.where = where
        self.used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = ..., *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required or default is ...:
                raise ScenarioError(self.path(key), "缺少此项", "is required")
            return default
        return self.data[key]

    def num_opt(self, key: str, lo: float, hi: float) -> float | None:
        """An optional number: None when the key is absent (the hall-wide value applies)."""
        self.used.add(key)
        return self.num(key, lo, hi) if key in self.data else None

    def num(self, key: str, lo: float, hi: float, default: Any = ...) -> float:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise ScenarioError(
                self.path(key),
                f"应为 {lo}…{hi} 的数，实际为 {v!r}",
                f"must be {lo}…{hi}, got {v!r}",
            )
        return float(v)

    def int_(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScenarioError(
                self.path(key),
                f"应为 {lo}…{hi} 的整数，实际为 {v!r}",
                f"must be an integer {lo}…{hi}, got {v!r}",
            )
        return v

    def text(self, key: str, default: Any = ..., *, max_bytes: int = 200) -> str:
        v = self.raw(key, default)
        if not isinstance(v, str) or not v.strip() or len(v.encode()) > max_bytes:
            raise ScenarioError(
                self.path(key),
                f"应为非空文本（≤ {max_bytes} 字节），实际为 {v!r}",
                f"must be non-empty text (≤ {max_bytes} bytes), got {v!r}",
            )
        return v

    def ident(self, key: str) -> str:
        v = self.raw(key)
        if not isinstance(v, str) or not ID.match(v):
            raise ScenarioError(
                self.path(key),
                f"应为标识（A-Z a-z 0-9 _ -，1…32 个字符），实际为 {v!r}",
                f"must be an id ([A-Za-z0-9_-], 1…32), got {v!r}",
            )
        return v

    def clock(self, key: str, opening_s: float) -> float:
        v = self.raw(key)
        m = HHMM.match(v) if isinstance(v, str) else None
        if m is None:
            raise ScenarioError(
                self.path(key),
                f"应为 HH:MM 格式的时刻，实际为 {v!r}",
                f"must be a time of day HH:MM, got {v!r}",
            )
        t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 - opening_s
        if t < 0:
            raise ScenarioError(
                self.path(key),
                f"{v} 早于开门时间 hall.opening",
                f"{v} is before the hall opens (hall.opening)",
            )
        return t

    def range_(self, key: str, lo: float, hi: float, default: Any = ...) -> tuple[float, float]:
        v = self.raw(key, default)
        ok = (
            isinstance(v, list | tuple)
            and len(v) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            and lo <= v[0] <= v[1] <= hi
        )
        if not ok:
            raise ScenarioError(
                self.path(key),
                f"应为 [最小, 最大]，且 {lo} ≤ 最小 ≤ 最大 ≤ {hi}，实际为 {v!r}",
                f"must be [min, max] with {lo} ≤ min ≤ max ≤ {hi}, got {v!r}",
            )
        return float(v[0]), float(v[1])

    def table(self, key: str) -> _Reader:
        return _Reader(self.raw(key, {}), self.path(key))

    def tables(self, key: str) -> list[_Reader]:
        v = self.raw(key, [])
        if not isinstance(v, list):
            raise ScenarioError(self.path(key), "应为表的数组", "must be an array of tables")
        return [_Reader(x, f"{self.path(key)}[{i}]") for i, x in enumerate(v)]

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ScenarioError(
                self.path(extra[0]),
                "未知的配置项（拼写错误？）",
                "unknown key (misspelt?)",
            )


def _share(r: _Reader, key: str, default: float) -> float:
    return r.num(key, 0.0, 1.0, default)


def _distribution(r: _Reader) -> Distribution:
    kind = r.raw("distribution", "lognormal")
    if kind not in DISTRIBUTIONS:
        raise ScenarioError(
            r.path("distribution"),
            f"应为 {'、'.join(DISTRIBUTIONS)} 之一，实际为 {kind!r}",
            f"must be one of {', '.join(DISTRIBUTIONS)}, got {kind!r}",
        )
    d = Distribution(
        kind=kind,
        mean_s=r.num("mean_s", 1.0, 86400.0, 420.0),
        sd_s=r.num("sd_s", 0.0, 86400.0, 180.0),
        min_s=r.num("min_s", 1.0, 86400.0, 30.0),
        max_s=r.num("max_s", 1.0, 86400.0, 3600.0),
    )
    if not d.min_s <= d.mean_s <= d.max_s:
        raise ScenarioError(
            r.where,
            f"须满足 min_s ≤ mean_s ≤ max_s（{d.min_s} ≤ {d.mean_s} ≤ {d.max_s}）",
            f"needs min_s ≤ mean_s ≤ max_s ({d.min_s} ≤ {d.mean_s} ≤ {d.max_s})",
        )
    r.done()
    return d


def _rating(r: _Reader) -> Rating:
    raw_levels = r.raw("levels", {"1": 0.72, "2": 0.17, "3": 0.06, "4": 0.03, "5": 0.02})
    if not isinstance(raw_levels, dict) or not raw_levels:
        raise ScenarioError(r.path("levels"), "应为表", "must be a table")
    levels: dict[int, float] = {}
    for k, v in raw_levels.items():
        if str(k) not in {str(x) for x in LEVELS}:
            raise ScenarioError(
                r.path(f"levels.{k}"), "等级应为 1…5", "levels are 1…5 (1 非常满意 … 5 非常不满意)"
            )
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise ScenarioError(
                r.path(f"levels.{k}"), f"应为 0…1 的占比，实际为 {v!r}", f"must be 0…1, got {v!r}"
            )
        levels[int(k)] = float(v)
    total = sum(levels.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ScenarioError(
            r.path("levels"),
            f"各等级占比之和应为 1，实际为 {total:g}",
            f"the level shares must add up to 1, got {total:g}",
        )
    no_rating = _share(r, "no_rating", 0.12)
    phone_qr = _share(r, "phone_qr", 0.05)
    if no_rating + phone_qr > 1.0:
        raise ScenarioError(
            r.where,
            "no_rating 与 phone_qr 之和不能超过 1",
            "no_rating + phone_qr must not exceed 1",
        )
    reasons = r.raw("reasons", [501, 502, 503, 504])
    if (
        not isinstance(reasons, list)
        or not 1 <= len(reasons) <= 12
        or not all(
            isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 65535 for x in reasons
        )
        or len(set(reasons)) != len(reasons)
    ):
        raise ScenarioError(
            r.path("reasons"),
            f"应为 1…12 个不重复的指标代码（目录中的差评原因），实际为 {reasons!r}",
            f"must be 1…12 distinct indicator codes (the reason catalogue), got {reasons!r}",
        )
    per_bad = r.range_("reasons_per_bad", 1, len(reasons), [1, min(2, len(reasons))])
    rating = Rating(
        levels=levels,
        no_rating=no_rating,
        phone_qr=phone_qr,
        repeat_press=_share(r, "repeat_press", 0.06),
        press_delay_s=r.range_("press_delay_s", 0.0, 600.0, [2, 12]),
        repeat_delay_s=r.range_("repeat_delay_s", 0.1, REPEAT_DELAY_MAX_S, [0.3, 1.5]),
        reasons=tuple(reasons),
        reasons_per_bad=(int(per_bad[0]), int(per_bad[1])),
    )
    r.done()
    return rating


def _shift(r: _Reader, opening_s: float, staff: StaffBehaviour) -> Shift:
    start = r.clock("start", opening_s)
    end = r.clock("end", opening_s)
    if end <= start:
        raise ScenarioError(r.path("end"), "下班时间应晚于上班时间", "must be after start")
    breaks = []
    for b in r.tables("breaks"):
        brk = Break(start_s=b.clock("start", opening_s), minutes=b.num("minutes", 1, 240))
        if not start <= brk.start_s < end:
            raise ScenarioError(b.path("start"), "休息应在班次之内", "must be inside the shift")
        b.done()
        breaks.append(brk)
    breaks.sort(key=lambda b: b.start_s)
    shift = Shift(
        staff_id=r.ident("staff_id"),
        name=r.text("name", max_bytes=32),
        number=r.text("number", max_bytes=16),
        start_s=start,
        end_s=end,
        breaks=tuple(breaks),
        forget_invite=r.num_opt("forget_invite", 0.0, 1.0),
        self_rating_per_hour=r.num_opt("self_rating_per_hour", 0.0, 60.0),
    )
    r.done()
    return shift


def parse_scenario(data: Mapping[str, Any], *, source: str = "") -> Scenario:
    """A validated Scenario from TOML-shaped data, or ScenarioError naming the first mistake."""
    top = _Reader(dict(data), "")
    hall = top.table("hall")
    opening_raw = hall.raw("opening", "08:30")
    m = HHMM.match(opening_raw) if isinstance(opening_raw, str) else None
    if m is None:
        raise ScenarioError(
            "hall.opening",
            f"应为 HH:MM，实际为 {opening_raw!r}",
            f"must be HH:MM, got {opening_raw!r}",
        )
    opening_s = float(int(m.group(1)) * 3600 + int(m.group(2)) * 60)
    name = hall.text("name", max_bytes=100)
    prefix = hall.raw("case_prefix", "SIM")
    if not isinstance(prefix, str) or not CASE_PREFIX.match(prefix):
        raise ScenarioError(
            "hall.case_prefix",
            f"应为 1…24 个字符 [A-Za-z0-9_-]，实际为 {prefix!r}",
            f"must be 1…24 characters [A-Za-z0-9_-], got {prefix!r}",
        )
    seed = hall.int_("seed", 0, 2**63 - 1, 1)
    legal = _share(hall, "legal_entity", 0.2)
    call_gap = hall.num("call_gap_s", 0.0, 600.0, 15.0)
    hall.done()

    arrivals = top.table("arrivals")
    rate = arrivals.num("rate_per_hour", 0.0, 3600.0, 6.0)
    arrivals.done()
    service = _distribution(top.table("service"))
    rating = _rating(top.table("rating"))
    st = top.table("staff")
    staff = StaffBehaviour(
        forget_invite=_share(st, "forget_invite", 0.03),
        self_rating_per_hour=st.num("self_rating_per_hour", 0.0, 60.0, 0.0),
        late_finish_s=st.range_("late_finish_s", 1.0, 3600.0, [20, 120]),
    )
    st.done()

    items = []
    for r in top.tables("items"):
        code = r.text("code", max_bytes=64)
        dept = r.raw("dept_code")
        if not isinstance(dept, str) or not credit_code_ok(dept):
            raise ScenarioError(
                r.path("dept_code"),
                f"应为 18 位统一社会信用代码（GB 32100，含校验位），实际为 {dept!r}",
                f"must be an 18-character unified social credit code (GB 32100), got {dept!r}",
            )
        item = Item(
            code=code,
            name=r.text("name", max_bytes=144),
            dept_code=dept,
            weight=r.num("weight", 0.0, 1e6, 1.0),
        )
        r.done()
        items.append(item)
    if not items:
        raise ScenarioError("items", "至少需要一个办理事项", "needs at least one item ([[items]])")
    if len({i.code for i in items}) != len(items):
        raise ScenarioError("items", "事项编码重复", "item codes must be distinct")
    if sum(i.weight for i in items) <= 0:
        raise ScenarioError("items", "事项权重之和应大于 0", "the item weights must add up to > 0")

    windows = []
    for r in top.tables("windows"):
        wid = r.ident("id")
        label = r.text("label", wid, max_bytes=32)
        w_rate = r.num_opt("rate_per_hour", 0.0, 3600.0)
        shifts = sorted(
            (_shift(s, opening_s, staff) for s in r.tables("shifts")), key=lambda s: s.start_s
        )
        if not shifts:
            raise ScenarioError(r.path("shifts"), "至少需要一个班次", "needs at least one shift")
        for a, b in itertools.pairwise(shifts):
            if b.start_s < a.end_s:
                raise ScenarioError(
                    r.path("shifts"),
                    f"班次重叠：{a.staff_id} 与 {b.staff_id}（一个窗口同时只能有一人签到）",
                    f"shifts overlap: {a.staff_id} and {b.staff_id} (one account per window)",
                )
        r.done()
        windows.append(
            Window(window_id=wid, label=label, shifts=tuple(shifts), rate_per_hour=w_rate)
        )
    if not windows:
        raise ScenarioError(
            "windows", "至少需要一个窗口", "needs at least one window ([[windows]])"
        )
    ids = [w.window_id for w in windows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ScenarioError("windows", f"窗口 {dup} 重复", f"window {dup} appears twice")
    _check_staff(windows)
    top.done()
    return Scenario(
        name=name,
        case_prefix=prefix,
        opening_s=opening_s,
        seed=seed,
        rate_per_hour=rate,
        service=service,
        rating=rating,
        staff=staff,
        items=tuple(items),
        windows=tuple(windows),
        applicant_legal_entity=legal,
        call_gap_s=call_gap,
        source=source,
    )


def _check_staff(windows: list[Window]) -> None:
    """一码一账号: a staff account is signed in at one window at a time."""
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for w in windows:
        for s in w.shifts:
            for a, b, other in spans.get(s.staff_id, []):
                if s.start_s < b and a < s.end_s:
                    raise ScenarioError(
                        "windows",
                        f"工作人员 {s.staff_id} 同时在 {other} 和 {w.window_id} 上班（一码一账号）",
                        f"staff {s.staff_id} works at {other} and {w.window_id} at the same time"
                        " (one account, one window)",
                    )
            spans.setdefault(s.staff_id, []).append((s.start_s, s.end_s, w.window_id))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError for unreadable or invalid files."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(
            str(p), f"无法读取：{e.strerror or e}", f"cannot read: {e.strerror or e}"
        ) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(str(p), f"不是有效的 TOML：{e}", f"not valid TOML: {e}") from e
    try:
        return parse_scenario(data, source=str(p))
    except ScenarioError as e:
        raise ScenarioError(str(p), e.zh, e.en) from e
