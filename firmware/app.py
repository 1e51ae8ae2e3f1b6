"""The device application: hardware, UI machine, durable outbox and link session, wired.

Strategy (issue 3, DOMAIN.md): three asyncio tasks share one clock (hw/clock.py).

- `_inputs` every POLL_MS: debounced buttons -> UI, UI timers, and the watchdog feed (a
  stalled loop stops feeding it, and the board resets).
- `_link`: open the transport (backoff with jitter between attempts), run the session
  handshake, then pump: received packets in, events out (LinkUp/Down, Acked, messages),
  outbox records from the session's tx_next into its window, STATUS every heartbeat,
  packets out. Each wait is bounded (_LOOP_MAX_MS; the session's own deadlines).
- `_rx`: the transport's recv() into the session; a lost link ends the pump.

Rules kept here: a rating is thanked only after Outbox.add() returned (the UI calls
`_record` before it renders thanks, and a failed write raises through it, so no thanks);
the outbox record is acknowledged (deleted) only on the agent's ACK, which the agent sends
after its commit; the UI never shows the level; presses with the link down carry the
offline flag (the UI keeps `online`). Ratings are stamped with the best epoch estimate
(WELCOME / TIME) and with ticks and the boot session, so the agent can correct the time.

Provisioning mode (no key, docs/protocol.md §10): HELLO mode 1 with the factory id,
PROVISION -> identity and key stored -> PROVISIONED with the key check -> reboot.
"""

import asyncio
import gc

from micropython import const

from firmware.hw import clock
from firmware.hw.buttons import POLL_MS, Buttons
from protocol import messages as M
from protocol.messages import Message
from protocol.packet import PROVISIONING_KEY, key_check
from protocol.session import DEVICE, Acked, LinkDown, LinkSession, LinkUp, Refused

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_FIRMWARE = const("hcp-fw 0.3")
REBOOT = "reboot"
_U32 = const(0xFFFFFFFF)
_LOOP_MAX_MS = const(200)  # the pump wakes at least this often (timers, heartbeat)
_BACKOFF_MIN_MS = const(250)
_BACKOFF_MAX_MS = const(8000)  # a replugged cable is found within this
_PROVISIONED_LINGER_MS = const(300)  # let PROVISIONED leave the UART before the reboot
_HEARTBEAT_DEFAULT_S = const(30)
_LED_TEST_MS = const(500)
_BUZZ_TEST_MS = const(200)
# STATUS.errors order (docs/protocol.md §6): frame, tag, replay, message, flash, watchdog
_E_FRAME = const(0)
_E_AUTH = const(1)
_E_REPLAY = const(2)
_E_MSG = const(3)
_E_FLASH = const(4)
_E_WDT = const(5)


