"""The hall service: runs case-API events against the store and tells the devices after.

Strategy: every event is one call ``await service.<event>(...)``: the store function
(edge_agent.cases) runs on the writer thread as one transaction and returns the effects;
only after it committed does the service build each affected window's state and hand the
messages to the device links bound to that window. A refused event raises ApiError from the
store function and nothing is sent. The HTTP API (edge_agent.api) and polling adapters
(edge_agent.polling) call the same methods, so they cannot disagree.

It also owns the sweeper (``sweep``, once a second): expiring invites and outbox items past
their limits; and the QR secret, read once from the store at start and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from edge_agent import cases, outbox, qr, registry
from edge_agent.cases import Effect, Hall
from edge_agent.config import AgentConfig
from edge_agent.downlink import InviteState, WindowState
from edge_agent.errors import ApiError
from edge_agent.logs import log_event
from edge_agent.store import Database, Store, now_ms

log = logging.getLogger("hcp.agent")

QR_KID = 1  # the QR secret's key id; rotation adds 2, 3, ... (edge_agent.qr)
QR_CACHE_MAX = 256  # rendered matrices kept: a hall has tens of windows
SWEEP_S = 1.0  # invites expire within a second of their grace period


class LinkHandle(Protocol):
    """What the service needs from a device link (edge_agent.serial_link.DeviceLink)."""

    device_id: str

    def push(self, effect: Effect, state: WindowState | None) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


class HallService:
    def __init__(
        self, cfg: AgentConfig, db: Database, *, clock_ms: Callable[[], int] = now_ms
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.clock_ms = clock_ms
        self.hall = Hall(
            hall_id=cfg.hall_id,
            policy=cfg.policy,
            outbox=cfg.outbox,
            offset_min=cfg.utc_offset_min,
        )
        self.links: dict[str, LinkHandle] = {}
        self.brokers: dict[str, Any] = {}  # name -> snapshot() of a broker connection (mqtt)
        self.api_refused: Counter[str] = Counter()
        self.api_accepted: Counter[str] = Counter()
        self._qr_secret: bytes | None = None
        self._qr_cache: dict[str, dict[str, Any] | None] = {}
        self.started_ms = clock_ms()

    async def start(self) -> None:
        self._qr_secret = await self.db.run(lambda s: s.secret(f"qr.{QR_KID}"))
        await self.db.run(registry.mark_all_offline, now_ms=self.clock_ms())

    # ---------------------------------------------------------------- case-API events
    async def _apply(self, op: str, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        try:
            result = await self.db.run(fn, self.hall, now_ms=self.clock_ms(), **kwargs)
        except ApiError as e:
            self.api_refused[e.code] += 1
            log_event(log, "api.refused", logging.INFO, op=op, code=e.code)
            raise
        self.api_accepted[op] += 1
        answer, effects = result
        await self.dispatch(effects)
        return answer

    async def sign_in(self, **kwargs: Any) -> Any:
        return await self._apply("sign_in", cases.sign_in, **kwargs)

    async def sign_out(self, **kwargs: Any) -> Any:
        return await self._apply("sign_out", cases.sign_out, **kwargs)

    async def pause(self, **kwargs: Any) -> Any:
        return await self._apply("pause", cases.set_paused, paused=True, **kwargs)

    async def resume(self, **kwargs: Any) -> Any:
        return await self._apply("resume", cases.set_paused, paused=False, reason=None, **kwargs)

    async def open_case(self, **kwargs: Any) -> Any:
        return await self._apply("open_case", cases.open_case, **kwargs)

    async def finish_case(self, **kwargs: Any) -> Any:
        return await self._apply("finish_case", cases.finish_case, **kwargs)

    async def cancel_case(self, **kwargs: Any) -> Any:
        return await self._apply("cancel_case", cases.cancel_case, **kwargs)

    # ---------------------------------------------------------------- devices
    def register_link(self, link: LinkHandle) -> None:
        self.links[link.device_id] = link

    async def dispatch(self, effects: list[Effect]) -> None:
        """Hand each effect to the links of the devices bound to its window."""
        states: dict[str, WindowState | None] = {}
        for effect in effects:
            if effect.window_id not in states:
                states[effect.window_id] = await self.window_state(effect.window_id)
            bound = await self.db.run(_devices_at, effect.window_id)
            for device_id in bound:
                link = self.links.get(device_id)
                if link is not None:
                    link.push(effect, states[effect.window_id])

    async def window_state(self, window_id: str | None) -> WindowState | None:
        if window_id is None:
            return None
        raw = await self.db.run(_window_raw, window_id)
        if raw is None:
            return None
        now = self.clock_ms()
        policy = self.cfg.policy
        staff_qr = None
        if policy.qr_base_url and raw["staff_id"]:
            pos = raw["position"]
            if pos is not None and pos["staff_id"] == raw["staff_id"]:
                exp = qr.static_expiry(pos["since_ms"])  # the printed label's code
            else:
                # Someone covering a window that is not their position: a code that lives one
                # working day, its expiry rounded to the hour so every LinkUp within the hour
                # renders the same matrix (and hits the cache).
                exp = (now // 1000 + policy.staff_qr_ttl_s) // 3600 * 3600
            staff_qr = await self._render(window_id, raw["staff_id"], None, exp)
        invite = None
        inv = raw["invite"]
        if inv is not None:
            invite_qr = None
            if policy.qr_base_url:
                invite_qr = await self._render(
                    window_id, inv["staff_id"], inv["case_no"], inv["deadline_ms"] // 1000 + 1
                )
            invite = InviteState(
                invite_id=inv["invite_id"],
                case_no=inv["case_no"],
                deadline_ms=inv["deadline_ms"],
                staff=registry.staff_display(
                    {
                        "staff_id": inv["staff_id"],
                        "staff_name": inv["staff_name"],
                        "staff_number": inv["staff_number"],
                        "staff_title": inv["staff_title"],
                    }
                ),
                staff_id=inv["staff_id"],
                item_name=inv["item_name"],
                qr=invite_qr,
            )
        return WindowState(
            window_id=window_id,
            label=raw["label"],
            staff=registry.staff_display(raw),
            staff_id=raw["staff_id"],
            paused=bool(raw["paused"]),
            pause_reason=raw["pause_reason"],
            config_version=raw["config_version"],
            invite=invite,
            staff_qr=staff_qr,
        )

    async def _render(
        self, window_id: str, staff_id: str | None, case_no: str | None, exp_s: int
    ) -> dict[str, Any] | None:
        assert self._qr_secret is not None and self.cfg.policy.qr_base_url is not None
        token = qr.make_token(
            self._qr_secret,
            qr.TokenClaims(QR_KID, self.cfg.hall_id, window_id, staff_id, case_no, exp_s),
        )
        url = qr.token_url(self.cfg.policy.qr_base_url, token)
        if url in self._qr_cache:
            return self._qr_cache[url]
        try:
            matrix: dict[str, Any] | None = await asyncio.to_thread(qr.render, url)
        except qr.QrTooLong:
            matrix = None
            await self.db.run(lambda s: s.bump("qr_too_long"))
            log_event(log, "qr.too_long", logging.WARNING, window=window_id, length=len(url))
        if len(self._qr_cache) >= QR_CACHE_MAX:
            self._qr_cache.pop(next(iter(self._qr_cache)))
        self._qr_cache[url] = matrix
        return matrix

    # ---------------------------------------------------------------- sweeper
    async def sweep(self) -> None:
        now = self.clock_ms()
        expired = await self.db.run(cases.expire_invites, self.hall, now_ms=now)
        for invite_id in expired:
            log_event(log, "invite.expired", logging.INFO, invite=invite_id)
        await self.db.run(outbox.expire, now_ms=now, limits=self.cfg.outbox)

    async def run_sweeper(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sweep()
            except Exception:  # a bad row must not stop the sweeper: log and carry on
                log.exception("sweep.failed", extra={"fields": {}})
            await asyncio.sleep(max(0.0, SWEEP_S - (time.monotonic() - started)))


def _devices_at(store: Store, window_id: str) -> list[str]:
    return [
        r["device_id"]
        for r in store.all("SELECT device_id FROM devices WHERE window_id = ?", window_id)
    ]


def _window_raw(store: Store, window_id: str) -> dict[str, Any] | None:
    w = registry.window(store, window_id)
    if w is None:
        return None
    w["invite"] = cases.open_invite(store, window_id)
    w["position"] = registry.position(store, window_id)
    return w
