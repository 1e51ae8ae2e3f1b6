# ruff: noqa: UP031  (%-formatting: f-strings are a MicroPython build option)
"""Render every UI screen on the MicroPython unix port and dump the framebuffers.

    MICROPYPATH=<mpy build> micropython render_screens.py FONT FIXTURES OUT

FIXTURES is a JSON file the CPython test writes (QR matrices made with segno, texts at
their protocol limits). For each scenario this drives the real UI state machine into the
state, lets the real Screens draw on the real framebuf canvas, and the SimDisplay publishes
the bytes to OUT/<name>.hcpd. OUT/summary.json gets, per scenario, the screen name, the
pen's overflow count and where a QR was drawn; and the heap used by the UI and display
modules and by each canvas.
"""

import binascii
import gc
import json
import sys

gc.collect()
HEAP0 = gc.mem_alloc()

from firmware.display.font import Font  # noqa: E402
from firmware.display.sim import LAYOUT_HLSB, LAYOUT_VLSB, SimDisplay  # noqa: E402
from firmware.ui import machine as M  # noqa: E402
from firmware.ui.screens import make_screens  # noqa: E402
from protocol.messages import (  # noqa: E402
    CANCEL,
    CONFIG,
    DISPLAY,
    INVITE,
    KIND_COMBINED,
    KIND_EVALUATOR,
    KIND_QR,
    PAUSE,
    SELFTEST,
    Message,
)

FONT, FIXTURES, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
with open(FIXTURES) as _f:
    fx = json.load(_f)


def qr(name):
    q = fx["qr"][name]
    return {"size": q["size"], "bits": binascii.unhexlify(q["bits"])}


POLICY = {"invite_s": 10, "reason_s": 30, "thanks_s": 3, "heartbeat_s": 30, "reason_required": 0}
POLICY["reason_required"] = False


def config(window=None, staff=None, with_qr=False):
    return Message(
        CONFIG,
        seq=1,
        version=3,
        window=window or fx["window"],
        staff=staff or fx["staff"],
        qr=qr("static") if with_qr else None,
        reasons=fx["reasons"],
        policy=POLICY,
    )


def invite(n, item=None, q=None):
    return Message(INVITE, seq=2, invite=n, timeout_s=10, staff=None, qr=q, item=item)


class Scene:
    def __init__(self, kind, font):
        if kind == KIND_EVALUATOR:
            self.display = SimDisplay(128, 64, LAYOUT_VLSB, sink=self._sink)
        else:
            self.display = SimDisplay(240, 240, LAYOUT_HLSB, sink=self._sink)
        self.screens = make_screens(self.display, font, kind)
        self.frame = None
        self.ui = M.UI(self._record, self.screens.render, kind)
        self.t = 1000

    def _sink(self, header, buf):
        self.frame = bytes(header) + bytes(buf)

    def _record(self, level, reasons, flags, invite, ticks):
        pass

    def msg(self, m):
        self.ui.on_message(m, self.t)

    def after(self, ms):
        self.t += ms
        self.ui.tick(self.t)


def scene(kind, font, online=True, with_qr=False, cfg=None):
    s = Scene(kind, font)
    s.ui.start(s.t)
    s.msg(cfg or config(with_qr=with_qr))
    if online:
        s.ui.link_up(s.t)
    return s


