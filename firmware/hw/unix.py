"""The unix-sim hardware: what the simulator (and the tests) provide on the unix port.

Buttons, display, LED and buzzer live behind a local control channel: newline-delimited
JSON over TCP on 127.0.0.1 (docs/technician.md "The control channel"). One request per
line, one answer per request ({"ok": true, ...} or {"ok": false, "error": ...}); after
{"cmd": "subscribe"} the connection also receives event lines ({"event": ...}) such as
"thanked" with the seq of every rating the device thanked someone for. The protocol link is
the serial transport on a pty path (or MQTT); flash is the LittleFS image the unix ROM
mounted (firmware/unix_rom.py). The watchdog is a thread that kills the process if the
loop stops feeding it, as a hardware watchdog resets a board.
"""

import asyncio
import binascii
import gc
import json
import os
import sys
import time

from micropython import const

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_CONTROL_HOST = const("127.0.0.1")
_THANKED_LOG = const(64)  # recent thanked ratings kept for {"cmd": "thanked"}
_FRAME_PIECE = const(240)  # canvas bytes per base64 piece (a multiple of 3: no padding inside)
_LINE_MAX = const(512)  # a request longer than this is refused (the channel is local and small)


class UnixHardware:
    def __init__(self, profile, kind, cfg):
        self._display_spec = profile["displays"][kind]  # not the whole profile: ~7 KB
        self.kind = kind
        self.n_buttons = 0 if kind == "qr" else len(profile["buttons"]["pins"])
        self._raw = 0
        self.led_on = False
        self.buzz_until = 0
        self.buzzes = 0
        self.app = None
        self.display = None
        self.frame = None  # (header, canvas) of the last frame shown
        ctl = cfg.get("control") or {}
        env = os.getenv("HCP_CONTROL_PORT")
        self.control_port = int(env) if env else ctl.get("port", 0)
        self._subs = []
        self.thanked = []  # (seq, level, flags, boot, ticks): a tuple is 64 B, the dict ~130 B

    # ---- display ----
    def make_display(self):
        from firmware.display.sim import LAYOUT_HLSB, LAYOUT_VLSB, SimDisplay

        d = self._display_spec
        layout = LAYOUT_VLSB if d["driver"] == "ssd1306" else LAYOUT_HLSB
        self.display = SimDisplay(d["width"], d["height"], layout, sink=self._sink)
        return self.display

    def _sink(self, header, canvas):
        self.frame = (header, canvas)
        self.event("frame", n=self.display.frames)

    # ---- buttons, LED, buzzer ----
    def raw_buttons(self):
        return self._raw

    def led(self, on):
        self.led_on = bool(on)

    def buzz(self, ms):
        self.buzzes += 1
        self.buzz_until = time.ticks_add(time.ticks_ms(), ms)

    def buzzing(self):
        return time.ticks_diff(self.buzz_until, time.ticks_ms()) > 0

    def free_heap(self):
        return gc.mem_free()

    # ---- watchdog: a thread that kills the process when the loop stops feeding ----
    def wdt_start(self, ms):
        global _wdt_ms
        wdt_feed()
        if not _wdt_ms:  # one per process, as the hardware's (an in-process reboot keeps it)
            import _thread

            _wdt_ms = ms
            _thread.start_new_thread(_watch, ())

    def wdt_feed(self):
        wdt_feed()

    # ---- the control channel ----
    async def start(self, app):
        self.app = app
        server = await asyncio.start_server(self._client, _CONTROL_HOST, self.control_port)
        # The unix port has no getsockname on the server: an ephemeral port is not
        # reported, so tests and the simulator give one (HCP_CONTROL_PORT).
        print('{"event": "control", "port": %d}' % self.control_port)
        return server

    def event(self, name, **fields):
        if name == "thanked":
            f = fields
            self.thanked.append((f["seq"], f["level"], f["flags"], f["boot"], f["ticks"]))
            if len(self.thanked) > _THANKED_LOG:
                self.thanked.pop(0)
        if not self._subs:
            return
        fields["event"] = name
        line = json.dumps(fields) + "\n"
        for w in self._subs:
            try:  # noqa: SIM105 (MicroPython has no contextlib)
                w.write(line)  # buffered; drained by the client task
            except OSError:
                pass

    async def _client(self, r, w):
        subscribed = False
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                try:
                    req = json.loads(line) if len(line) <= _LINE_MAX else None
                    if not isinstance(req, dict):
                        raise ValueError("a request is one JSON object per line, <= 512 B")
                    if req.get("cmd") == "subscribe" and not subscribed:
                        subscribed = True
                        self._subs.append(w)
                        out = {"ok": True}
                    elif req.get("cmd") == "frame" and self.frame is not None:
                        await self._send_frame(w)
                        continue
                    elif req.get("cmd") == "thanked":
                        await self._send_thanked(w)
                        continue
                    else:
                        out = await self._handle(req)
                except (ValueError, KeyError, TypeError) as e:
                    out = {"ok": False, "error": str(e)}
                w.write(json.dumps(out) + "\n")
                await w.drain()
        except OSError:
            pass
        finally:
            if subscribed:
                self._subs.remove(w)
            w.close()

    async def _send_frame(self, w):
        # Streamed in base64 pieces: a QR unit's canvas as one JSON string would take
        # ~30 KB of heap at once (base64, str, JSON) on top of the app.
        h, canvas = self.frame
        d = self.display
        head = {
            "ok": True,
            "width": d.width,
            "height": d.height,
            "layout": h[5],
            "ink": (h[10] << 8) | h[11],
            "paper": (h[12] << 8) | h[13],
            "frame": d.frames,
        }
        w.write(json.dumps(head)[:-1] + ', "data": "')
        mv = memoryview(canvas)
        for i in range(0, len(canvas), _FRAME_PIECE):
            w.write(binascii.b2a_base64(mv[i : i + _FRAME_PIECE], newline=False))
            await w.drain()
        w.write('"}\n')
        await w.drain()

    async def _send_thanked(self, w):
        # One entry at a time, as dicts only here: the whole log as one JSON string would
        # take ~5 KB of heap at once.
        w.write('{"ok": true, "thanked": [')
        sep = ""
        for seq, level, flags, boot, ticks in self.thanked:
            entry = {"seq": seq, "level": level, "flags": flags, "boot": boot, "ticks": ticks}
            w.write(sep + json.dumps(entry))
            sep = ", "
            await w.drain()
        w.write("]}\n")
        await w.drain()

    async def _handle(self, req):
        cmd = req.get("cmd")
        if cmd in ("press", "release", "click"):
            b = req["button"]
            if not isinstance(b, int) or not 0 <= b < self.n_buttons:
                raise ValueError("button %r: this device has %d buttons" % (b, self.n_buttons))
            if cmd == "release":
                self._raw &= ~(1 << b)
            else:
                self._raw |= 1 << b
            if cmd == "click":
                hold = req.get("ms", 80)
                if not isinstance(hold, int) or not 0 < hold <= 5000:
                    raise ValueError("ms %r not in 1..5000" % (hold,))
                await asyncio.sleep_ms(hold)
                self._raw &= ~(1 << b)
            return {"ok": True}
        if cmd == "state":
            out = self.app.snapshot()
            out["ok"] = True
            out["led"] = self.led_on
            out["buzzer"] = self.buzzing()
            out["buzzes"] = self.buzzes
            bd = sys.modules.get("firmware.storage.blockdev")
            dev = getattr(bd, "MOUNTED", None) if bd is not None else None
            if dev is not None:  # flash wear so far (benchmarks)
                out["flash_programmed"] = dev.programmed
                out["flash_erased"] = dev.erased
            return out
        if cmd == "frame":
            return {"ok": False, "error": "no frame shown yet"}
        if cmd == "stall":  # fault injection: block the loop (the watchdog must fire)
            ms = req["ms"]
            if not isinstance(ms, int) or not 0 < ms <= 60000:
                raise ValueError("ms %r not in 1..60000" % (ms,))
            time.sleep_ms(ms)
            return {"ok": True}
        if cmd == "crash":  # fault injection: an exception in the app's loop (main reboots)
            self.app.fault = "injected by the control channel"
            self.app._wake.set()
            return {"ok": True}
        if cmd == "skew":  # fault injection: the clock jumps ahead (the simulator's skew)
            ms = req["ms"]
            if not isinstance(ms, int) or not 0 < ms <= 86400000:
                raise ValueError("ms %r not in 1..86400000" % (ms,))
            from firmware.hw import clock

            clock.advance(ms)
            return {"ok": True, "ticks": clock.now()}
        if cmd == "heap":  # live heap after a collection (benchmarks)
            gc.collect()
            return {"ok": True, "alloc": gc.mem_alloc(), "free": gc.mem_free()}
        raise ValueError("unknown cmd %r" % (cmd,))


_wdt_ms = 0
_fed = 0


def wdt_feed():
    global _fed
    _fed = time.ticks_ms()


def _watch():
    while True:
        time.sleep_ms(_wdt_ms // 4)
        if time.ticks_diff(time.ticks_ms(), _fed) > _wdt_ms:
            print('{"event": "watchdog", "stalled_ms": %d}' % _wdt_ms)
            # The shell's parent is this process: the unix port has no os.kill.
            os.system("kill -9 $PPID")
