"""Run a hall plan against a running agent: the case-system API over HTTP, presses on devices.

Strategy: simulator.plan already decided *what* happens and *when* on the simulated clock;
this module makes it happen. A ``SimClock`` maps simulated seconds to wall time at a speed
factor (``speed=None``: as fast as possible). Windows are independent counters, so each
window's events run in order on their own asyncio lane, and a lane waiting for its device
never holds up the others. The agent is driven only through its real case-system API
(docs/hall-admin.md, "Connecting the queue system"), with an ``event_id`` on every POST so a
retried request is never applied twice; presses go through ``VirtualDevice`` (simulator
.devices), never into the agent directly.

Everything that happened is written to the ``GroundTruth``: each press with the rating the
device stored (device, seq, invite, flags, thanked) and what it must become in the agent
(counted for its case, a repeat of it, or unsolicited); phone QR ratings; cases the staff
forgot to invite; refused API calls. simulator.accounting checks the agent's store against it.

Ordering guards (so an outcome does not depend on machine load): a citizen presses only once
the device shows the case's invite; and a lane finishes its next case only after the agent
acknowledged the window's earlier presses (at high speed factors a press and the next case's
invite are milliseconds apart). A staff self-press waits up to SELF_IDLE_WAIT_S (wall) for
the device to be idle: a device treats presses as repeats of the last rated invite until
that invite's deadline (``policy.invite_s`` of wall time), which at a high speed factor can
be a simulated hour; after the wait the press is made anyway, and the ground truth expects
what the device made of it (a repeat of that invite's case).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from simulator.devices import VirtualDevice
from simulator.plan import PlanEvent
from simulator.scenario import Scenario

INVITE_WAIT_S = 10.0  # the INVITE reaches a linked device in milliseconds; 10 s is a fault
SELF_IDLE_WAIT_S = 5.0  # a self-press waits this long for the last invite's deadline
ACK_WAIT_S = 15.0  # the agent commits a press in milliseconds; a busy store waits up to 5 s
HTTP_TIMEOUT_S = 10.0
TAG_MAX = 16
BUTTON_KINDS = ("evaluator", "combined")


class EngineError(Exception):
    """The run cannot start (agent unreachable, windows missing); zh-CN and English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class SimClock:
    """Simulated seconds -> wall time at `speed` (None: as fast as possible)."""

    def __init__(self, speed: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds reached (as fast as possible: wall seconds since start)."""
        return (time.monotonic() - self.t0) * (self.speed or 1.0)

    async def until(self, t: float) -> None:
        if self.speed is None:
            return
        delay = self.t0 + t / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class PressTruth:
    t: float
    window_id: str
    who: str  # citizen | staff
    role: str  # first | repeat | self
    level: int
    reasons: list[int]
    staff_id: str | None
    case_no: str | None  # the case the person meant (None: a self-press)
    device_id: str | None = None
    seq: int | None = None
    invite_id: int | None = None
    flags: int = 0
    thanked: bool = False
    expect: str | None = None  # counted | repeat | unsolicited (what the agent must record)
    expect_case: str | None = None
    expect_staff: str | None = None  # the staff account the agent binds it to
    note: str | None = None  # why the press was not made or not as planned


@dataclass
class CaseTruth:
    case_no: str
    window_id: str
    staff_id: str
    opened: bool = False
    finished: bool = False
    invite_id: int | None = None
    outcome: str = "open"  # pressed | phone_qr | no_rating | not_invited


@dataclass
class GroundTruth:
    tag: str
    presses: list[PressTruth] = field(default_factory=list)
    cases: dict[str, CaseTruth] = field(default_factory=dict)
    phone_qr: list[dict[str, Any]] = field(default_factory=list)
    api_errors: list[dict[str, Any]] = field(default_factory=list)
    left_unserved: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "presses": [asdict(p) for p in self.presses],
            "cases": {k: asdict(v) for k, v in self.cases.items()},
            "phone_qr": self.phone_qr,
            "api_errors": self.api_errors,
            "left_unserved": self.left_unserved,
        }


@dataclass
class RunReport:
    events: int
    sim_s: float
    wall_s: float
    api_calls: int
    api_refused: int
    presses: int
    kinds: dict[str, int]

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def speedup(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else float("inf")


class Engine:
    """Drives one plan through an agent's case API and a set of virtual devices."""

    def __init__(
        self,
        scenario: Scenario,
        events: list[PlanEvent],
        *,
        agent_url: str,
        devices: Mapping[str, VirtualDevice] | None = None,
        speed: float | None = None,
        tag: str = "sim",
        duration_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport`: only for measuring the engine without an agent (tests/bench)."""
        if not tag or len(tag) > TAG_MAX or not all(c.isalnum() or c in "_-" for c in tag):
            raise EngineError(
                f"运行标签应为 1…{TAG_MAX} 个字符 [A-Za-z0-9_-]：{tag!r}",
                f"the run tag must be 1…{TAG_MAX} characters [A-Za-z0-9_-]: {tag!r}",
            )
        self.sc = scenario
        self.events = [e for e in events if duration_s is None or e.t < duration_s]
        self.agent_url = agent_url.rstrip("/")
        self.devices = dict(devices or {})
        self.clock = SimClock(speed)
        self.truth = GroundTruth(tag=tag)
        self.window_device: dict[str, VirtualDevice] = {}
        self.kinds: Counter[str] = Counter()
        self.api_calls = 0
        self.invite_case: dict[int, CaseTruth] = {}
        self.lag_s: list[float] = []  # wall seconds each event started after its time
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def case_no(self, planned: str) -> str:
        return f"{self.truth.tag}-{planned}"

    # ---------------------------------------------------------------- setup

    async def prepare(self, http: httpx.AsyncClient) -> None:
        """Check the agent knows every window; bring them to a clean state (nobody signed
        in, not paused) so a run does not inherit the last run's hall."""
        try:
            r = await http.get("/api/v1/windows")
            r.raise_for_status()
            windows = {w["window_id"]: w for w in r.json()}
            r = await http.get("/api/v1/devices")
            r.raise_for_status()
            devices = r.json()
        except httpx.HTTPError as e:
            raise EngineError(
                f"无法连接大厅代理 {self.agent_url}：{e}",
                f"cannot reach the hall agent at {self.agent_url}: {e}",
            ) from e
        missing = [w.window_id for w in self.sc.windows if w.window_id not in windows]
        if missing:
            raise EngineError(
                f"代理中没有这些窗口：{'、'.join(missing)}（用 hcp agent add-window 登记）",
                f"the agent has no windows {', '.join(missing)} (register them with "
                "hcp agent add-window)",
            )
        for d in devices:
            w, dev_id = d.get("window_id"), d["device_id"]
            if w is not None and d.get("kind") in BUTTON_KINDS and dev_id in self.devices:
                self.window_device[w] = self.devices[dev_id]
        for w in self.sc.windows:
            state = windows[w.window_id]
            if state.get("paused"):
                await http.post(f"/api/v1/windows/{w.window_id}/resume", json={})
            if state.get("staff_id"):
                await http.post(
                    f"/api/v1/windows/{w.window_id}/sign-out", json={"staff_id": state["staff_id"]}
                )
        # Staff of the scenario signed in at windows outside it would refuse their sign-in.
        ours = {s.staff_id for w in self.sc.windows for s in w.shifts}
        for wid, state in windows.items():
            if state.get("staff_id") in ours and wid not in {w.window_id for w in self.sc.windows}:
                await http.post(
                    f"/api/v1/windows/{wid}/sign-out", json={"staff_id": state["staff_id"]}
                )

    # ---------------------------------------------------------------- running

    async def run(self) -> RunReport:
        async with httpx.AsyncClient(
            base_url=self.agent_url, timeout=HTTP_TIMEOUT_S, transport=self._transport
        ) as http:
            self._http = http
            await self.prepare(http)
            lanes: dict[str, list[tuple[int, PlanEvent]]] = {}
            for i, e in enumerate(self.events):
                lanes.setdefault(e.window_id, []).append((i, e))
            self.clock.start()
            t0 = time.monotonic()
            await asyncio.gather(*(self._lane(w, evs) for w, evs in lanes.items()))
            await self.settle()
            wall = time.monotonic() - t0
        refused = len(self.truth.api_errors)
        return RunReport(
            events=len(self.events),
            sim_s=max((e.t for e in self.events), default=0.0),
            wall_s=wall,
            api_calls=self.api_calls,
            api_refused=refused,
            presses=sum(1 for p in self.truth.presses if p.seq is not None),
            kinds=dict(self.kinds),
        )

    async def settle(self) -> None:
        """Wait until the agent acknowledged every press the devices hold."""
        await asyncio.gather(*(d.wait_acked(ACK_WAIT_S) for d in self.window_device.values()))

    async def _lane(self, window_id: str, events: list[tuple[int, PlanEvent]]) -> None:
        for i, e in events:
            await self.clock.until(e.t)
            if self.clock.speed is not None:
                self.lag_s.append(max(0.0, (self.clock.now() - e.t) / self.clock.speed))
            await self.execute(i, e)

    async def _post(self, i: int, e: PlanEvent, path: str, body: dict[str, Any]) -> Any:
        assert self._http is not None
        body = {**body, "event_id": f"{self.truth.tag}.{i}"}
        self.api_calls += 1
        try:
            r = await self._http.post(path, json=body)
        except httpx.HTTPError as ex:
            self.truth.api_errors.append(
                {"t": e.t, "window": e.window_id, "kind": e.kind, "error": type(ex).__name__}
            )
            return None
        if r.status_code >= 300:
            try:
                err = r.json().get("error", {})
            except ValueError:
                err = {}
            self.truth.api_errors.append(
                {
                    "t": e.t,
                    "window": e.window_id,
                    "kind": e.kind,
                    "status": r.status_code,
                    "code": err.get("code"),
                    "message": err.get("message"),
                }
            )
            return None
        return r.json()

    async def execute(self, i: int, e: PlanEvent) -> None:
        self.kinds[e.kind] += 1
        w, d = e.window_id, e.data
        if e.kind == "sign_in":
            body = {k: d[k] for k in ("staff_id", "name", "number")}
            await self._post(i, e, f"/api/v1/windows/{w}/sign-in", body)
        elif e.kind == "sign_out":
            await self._post(i, e, f"/api/v1/windows/{w}/sign-out", {"staff_id": d["staff_id"]})
        elif e.kind == "pause":
            await self._post(i, e, f"/api/v1/windows/{w}/pause", {"reason": d["reason"]})
        elif e.kind == "resume":
            await self._post(i, e, f"/api/v1/windows/{w}/resume", {})
        elif e.kind == "open_case":
            await self._open(i, e)
        elif e.kind == "finish_case":
            await self._finish(i, e)
        elif e.kind == "press":
            await self._press(e)
        elif e.kind == "phone_qr":
            case = self.truth.cases.get(self.case_no(d["case_no"]))
            if case is not None:
                case.outcome = "phone_qr"
            self.truth.phone_qr.append(
                {
                    "t": e.t,
                    "window_id": w,
                    "case_no": self.case_no(d["case_no"]),
                    "staff_id": case.staff_id if case else None,
                    "invite_id": case.invite_id if case else None,
                    "level": d["level"],
                    "reasons": d["reasons"],
                }
            )
        elif e.kind == "walk_away":
            case = self.truth.cases.get(self.case_no(d["case_no"]))
            if case is not None:
                case.outcome = str(d["reason"])
        elif e.kind == "left":
            self.truth.left_unserved += int(d["waiting"])

    async def _open(self, i: int, e: PlanEvent) -> None:
        d = e.data
        case_no = self.case_no(d["case_no"])
        self.truth.cases[case_no] = CaseTruth(case_no, e.window_id, d["staff_id"])
        body = {
            "case_no": case_no,
            "window_id": e.window_id,
            **{
                k: d[k]
                for k in (
                    "staff_id",
                    "item_code",
                    "item_name",
                    "dept_code",
                    "applicant_type",
                    "applicant_name",
                    "applicant_phone",
                )
            },
        }
        if await self._post(i, e, "/api/v1/cases", body) is not None:
            self.truth.cases[case_no].opened = True

    async def _delivered(self, case_no: str, timeout: float) -> bool:
        """The agent recorded the case's INVITE as acknowledged by a device at the window (so
        the device processed the CANCEL of the previous invite before it): what a citizen
        waits for, seeing the invite on the screen. Works for any VirtualDevice."""
        assert self._http is not None
        end = time.monotonic() + timeout
        while True:
            try:
                r = await self._http.get("/api/v1/cases", params={"case_no": case_no})
                invite = r.json().get("invite") if r.status_code == 200 else None
                if invite and invite.get("delivered_ms") is not None:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.005)

    async def _finish(self, i: int, e: PlanEvent) -> None:
        case_no = self.case_no(e.data["case_no"])
        dev = self.window_device.get(e.window_id)
        if dev is not None:  # the earlier presses are judged before this invite supersedes
            await dev.wait_acked(ACK_WAIT_S)
        answer = await self._post(i, e, "/api/v1/cases/finish", {"case_no": case_no})
        case = self.truth.cases.get(case_no)
        if answer is not None and case is not None:
            case.finished = True
            case.invite_id = int(answer["invite_id"])
            self.invite_case[case.invite_id] = case

    async def _press(self, e: PlanEvent) -> None:
        d = e.data
        case = self.truth.cases.get(self.case_no(d["case_no"])) if d["case_no"] else None
        if case is not None and d["role"] == "first":
            case.outcome = "pressed"
        p = PressTruth(
            t=e.t,
            window_id=e.window_id,
            who=str(d["who"]),
            role=str(d["role"]),
            level=int(d["level"]),
            reasons=list(d["reasons"]),
            staff_id=case.staff_id if case else d.get("staff_id"),
            case_no=case.case_no if case else None,
        )
        self.truth.presses.append(p)
        dev = self.window_device.get(e.window_id)
        if dev is None:
            p.note = "no_device"
            return
        if p.role == "first":
            if case is None or case.invite_id is None:
                p.note = "no_invite"  # the finish was refused: the device shows nothing
            elif not await self._delivered(case.case_no, INVITE_WAIT_S):
                p.note = "invite_not_delivered"
            elif not await dev.wait_invite(case.invite_id, INVITE_WAIT_S):
                p.note = "invite_not_shown"
        elif p.role == "self":
            await dev.wait_idle(SELF_IDLE_WAIT_S)
        result = await dev.press(p.level, p.reasons)
        p.device_id, p.seq, p.invite_id = result.device_id, result.seq, result.invite_id
        p.flags, p.thanked = result.flags, result.thanked
        bound = self.invite_case.get(result.invite_id) if result.invite_id is not None else None
        p.expect, p.expect_case = expected_binding(result.flags, result.invite_id, bound)
        p.expect_staff = bound.staff_id if bound is not None else None
        if p.expect == "counted" and (bound is None or bound is not case):
            p.note = "counted_for_another_case"


def expected_binding(
    flags: int, invite_id: int | None, case: CaseTruth | None
) -> tuple[str, str | None]:
    """What the agent must record for a rating the device stored (docs/hall-admin.md, "How
    presses are bound to cases"), judged from the device's own view."""
    from protocol import messages as M

    if invite_id is None or flags & M.FLAG_UNSOLICITED:
        return "unsolicited", None
    case_no = case.case_no if case is not None and case.invite_id == invite_id else None
    if flags & M.FLAG_PAUSED:
        return "paused", case_no
    if flags & M.FLAG_REPEAT:
        return "repeat", case_no
    return "counted", case_no