def build(name, font):
    """Drive a fresh UI into the situation `name`; return the scene."""
    E, Q, C = KIND_EVALUATOR, KIND_QR, KIND_COMBINED
    if name == "idle":
        return scene(E, font)
    if name == "idle_paused":
        s = scene(E, font)
        s.msg(Message(PAUSE, seq=4, reason=fx["pause_reason"]))
        return s
    if name == "idle_offline":
        return scene(E, font, online=False)
    if name == "idle_limits":  # window label and staff name at their byte limits
        return scene(E, font, False, cfg=config(fx["window_max"], fx["staff_max"]))
    if name == "idle_missing_glyph":  # 喆 is not in GB2312: drawn as a box
        return scene(E, font, cfg=config(staff={"name": "王喆", "number": "B07", "title": None}))
    if name == "invite":
        s = scene(E, font)
        s.msg(invite(7, fx["item"]))
        s.after(2000)
        return s
    if name == "reason":
        s = scene(E, font)
        s.msg(invite(7))
        s.ui.press(4, s.t)
        s.after(6000)
        return s
    if name == "thanks":
        s = scene(E, font)
        s.msg(invite(7))
        s.ui.press(0, s.t)
        return s
    if name == "notice":
        s = scene(E, font)
        s.ui.press(2, s.t)
        return s
    if name == "notice_paused":
        s = scene(E, font)
        s.msg(Message(PAUSE, seq=4, reason=None))
        s.ui.press(2, s.t)
        return s
    if name == "message":
        s = scene(E, font)
        s.msg(Message(DISPLAY, seq=6, zh=fx["display_zh"], en=fx["display_en"], seconds=30))
        return s
    if name == "selftest_pattern":
        s = scene(E, font)
        s.msg(Message(SELFTEST, test=1, items=[2, 1]))
        return s
    if name == "selftest_buttons":
        s = scene(E, font)
        s.msg(Message(SELFTEST, test=1, items=[1]))
        s.ui.press(0, s.t)
        s.ui.press(2, s.t)
        return s
    if name == "qr_idle":
        return scene(Q, font, with_qr=True)
    if name == "qr_idle_offline":
        return scene(Q, font, online=False, with_qr=True)
    if name == "qr_invite":
        s = scene(Q, font, with_qr=True)
        s.msg(invite(8, fx["item"], qr("dynamic")))
        s.after(3000)
        return s
    if name == "qr_invite_v10":  # the largest QR the protocol carries
        s = scene(Q, font, with_qr=True)
        s.msg(invite(8, None, qr("v10")))
        return s
    if name == "qr_paused":
        s = scene(Q, font, with_qr=True)
        s.msg(Message(PAUSE, seq=4, reason=fx["pause_reason"]))
        return s
    if name == "qr_message":
        s = scene(Q, font, with_qr=True)
        s.msg(Message(DISPLAY, seq=6, zh=fx["display_zh"], en=fx["display_en"], seconds=30))
        return s
    if name == "combined_invite":
        s = scene(C, font, with_qr=True)
        s.msg(invite(9, fx["item"], qr("dynamic")))
        return s
    if name == "combined_reason":
        s = scene(C, font, with_qr=True)
        s.msg(invite(9, None, qr("dynamic")))
        s.ui.press(3, s.t)
        return s
    if name == "combined_thanks":
        s = scene(C, font, with_qr=True)
        s.msg(invite(9, None, qr("dynamic")))
        s.ui.press(1, s.t)
        return s
    if name == "combined_notice":
        s = scene(C, font, with_qr=True)
        s.ui.press(1, s.t)
        return s
    if name == "combined_idle_no_qr":
        return scene(C, font)
    if name == "combined_cancelled":
        s = scene(C, font, with_qr=True)
        s.msg(invite(9, None, qr("dynamic")))
        s.msg(Message(CANCEL, seq=3, invite=9))
        return s
    raise ValueError(name)


def main():
    gc.collect()
    heap_modules = gc.mem_alloc() - HEAP0
    font = Font(FONT)
    gc.collect()
    heap_font = gc.mem_alloc() - HEAP0 - heap_modules
    summary = {"heap_modules": heap_modules, "heap_font_reader": heap_font, "scenes": {}}
    for name in fx["scenes"]:
        gc.collect()
        before = gc.mem_alloc()
        s = build(name, font)
        gc.collect()
        entry = {
            "screen": s.ui.screen,
            "state": s.ui.state,
            "overflows": s.screens.pen.overflows,
            "frames": s.screens.frames,
            "canvas_bytes": len(s.display.buf),
            "heap_scene": gc.mem_alloc() - before,
            "qr": getattr(s.screens, "last_qr", None),
        }
        summary["scenes"][name] = entry
        with open("%s/%s.hcpd" % (OUT, name), "wb") as f:
            f.write(s.frame)
    font.close()
    with open(OUT + "/summary.json", "w") as f:
        json.dump(summary, f)
    print("rendered %d scenes" % len(fx["scenes"]))


main()