class App:
    def __init__(self, hw, device, identity, key, boot, outbox, root, font=None):
        self.hw = hw
        self.device = device
        self.identity = identity
        self.root = root
        self.boot = boot
        self.outbox = outbox
        self.kind = {"evaluator": M.KIND_EVALUATOR, "qr": M.KIND_QR}.get(
            device["kind"], M.KIND_COMBINED
        )
        self.mode = M.NORMAL if key else M.PROVISIONING
        self.device_id = identity["device_id"] if key else device["factory_id"]
        self.session = LinkSession(DEVICE, key or PROVISIONING_KEY, boot, mode=self.mode)
        self.transport = self._make_transport(key)
        self.epoch = clock.Epoch()
        self.errors = [0, 0, 0, 0, 0, 0]
        self.started = clock.now()
        self.ready_ms = None  # boot to the first screen (benchmarks)
        self.buttons = Buttons(getattr(hw, "n_buttons", 5))
        self._wake = asyncio.Event()
        self._lost = False
        self._status_at = 0
        self._pending_test = None  # (test, results) waiting for the UI's part
        self._led_off_at = 0
        self._tasks = []
        self._server = None
        self.provisioned = False
        self.fault = None  # set by the unix-sim control channel ("crash"): a bug, on purpose
        from firmware.ui.machine import UI

        self.screens = None
        render = self._render_none
        if font is not None:
            from firmware.ui.screens import make_screens

            display = getattr(hw, "display", None) or hw.make_display()  # main makes it early
            self.screens = make_screens(display, font, self.kind)
            render = self.screens.render
        self.ui = UI(
            self._record,
            render,
            kind=self.kind,
            buttons=tuple(device.get("buttons", (1, 2, 3, 4, 5))),
            selftest_done=self._ui_selftest_done,
        )

    def _render_none(self, screen, ui):
        pass

    def _make_transport(self, key):
        t = self.device["transport"]
        if t["type"] == "mqtt":
            if self.identity is None:
                from firmware.config import ConfigError

                # docs/protocol.md §10: a provisioning link is one the operator opens.
                raise ConfigError("/hcp/device.json: provisioning needs a serial transport")
            from firmware.transport.mqtt import MqttTransport  # lazily: serial never loads it

            return MqttTransport(t, self.identity["hall"], self.device_id, key, self._presence)
        from firmware.transport.serial import SerialTransport

        return SerialTransport(t)

    def _presence(self, online, conn):
        from protocol.topics import state_payload

        s = self.session
        s._ctr += 1  # the STATE packet takes a counter of this boot session, as any packet
        return state_payload(s._signer, online, self.boot, conn, s._ctr)

    # ---- running ----
    async def run(self, wdt_ms=8000):
        self.hw.wdt_start(wdt_ms)
        self._server = await self.hw.start(self)
        self.ui.start(clock.now())
        self.ready_ms = clock.now() - self.started
        self.hw.event("ready", ms=self.ready_ms, mode=self.mode, boot=self.boot)
        self._tasks.append(asyncio.create_task(self._inputs()))
        try:
            return await self._link()
        finally:
            for t in self._tasks:
                t.cancel()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()  # its socket closes in its own task

    async def _inputs(self):
        hw = self.hw
        ui = self.ui
        while True:
            now = clock.now()
            pressed = self.buttons.poll(hw.raw_buttons(), now)
            if pressed:
                for i in range(self.buttons.count):
                    if pressed & (1 << i):
                        self._press(i, now)
            ui.tick(now)
            if self._led_off_at and now >= self._led_off_at:
                self._led_off_at = 0
                hw.led(False)
            hw.wdt_feed()
            await asyncio.sleep_ms(POLL_MS)

    def _press(self, i, now):
        if self.mode != M.NORMAL and self.ui.state != "selftest":
            return  # a factory-new device records no ratings: it has no identity yet
        try:
            self.ui.press(i, now)
        except OSError:
            # Flash failed: not stored, so not thanked; the invite stays open.
            self.errors[_E_FLASH] += 1
            self.hw.event("record_failed", button=i)

    def _record(self, level, reasons, flags, invite, ticks):
        """The UI's record callback: durable before it returns (then the UI thanks)."""
        ticks &= _U32
        seq = self.outbox.add(
            invite, level, reasons, self.epoch.seconds(ticks), ticks, self.boot, flags
        )
        self.hw.event("thanked", seq=seq, level=level, flags=flags, boot=self.boot, ticks=ticks)
        self._wake.set()
        self._mark_storage()

    def _mark_storage(self):
        """Show the outbox's mark (near full / dropped) on the screen when it changes."""
        m = self.outbox.mark()
        if m != self.ui.storage_mark:
            self.ui.storage_mark = m
            self.ui.start(clock.now())  # a redraw of the current screen

    async def _link(self):
        backoff = _BACKOFF_MIN_MS
        t = self.transport
        while True:
            try:
                await asyncio.wait_for_ms(t.connect(), 10000)
            except (OSError, asyncio.TimeoutError):  # noqa: UP041 (MicroPython's own class)
                await asyncio.sleep_ms(backoff + _jitter(backoff))
                backoff = min(backoff * 2, _BACKOFF_MAX_MS)
                continue
            backoff = _BACKOFF_MIN_MS
            self._lost = False
            self.session.connect(clock.now(), self._hello)
            rx = asyncio.create_task(self._rx())
            try:
                if await self._pump() == REBOOT:
                    return REBOOT
            except OSError:
                pass
            finally:
                rx.cancel()
                now = clock.now()
                self.session.close(now)
                self._events(now)
                self.session.packets_to_send()  # nowhere to send them
                try:  # noqa: SIM105 (MicroPython has no contextlib)
                    await t.close()
                except OSError:
                    pass
            await asyncio.sleep_ms(backoff + _jitter(backoff))

    async def _rx(self):
        try:
            while True:
                p = await self.transport.recv()
                self.session.receive(p, clock.now())
                self._wake.set()
        except OSError:
            self._lost = True
            self._wake.set()

    async def _pump(self):
        s = self.session
        while True:
            self._wake.clear()
            if self._lost:
                raise OSError("link lost")
            if self.fault is not None:
                raise RuntimeError(self.fault)  # the simulator's fault injection
            now = clock.now()
            s.poll(now)
            self._events(now)
            self._feed(now)
            self._heartbeat(now)
            for p in s.packets_to_send():
                await asyncio.wait_for_ms(self.transport.send(p), 5000)
            if self.provisioned:
                await asyncio.sleep_ms(_PROVISIONED_LINGER_MS)
                return REBOOT
            wait = _LOOP_MAX_MS
            dl = s.next_deadline()
            if dl is not None and dl - now < wait:
                wait = max(dl - now, 1)
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                await asyncio.wait_for_ms(self._wake.wait(), wait)
            except asyncio.TimeoutError:  # noqa: UP041 (MicroPython's own class)
                pass

    # ---- the session's side ----
    def _hello(self):
        o = self.outbox
        return Message(
            M.HELLO,
            device_id=self.device_id,
            kind=self.kind,
            board=self.device["board"][:24],
            firmware=_FIRMWARE,
            mode=self.mode,
            config_version=self.ui.config_version,
            outbox_depth=o.depth(),
            oldest=o.oldest(),
            next=o.next_seq(),
            ticks=clock.now() & _U32,
        )

    def _feed(self, now):
        s = self.session
        if not s.is_open() or self.mode != M.NORMAL:
            return
        free = s.window_free()
        if free <= 0 or s.tx_next >= self.outbox.next_seq():
            return
        for r in self.outbox.records(s.tx_next, free):
            s.send(
                Message(
                    M.RATING, seq=r[0], invite=r[1], level=r[2], reasons=r[3],
                    time=r[4], ticks=r[5], boot=r[6], flags=r[7],
                ),
                now,
            )  # fmt: skip
            self.hw.event("sent", seq=r[0], ms=now)

    def _heartbeat(self, now):
        s = self.session
        if not s.is_open() or now < self._status_at:
            return
        hb = s.peer.heartbeat_s if s.peer is not None else 0
        self._status_at = now + 1000 * (hb or _HEARTBEAT_DEFAULT_S)
        dec = getattr(self.transport, "decoder", None)
        self.errors[_E_FRAME] = sum(dec.dropped.values()) if dec is not None else 0
        self.errors[_E_FLASH] = max(self.errors[_E_FLASH], self.outbox.flash_errors)
        s.send(
            Message(
                M.STATUS,
                uptime_s=(now - self.started) // 1000,
                ticks=now & _U32,
                free_heap=self.hw.free_heap(),
                outbox_depth=self.outbox.depth(),
                outbox_dropped=self.outbox.dropped(),
                errors=self.errors,
                link={"rssi": None, "rx_dropped": getattr(self.transport, "tx_dropped", 0)},
                ui=self.ui.code(),
                config_version=self.ui.config_version,
            ),
            now,
        )

    def _events(self, now):
        s = self.session
        ui = self.ui
        while True:
            e = s.next_event()
            if e is None:
                return
            if isinstance(e, Message):
                self._message(e, now)
            elif isinstance(e, Acked):
                self.outbox.ack(e.seq)
                self.hw.event("acked", seq=e.seq)
                self._mark_storage()
            elif isinstance(e, LinkUp):
                w = e.peer
                if w.time_ms:
                    self.epoch.set(w.time_ms, now)
                self.outbox.ack(w.ack)
                self._status_at = now  # a first STATUS right away
                ui.link_up(now)
                self.hw.event("link", up=True)
            elif isinstance(e, LinkDown):
                ui.link_down(now)
                self.hw.event("link", up=False, reason=e.reason)
            elif isinstance(e, Refused):
                c = e.code
                if c.startswith("auth."):
                    self.errors[_E_AUTH] += 1
                elif c.startswith("replay."):
                    self.errors[_E_REPLAY] += 1
                else:
                    self.errors[_E_MSG] += 1

    def _message(self, m, now):
        t = m.type
        if t == M.TIME:
            self.epoch.set(m.time_ms, now)
        elif t == M.ERROR:
            self.hw.event("error", code=m.code, detail=m.detail)
        elif t == M.SELFTEST:
            self._selftest(m, now)
        elif t == M.PROVISION:
            self._provision(m)
        else:
            self.ui.on_message(m, now)  # CONFIG INVITE CANCEL PAUSE RESUME DISPLAY
            self.session.acknowledge(m.seq)  # applied: now it may be acknowledged

    # ---- provisioning (docs/protocol.md §10) ----
    def _provision(self, m):
        from firmware import config

        config.store_identity(self.root, m)
        self.session.send(
            Message(M.PROVISIONED, device_id=m.device_id, check=key_check(bytes(m.key))),
            clock.now(),
        )
        self.provisioned = True
        self.hw.event("provisioned", device_id=m.device_id)

    # ---- selftest (the UI runs the display and button items) ----
    def _selftest(self, m, now):
        results = []
        for item in m.items:
            if item == M.TEST_LED:
                self.hw.led(True)
                self._led_off_at = now + _LED_TEST_MS
                results.append({"item": item, "ok": True, "detail": "led on %d ms" % _LED_TEST_MS})
            elif item == M.TEST_BUZZER:
                self.hw.buzz(_BUZZ_TEST_MS)
                results.append({"item": item, "ok": True, "detail": "beep %d ms" % _BUZZ_TEST_MS})
            elif item == M.TEST_FLASH:
                results.append(self._flash_test())
            elif item == M.TEST_LINK:
                ok = self.session.is_open()
                results.append({"item": item, "ok": ok, "detail": None if ok else "link down"})
        if M.TEST_DISPLAY in m.items or M.TEST_BUTTONS in m.items:
            self._pending_test = (m.test, results)
            self.ui.on_message(m, now)  # reports through _ui_selftest_done
        else:
            self._send_result(m.test, results)

    def _ui_selftest_done(self, test, ui_results):
        results = []
        if self._pending_test is not None and self._pending_test[0] == test:
            results = self._pending_test[1]
        self._pending_test = None
        self._send_result(test, ui_results + results)

    def _send_result(self, test, results):
        if self.session.is_open():
            self.session.send(Message(M.SELFTEST_RESULT, test=test, results=results), clock.now())
            self._wake.set()
        self.hw.event("selftest", test=test, results=results)

    def _flash_test(self):
        import os

        path = self.root + "/hcp/selftest.tmp"
        data = os.urandom(256)
        try:
            with open(path, "wb") as f:
                f.write(data)
            with open(path, "rb") as f:
                back = f.read()
            os.remove(path)
        except OSError as e:
            return {"item": M.TEST_FLASH, "ok": False, "detail": "flash error %s" % e}
        ok = back == data
        return {"item": M.TEST_FLASH, "ok": ok, "detail": None if ok else "read back differs"}

    # ---- what the control channel reports (unix-sim) ----
    def snapshot(self):
        o = self.outbox
        ui = self.ui
        return {
            "mode": "normal" if self.mode == M.NORMAL else "provisioning",
            "device_id": self.device_id,
            "boot": self.boot,
            "ui": ui.state,
            "screen": ui.screen,
            "ui_code": ui.code(),
            "online": ui.online,
            "paused": ui.paused,
            "link": self.session.state,
            "outbox_depth": o.depth(),
            "oldest": o.oldest(),
            "next_seq": o.next_seq(),
            "dropped": o.dropped(),
            "mark": o.mark(),
            "time": self.epoch.seconds(clock.now()),
            "errors": self.errors,
            "presses": ui.presses,
            "config_version": ui.config_version,
            "free_heap": gc.mem_free(),
        }


def _jitter(ms):
    import random

    return random.getrandbits(16) % (ms // 4 + 1)
