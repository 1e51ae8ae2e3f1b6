"""One serial device link: open the port, run the protocol, reattach when it comes back.

Strategy (one asyncio task per configured link, one reader thread per open port):

- **Attach loop.** ``run()`` looks the device up in the store; a device without a key (or
  blocked by an operator) is *quarantined*: reported once, its port left alone, rechecked
  every QUARANTINE_RECHECK_S so ``hcp agent add-device`` takes effect without a restart (and
  a device quarantined while attached is cut off within BLOCK_CHECK_S). Then
  it opens the port (a device path or a pyserial URL: rfc2217://, socket://) and runs the
  link until the port fails; a port that is missing or vanishes is retried with backoff
  PORT_RETRY_MIN_S … PORT_RETRY_MAX_S, forever. Every attachment is a fresh LinkSession
  with a fresh agent session number from the store (the device's replay window refuses a
  session twice) and the device's persisted replay floor and committed seq.
- **Sans-IO core.** Bytes from the reader thread go through protocol.framing.FrameDecoder
  into the session; the task then handles the session's events, sends what the session
  wants sent, and sleeps until more bytes arrive, a push from the case API, or the
  session's next timer. All session calls happen on this task, never concurrently.
- Everything above the bytes (durable acks, state on LinkUp, refused-packet counters, press
  times) is edge_agent.device_session.SessionLink, shared with the MQTT links; refused
  frames add the framing codes (frame.*) to its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import serial

from edge_agent.config import SerialLink
from edge_agent.device_session import (
    BLOCK_CHECK_S,
    IDLE_WAKE_S,
    QUARANTINE_RECHECK_S,
    SessionLink,
    TickBase,
    mono_ms,
    press_time,
)
from edge_agent.logs import log_event
from edge_agent.service import HallService
from edge_agent.wire import AgentSession, Decoder, frame

__all__ = ["DeviceLink", "TickBase", "press_time"]

log = logging.getLogger("hcp.agent.link")

READ_TIMEOUT_S = 0.05  # reader thread wakes this often to notice a stop request
WRITE_TIMEOUT_S = 2.0  # a port that takes longer to accept bytes is stuck: drop the write
PORT_RETRY_MIN_S = 0.2  # a replugged USB adapter is back within a second or two
PORT_RETRY_MAX_S = 5.0  # polling a missing port costs one open() call


class _PortLost(Exception):
    pass


class DeviceLink(SessionLink):
    """The agent's side of one configured serial link."""

    LINK = "serial"

    def __init__(self, service: HallService, cfg: SerialLink) -> None:
        self.cfg = cfg
        super().__init__(service, cfg.device)
        self.state = "starting"  # quarantined, waiting_port, attached, open

    # ---------------------------------------------------------------- attach loop
    async def run(self) -> None:
        backoff = PORT_RETRY_MIN_S
        await self._load_counters()
        while True:
            if await self._check_quarantine():
                await asyncio.sleep(QUARANTINE_RECHECK_S)
                continue
            try:
                port = await asyncio.to_thread(self._open)
            except (serial.SerialException, OSError, ValueError) as e:
                if self.state != "waiting_port":
                    log_event(
                        log,
                        "port.unavailable",
                        logging.WARNING,
                        device=self.device_id,
                        port=self.cfg.port,
                        error=type(e).__name__,
                        detail=str(e)[:200],
                    )
                self.state = "waiting_port"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, PORT_RETRY_MAX_S)
                continue
            backoff = PORT_RETRY_MIN_S
            self.attachments += 1
            log_event(log, "port.attached", device=self.device_id, port=self.cfg.port)
            try:
                await self._attached(port)
            except _PortLost as e:
                log_event(
                    log,
                    "port.lost",
                    logging.WARNING,
                    device=self.device_id,
                    port=self.cfg.port,
                    detail=str(e)[:200],
                )
            except Exception:  # a fault in this link must not stop it, nor the agent
                self.crashes += 1
                log.exception("link.crashed", extra={"fields": {"device": self.device_id}})
                await asyncio.sleep(backoff)
            finally:
                await self._detach(port)

    def _open(self) -> serial.SerialBase:
        port = serial.serial_for_url(
            self.cfg.port,
            baudrate=self.cfg.baud,
            timeout=READ_TIMEOUT_S,
            write_timeout=WRITE_TIMEOUT_S,
            do_not_open=True,
        )
        if not self.cfg.port.startswith(("rfc2217://", "socket://", "loop://")):
            port.exclusive = True  # two agents on one device would garble both links
        port.open()
        return port

    async def _detach(self, port: serial.SerialBase) -> None:
        self._inbox = None
        self.state = "waiting_port"
        with contextlib.suppress(Exception):
            await asyncio.to_thread(port.close)
        await self._link_down("port closed")

    # ---------------------------------------------------------------- one attachment
    async def _attached(self, port: serial.SerialBase) -> None:
        session = await self._new_session()
        if session is None:
            raise _PortLost("the device lost its key while attaching")
        check_at = mono_ms() + int(BLOCK_CHECK_S * 1000)
        decoder = Decoder()
        seen_frames: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._inbox = inbox
        stop = threading.Event()
        reader = threading.Thread(
            target=_read_port,
            args=(port, loop, inbox, stop),
            name=f"hcp-serial-{self.device_id}",
            daemon=True,
        )
        reader.start()
        try:
            while True:
                now = mono_ms()
                if now >= check_at:
                    check_at = now + int(BLOCK_CHECK_S * 1000)
                    if await self._cut_if_quarantined(session, now):
                        return
                deadlines = [t for t in (session.next_deadline(), self._retry_at) if t is not None]
                timeout = IDLE_WAKE_S if not deadlines else (min(deadlines) - now) / 1000
                timeout = min(max(timeout, 0.0), IDLE_WAKE_S)
                items: list[bytes | BaseException | None] = []
                with contextlib.suppress(TimeoutError):
                    items.append(await asyncio.wait_for(inbox.get(), timeout))
                while not inbox.empty():
                    items.append(inbox.get_nowait())
                now = mono_ms()
                for item in items:
                    if isinstance(item, BaseException):
                        raise _PortLost(f"{type(item).__name__}: {item}")
                    if item:
                        decoder.feed(item)
                for packet in decoder.packets():
                    session.receive(packet, now)
                    self.last_seen_ms = self.service.clock_ms()
                self._count_frames(decoder.dropped, seen_frames)
                session.poll(now)
                await self._handle_events(session)
                if self._resend_state and session.is_open():
                    self._resend_state = False
                    self._pending = [(m, None) for m in await self._state_messages()]
                self._send_pending(session)
                await self._flush(port, session)
        finally:
            stop.set()
            await asyncio.to_thread(reader.join, 1.0)

    def _count_frames(self, dropped: dict[str, int], seen: dict[str, int]) -> None:
        for code, n in dropped.items():
            new = n - seen.get(code, 0)
            if new:
                self.refused[code] += new
                seen[code] = n
                log_event(
                    log, "frame.refused", logging.INFO, device=self.device_id, code=code, n=new
                )

    async def _flush(self, port: serial.SerialBase, session: AgentSession) -> None:
        packets = session.packets_to_send()
        if not packets:
            return
        data = b"".join(frame(p) for p in packets)
        try:
            await asyncio.to_thread(port.write, data)
        except serial.SerialTimeoutException:
            self.refused["write_timeout"] += 1  # the session retransmits what mattered
        except (serial.SerialException, OSError) as e:
            raise _PortLost(f"write: {type(e).__name__}: {e}") from e

    def snapshot(self) -> dict[str, Any]:
        """For /healthz and /metrics."""
        return {"port": self.cfg.port, **super().snapshot()}


def _read_port(
    port: serial.SerialBase,
    loop: asyncio.AbstractEventLoop,
    inbox: asyncio.Queue[bytes | BaseException | None],
    stop: threading.Event,
) -> None:
    """Reader thread: blocking reads with a short timeout, handed to the loop."""
    while not stop.is_set():
        try:
            # in_waiting lives on the concrete port classes, not on SerialBase.
            waiting: int = getattr(port, "in_waiting", 0)
            data = port.read(max(1, waiting))
        except BaseException as e:  # the port went away: tell the link task and end
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(inbox.put_nowait, e)
            return
        if data:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, bytes(data))
            except RuntimeError:  # the loop is closed: the agent is stopping
                return
