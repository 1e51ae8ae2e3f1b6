"""The agent's end of one device's link session, whatever carries the packets.

Strategy: ``SessionLink`` holds everything that happens *above* the transport, so serial
(edge_agent.serial_link) and MQTT (edge_agent.mqtt_link) behave identically; a transport
subclass only feeds packets into ``self._session`` and writes what it wants sent.

- **Durable acks.** The RATINGs of one read are committed in one transaction
  (edge_agent.ratings.commit_ratings) and acknowledged only after it returned: ``ack``
  is the highest seq that is on disk. What cannot be committed (disk full, a lock held too
  long, a full outbox under ``block``) is not acknowledged and is retried every
  COMMIT_RETRY_S; a crash meanwhile loses nothing, the device still holds it.
- **State on LinkUp.** CONFIG (window, staff, policy), PAUSE if paused, the open INVITE:
  the device's screen is rebuilt from the store after every (re)connect. Updates pushed while
  the link is down are dropped: the next LinkUp sends the state they led to.
- **Refused packets** are counted by code (auth.*, replay.*, msg.*, cbor.*, state.*, and
  the transport's own: frame.* on serial, topic.*/presence.* on MQTT), cumulative per device
  across attachments and restarts (the registry keeps them), and never stop the link.

Press times: a HELLO carries the device's tick counter, so ``agent time at the HELLO +
(ticks at the press − ticks at the HELLO)`` places a press of the same boot on the agent's
clock to within the link latency (ticks are u32 milliseconds; the difference is taken
mod 2³²). Presses of an earlier boot use the device's own clock estimate when it had one,
otherwise their arrival time; ``time_source`` records which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from edge_agent import cases, ratings, registry
from edge_agent.cases import Effect
from edge_agent.downlink import WindowState, effect_messages, state_messages
from edge_agent.logs import log_event
from edge_agent.ratings import Incoming
from edge_agent.service import HallService
from edge_agent.wire import AgentSession, M, Message, S, is_message

log = logging.getLogger("hcp.agent.link")

QUARANTINE_RECHECK_S = 1.0  # how soon a key added by hcp agent add-device takes effect
IDLE_WAKE_S = 1.0  # longest sleep without a timer: pushes and stop requests are checked
BLOCK_CHECK_S = 5.0  # an attached device quarantined by an admin is cut off within this
PENDING_MAX = 32  # queued down messages; beyond, resend the whole state instead
FUTURE_TOLERANCE_MS = 5000  # a corrected press time further ahead than this is not believed
COMMIT_RETRY_S = 1.0  # uncommitted ratings are retried this often (store busy, outbox full)
LOG_REPEAT_S = 60.0  # a repeating warning (blocked, commit failed) is logged once a minute
TICKS_MOD = 1 << 32


@dataclass(frozen=True)
class TickBase:
    boot: int
    ticks: int
    wall_ms: int


def press_time(r: Message, base: TickBase | None, now_ms: int) -> tuple[int, str]:
    """(press time on the agent's clock in ms, how it was derived)."""
    if base is not None and r.boot == base.boot:
        diff = (r.ticks - base.ticks) % TICKS_MOD
        if diff >= TICKS_MOD // 2:
            diff -= TICKS_MOD
        t = base.wall_ms + diff
        if t <= now_ms + FUTURE_TOLERANCE_MS:
            return t, "ticks"
    if r.time is not None and r.time * 1000 <= now_ms + FUTURE_TOLERANCE_MS:
        return int(r.time) * 1000, "device_clock"
    return now_ms, "arrival"


def mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class SessionLink:
    """The agent's side of one device's link session; subclasses carry the packets."""

    LINK = "serial"  # registry.link_up's ``link``: how the device is attached

    def __init__(self, service: HallService, device_id: str) -> None:
        self.service = service
        self.db = service.db
        self.device_id = device_id
        self.state = "starting"  # quarantined, waiting_port, attached, open
        self.quarantine: str | None = None
        self.refused: Counter[str] = Counter()
        self.attachments = 0
        self.ratings_acked = 0
        self.commit_failures = 0
        self.crashes = 0
        self.last_seen_ms: int | None = None
        self.kind: int | None = None
        self._session: AgentSession | None = None
        self._inbox: asyncio.Queue[Any] | None = None
        self._pending: list[tuple[Message, int | None]] = []
        self._resend_state = False
        self._sent_invites: dict[int, int] = {}  # down seq -> invite id
        self._tick_base: TickBase | None = None
        self._window_id: str | None = None
        self._uncommitted: list[Incoming] = []
        self._retry_at: int | None = None
        self._logged: dict[str, int] = {}
        service.register_link(self)

    @property
    def online(self) -> bool:
        return self.state == "open"

    def snapshot(self) -> dict[str, Any]:
        """For /healthz and /metrics (the transport adds where the device is attached)."""
        return {
            "device_id": self.device_id,
            "state": self.state,
            "quarantine": self.quarantine,
            "attachments": self.attachments,
            "ratings_acked": self.ratings_acked,
            "commit_failures": self.commit_failures,
            "crashes": self.crashes,
            "refused": dict(self.refused),
            "session": dict(self._session.counters) if self._session is not None else {},
        }

    async def _load_counters(self) -> None:
        """Refusal counters kept in the registry across agent restarts."""
        dev = await self.db.run(
            registry.ensure_device, device_id=self.device_id, now_ms=self.service.clock_ms()
        )
        self.refused.update(dev.refused)

    async def _check_quarantine(self) -> bool:
        """Re-read the registry (an admin may quarantine or release the device at any time);
        True while the device is quarantined."""
        dev = await self.db.run(
            registry.ensure_device, device_id=self.device_id, now_ms=self.service.clock_ms()
        )
        self._set_quarantine(dev.quarantine)
        return dev.quarantine is not None

    async def _new_session(self) -> AgentSession | None:
        """A fresh agent session for one attachment, from the registry; None when the
        device's key was removed meanwhile (back to quarantine)."""
        key = await self.db.run(registry.device_key, self.device_id)
        dev = await self.db.run(registry.device, self.device_id)
        if key is None or dev is None:
            return None
        session_no = await self.db.run(lambda s: s.allocate_agent_session())
        session = AgentSession(
            key,
            session_no,
            device_id=self.device_id,
            min_peer_session=dev.min_session,
            committed=dev.committed_seq,
            heartbeat_s=self.service.cfg.heartbeat_s,
            clock_ms=self.service.clock_ms,
        )
        del key
        self._session = session
        self._uncommitted = []
        self._retry_at = None
        self.kind = dev.kind
        self._window_id = dev.window_id
        self.state = "attached"
        return session

    async def _cut_if_quarantined(self, session: AgentSession, now: int) -> bool:
        """hcp agent quarantine takes effect on a live link too: True (and the session
        closed) when the device was quarantined or removed while attached."""
        dev = await self.db.run(registry.device, self.device_id)
        if dev is not None and dev.quarantine is None:
            return False
        if session.is_open():
            session.close(now)
            await self._handle_events(session)
        return True

    async def _record_link_down(self) -> None:
        """The registry's record of the link's end: offline, counters, last seen."""
        await self.db.run(
            registry.link_down,
            device_id=self.device_id,
            refused=dict(self.refused),
            last_seen_ms=self.last_seen_ms,
            now_ms=self.service.clock_ms(),
        )

    async def _link_down(self, reason: str) -> None:
        """Forget the session and record the link's end (counters, last seen) in the registry."""
        was_open = self._session is not None and self._session.is_open()
        self._session = None
        with contextlib.suppress(Exception):  # the store may be failing: the link goes on
            await self._record_link_down()
        if was_open:
            log_event(log, "link.down", device=self.device_id, reason=reason)

    def _set_quarantine(self, reason: str | None) -> None:
        if reason == self.quarantine and (reason is None or self.state == "quarantined"):
            return
        if reason is not None:
            self.state = "quarantined"
            log_event(
                log, "device.quarantined", logging.WARNING, device=self.device_id, reason=reason
            )
        elif self.quarantine is not None:
            log_event(log, "device.released", device=self.device_id)
        self.quarantine = reason

    # ---------------------------------------------------------------- session events
    async def _handle_events(self, session: AgentSession) -> None:
        batch: list[Incoming] = []
        while True:
            e = session.next_event()
            if e is None:
                break
            if is_message(e):
                if e.type == M.RATING:
                    now = self.service.clock_ms()
                    t, source = press_time(e, self._tick_base, now)
                    batch.append(
                        Incoming(
                            seq=e.seq,
                            invite_id=e.invite,
                            level=e.level,
                            reasons=list(e.reasons),
                            flags=e.flags,
                            ticks=e.ticks,
                            boot=e.boot,
                            device_time=e.time,
                            press_ms=t,
                            time_source=source,
                        )
                    )
                elif e.type == M.STATUS:
                    await self._on_status(e)
                elif e.type == M.ERROR:
                    log_event(
                        log,
                        "device.error",
                        logging.WARNING,
                        device=self.device_id,
                        code=e.code,
                        detail=e.detail,
                    )
                elif e.type == M.SELFTEST_RESULT:
                    log_event(log, "device.selftest", device=self.device_id, results=e.results)
            elif isinstance(e, S.LinkUp):
                await self._commit(session, batch)
                batch = []
                await self._on_link_up(session, e.peer)
            elif isinstance(e, S.LinkDown):
                self.state = "attached"
                self._pending = []
                log_event(log, "link.down", device=self.device_id, reason=e.reason)
                await self._record_link_down()
            elif isinstance(e, S.Acked):
                await self._on_acked(e.seq)
            elif isinstance(e, S.Gap):
                log_event(
                    log,
                    "ratings.gap",
                    logging.WARNING,
                    device=self.device_id,
                    first=e.first,
                    last=e.last,
                )
                await self.db.run(
                    ratings.record_gap,
                    device_id=self.device_id,
                    first=e.first,
                    last=e.last,
                    now_ms=self.service.clock_ms(),
                )
            elif isinstance(e, S.Refused):
                self.refused[e.code] += 1
                log_event(log, "packet.refused", logging.INFO, device=self.device_id, code=e.code)
        await self._commit(session, batch)

    async def _commit(self, session: AgentSession, batch: list[Incoming]) -> None:
        """Store delivered RATINGs in one transaction, then acknowledge what is on disk.

        The session delivers each rating once; what could not be committed (the store
        failed, or the outbox is full under ``block``) stays in ``_uncommitted`` (at most
        TX_WINDOW: the device sends no more before an ACK) and is retried every
        COMMIT_RETRY_S until it is stored, or dropped at the next LinkUp, after which the
        device sends it again from the acknowledged seq.
        """
        if not batch and (self._retry_at is None or mono_ms() < self._retry_at):
            return  # nothing new, and no retry due
        pending = {r.seq: r for r in self._uncommitted}
        pending.update((r.seq, r) for r in batch)
        if not pending:
            return
        todo = [pending[seq] for seq in sorted(pending)]
        self._uncommitted = todo
        self._retry_at = mono_ms() + int(COMMIT_RETRY_S * 1000)
        try:
            result = await self.db.run(
                ratings.commit_ratings,
                self.service.hall,
                device_id=self.device_id,
                ratings=todo,
                now_ms=self.service.clock_ms(),
            )
        except Exception as e:  # the store failed: acknowledge nothing, retry
            self.commit_failures += 1
            self._log_limited(
                "ratings.commit_failed",
                logging.ERROR,
                error=type(e).__name__,
                detail=str(e)[:200],
            )
            return
        if result.blocked:
            self._log_limited(
                "ratings.blocked", logging.WARNING, n=result.blocked, reason="outbox full (block)"
            )
        if result.ack is not None:
            session.acknowledge(result.ack)  # only now: the commit returned
            self.ratings_acked += result.stored
            self._uncommitted = [r for r in todo if r.seq > result.ack]
        if not self._uncommitted:
            self._retry_at = None
        for seq, verdict in result.verdicts:
            log_event(
                log,
                "rating.stored",
                logging.DEBUG,
                device=self.device_id,
                seq=seq,
                binding=verdict.binding.value,
            )

    def _log_limited(self, event: str, level: int, **fields: Any) -> None:
        """Log an event at most once per LOG_REPEAT_S per link (a retry loop must not flood)."""
        now = mono_ms()
        if now - self._logged.get(event, -LOG_REPEAT_S * 1000) >= LOG_REPEAT_S * 1000:
            self._logged[event] = now
            log_event(log, event, level, device=self.device_id, **fields)

    async def _on_link_up(self, session: AgentSession, hello: Message) -> None:
        now = self.service.clock_ms()
        self._uncommitted = []  # the device resends them from the WELCOME's ack
        self._retry_at = None
        self._tick_base = TickBase(hello.session, hello.ticks, now)
        self.kind = hello.kind
        self.state = "open"
        await self.db.run(
            registry.link_up,
            device_id=self.device_id,
            kind=hello.kind,
            board=hello.board,
            firmware=hello.firmware,
            session=hello.session,
            outbox_depth=hello.outbox_depth,
            config_version=hello.config_version,
            committed_seq=hello.oldest - 1,
            link=self.LINK,
            now_ms=now,
        )
        dev = await self.db.run(registry.device, self.device_id)
        self._window_id = dev.window_id if dev is not None else None
        self._sent_invites = {}
        self._pending = [(m, None) for m in await self._state_messages()]
        log_event(
            log,
            "link.up",
            device=self.device_id,
            session=hello.session,
            firmware=hello.firmware,
            outbox_depth=hello.outbox_depth,
            window=self._window_id,
        )

    async def _state_messages(self) -> list[Message]:
        state = await self.service.window_state(self._window_id)
        return state_messages(
            state,
            kind=self.kind,
            policy=self.service.cfg.policy,
            heartbeat_s=self.service.cfg.heartbeat_s,
            now_ms=self.service.clock_ms(),
        )

    async def _on_status(self, m: Message) -> None:
        await self.db.run(
            registry.record_status,
            device_id=self.device_id,
            uptime_s=m.uptime_s,
            free_heap=m.free_heap,
            outbox_depth=m.outbox_depth,
            outbox_dropped=m.outbox_dropped,
            errors=list(m.errors),
            config_version=m.config_version,
            refused=dict(self.refused),
            now_ms=self.service.clock_ms(),
        )

    async def _on_acked(self, seq: int) -> None:
        delivered = [s for s in self._sent_invites if s <= seq]
        for s in delivered:
            invite_id = self._sent_invites.pop(s)
            await self.db.run(
                cases.mark_delivered, invite_id=invite_id, now_ms=self.service.clock_ms()
            )

    # ---------------------------------------------------------------- down stream
    def push(self, effect: Effect, state: WindowState | None) -> None:
        """Queue the messages for one case-API effect (called from the event loop)."""
        session = self._session
        if session is None or not session.is_open():
            return  # the next LinkUp sends the whole state
        if state is not None:
            self._window_id = state.window_id
        msgs = effect_messages(
            effect.kind,
            effect.invite_id,
            state,
            kind=self.kind,
            policy=self.service.cfg.policy,
            heartbeat_s=self.service.cfg.heartbeat_s,
            now_ms=self.service.clock_ms(),
        )
        if len(self._pending) + len(msgs) > PENDING_MAX:
            self._pending = []
            self._resend_state = True
        else:
            self._pending.extend((m, None) for m in msgs)
        if self._inbox is not None:
            self._inbox.put_nowait(None)  # wake the link task

    def _send_pending(self, session: AgentSession) -> None:
        if not session.is_open():
            self._pending = []
            return
        now = mono_ms()
        while self._pending and session.window_free() > 0:
            msg, _ = self._pending.pop(0)
            session.send(msg, now)
            if msg.type == M.INVITE:
                self._sent_invites[msg.seq] = msg.invite
