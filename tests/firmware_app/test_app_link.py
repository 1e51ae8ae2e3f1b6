"""The device app on the real MicroPython unix port, over a real pty, against a CPython
agent-side LinkSession: handshake, CONFIG, INVITE -> press -> RATING -> ACK -> thanks,
the rating flags (repeat, unsolicited, paused, offline), the reason screen, TIME, link
loss and recovery with the outbox drained afterwards, and the selftest."""

from __future__ import annotations

import base64
import struct
import time
from pathlib import Path

from protocol import messages as M
from protocol.messages import Message
from tests.firmware_app.conftest import Rig
from tests.firmware_app.device import ROOT, config_msg
from tests.firmware_ui.test_screens import to_png

SHOTS = ROOT / "build" / "screens"  # the app's real screens, to look at (not committed)


def invite(n: int, timeout_s: int = 10) -> Message:
    return Message(M.INVITE, invite=n, timeout_s=timeout_s, staff=None, qr=None, item="身份证换领")


def configured(rig: Rig, **policy: object) -> Rig:
    rig.up()
    rig.agent.send(config_msg(**policy))
    rig.until(lambda: rig.state()["config_version"] == 7)
    return rig


def frame(rig: Rig, name: str | None = None) -> str:
    """The canvas on the device's screen (base64); with name, also a PNG to look at."""
    f = rig.ctl("frame")
    assert f["ok"], f
    if name is not None:
        canvas = base64.b64decode(f["data"])
        assert len(canvas) == f["width"] * f["height"] // 8 and any(canvas)
        head = b"HCPD" + bytes([1, f["layout"]])
        head += struct.pack(">HHHHIH", f["width"], f["height"], f["ink"], f["paper"], 0, 0)
        SHOTS.mkdir(parents=True, exist_ok=True)
        dump = SHOTS / f"app_{name}.bin"
        dump.write_bytes(head + canvas)
        to_png(dump, SHOTS / f"app_{name}.png")
        dump.unlink()
    return str(f["data"])


def thanks_frame(rig: Rig, name: str | None = None) -> str:
    """The thanks screen's canvas, read while the device still shows it (thanks_s is 1 s)."""
    for _ in range(20):
        if rig.state()["ui"] == "thanks":
            f = frame(rig, name)
            if rig.state()["ui"] == "thanks":
                return f
    raise AssertionError("the thanks screen was not caught")


def test_invite_press_rating_ack_thanks(rig: Rig) -> None:
    configured(rig)
    hello = rig.agent.hellos[-1]
    assert (hello.device_id, hello.kind, hello.mode, hello.next) == ("EV-0001", 1, 0, 1)
    s = rig.state()
    assert s["online"] and s["ui"] == "idle" and s["link"] == "open" and s["time"] > 1.7e9
    rig.agent.send(invite(77))
    rig.until(lambda: rig.state()["ui"] == "invite")
    frame(rig, "invite")
    assert rig.ctl("click", button=1)["ok"]
    r = rig.until(lambda: rig.agent.ratings.get(1))
    assert (r.invite, r.level, r.reasons, r.flags, r.boot) == (77, 2, [], 0, 1)
    assert abs(r.time - time.time()) < 5  # stamped from the WELCOME's clock
    thanks_a = thanks_frame(rig, "thanks")
    st = rig.until(lambda: (s := rig.state())["outbox_depth"] == 0 and s)
    assert st["next_seq"] == 2
    status = rig.until(lambda: (m := rig.agent.last(M.STATUS)) and m.config_version == 7 and m)
    assert status.free_heap > 0 and status.errors[:4] == [0, 0, 0, 0] and status.ui < 0x20
    assert [t["seq"] for t in rig.ctl("thanked")["thanked"]] == [1]
    # Another invite, a different level: the thanks screen is the same picture (the level
    # is never shown).
    rig.agent.send(invite(78))
    rig.until(lambda: rig.state()["ui"] == "invite")
    rig.ctl("click", button=0)
    rig.until(lambda: rig.agent.ratings.get(2))
    assert thanks_frame(rig) == thanks_a
    assert rig.agent.ratings[2].level == 1


def test_flags_repeat_unsolicited_paused_and_reason(rig: Rig) -> None:
    configured(rig)
    ag = rig.agent
    rig.ctl("click", button=2)  # no invite: unsolicited, and the notice screen
    r1 = rig.until(lambda: ag.ratings.get(1))
    assert r1.flags == M.FLAG_UNSOLICITED and r1.invite is None
    assert rig.state()["ui"] == "notice"
    ag.send(invite(80))
    rig.until(lambda: rig.state()["ui"] == "invite")
    rig.ctl("click", button=0)
    rig.until(lambda: ag.ratings.get(2))
    time.sleep(0.1)
    rig.ctl("click", button=4)  # a second press in the same invite: a repeat
    r3 = rig.until(lambda: ag.ratings.get(3))
    assert (r3.flags, r3.invite, r3.level) == (M.FLAG_REPEAT, 80, 5)
    ag.send(Message(M.PAUSE, reason="午休"))
    rig.until(lambda: rig.state()["paused"])
    ag.send(Message(M.RESUME))
    rig.until(lambda: not rig.state()["paused"])
    ag.send(Message(M.PAUSE, reason=None))
    rig.until(lambda: rig.state()["paused"])
    rig.until(lambda: rig.state()["ui"] == "idle", 10)
    rig.ctl("click", button=1)
    r4 = rig.until(lambda: ag.ratings.get(4))
    # still inside invite 80's window: a repeat, pressed while paused
    assert (r4.flags, r4.invite) == (M.FLAG_PAUSED | M.FLAG_REPEAT, 80)
    ag.send(Message(M.RESUME))
    # 差评 -> reason screen -> pick reason 1 (button ①)
    rig.until(lambda: rig.state()["ui"] == "idle", 10)
    ag.send(invite(81))
    rig.until(lambda: rig.state()["ui"] == "invite")
    rig.ctl("click", button=3)  # level 4
    rig.until(lambda: rig.state()["ui"] == "reason")
    assert 5 not in ag.ratings  # nothing recorded before the reason is chosen
    rig.ctl("click", button=1)
    r5 = rig.until(lambda: ag.ratings.get(5))
    assert (r5.level, r5.reasons, r5.flags, r5.invite) == (4, [502], 0, 81)
    # 差评 whose reason screen times out (reason_s 5 s in config_msg)
    ag.send(invite(82))
    rig.until(lambda: rig.state()["ui"] == "invite")
    rig.ctl("click", button=4)
    r6 = rig.until(lambda: ag.ratings.get(6), 15)
    assert (r6.level, r6.reasons, r6.flags) == (5, [], M.FLAG_REASON_TIMEOUT)
    assert not ag.duplicates_differ


def test_time_message_stamps_ratings(rig: Rig) -> None:
    configured(rig)
    epoch_ms = 1_800_000_000_000
    rig.agent.send(Message(M.TIME, time_ms=epoch_ms))
    rig.until(lambda: abs(rig.state()["time"] - epoch_ms // 1000) < 3)
    rig.ctl("click", button=0)
    r = rig.until(lambda: rig.agent.ratings.get(1))
    assert abs(r.time - epoch_ms // 1000) < 3 and r.ticks > 0


def test_link_loss_offline_flag_and_outbox_drains_after_reconnect(rig: Rig) -> None:
    configured(rig)
    rig.pty.unplug()  # the cable is pulled: the device's port fails
    rig.agent.fd = -1
    st = rig.until(lambda: (s := rig.state())["link"] != "open" and s)
    assert not st["online"] and st["ui_code"] & 0x20  # the offline mark
    offline = frame(rig, "idle_offline")
    for b in (0, 1, 2):
        rig.ctl("click", button=b)
        time.sleep(0.15)
    st = rig.state()
    assert st["outbox_depth"] == 3 and st["next_seq"] == 4
    rig.pty.plug()  # back: a new pty at the same path
    rig.agent.fd = rig.pty.master
    rig.until(lambda: len(rig.agent.ratings) == 3, 20)
    assert all(r.flags & M.FLAG_OFFLINE for r in rig.agent.ratings.values())
    rig.until(lambda: (s := rig.state())["online"] and s["outbox_depth"] == 0)
    assert len(rig.agent.hellos) == 2 and rig.agent.hellos[-1].outbox_depth == 3
    assert frame(rig) != offline


def test_silent_agent_is_link_down_then_resync(rig: Rig) -> None:
    configured(rig)
    rig.ctl("click", button=0)
    rig.until(lambda: rig.agent.ratings.get(1))
    # The agent stops answering (heartbeat 2 s: down after 3 periods without a packet).
    deadline = time.monotonic() + 12
    while rig.state()["online"]:
        assert time.monotonic() < deadline, "the device did not notice the silent agent"
        time.sleep(0.2)
    rig.ctl("click", button=1)
    rig.until(lambda: rig.agent.ratings.get(2), 25)
    assert rig.agent.ratings[2].flags & M.FLAG_OFFLINE


def test_selftest_answers(rig: Rig) -> None:
    configured(rig)
    ag = rig.agent
    ag.send(
        Message(M.SELFTEST, test=5, items=[M.TEST_LED, M.TEST_BUZZER, M.TEST_FLASH, M.TEST_LINK])
    )
    res = rig.until(lambda: ag.last(M.SELFTEST_RESULT))
    assert res.test == 5 and [(r["item"], r["ok"]) for r in res.results] == [
        (3, True), (4, True), (5, True), (6, True)
    ]  # fmt: skip
    ag.send(Message(M.SELFTEST, test=6, items=[M.TEST_DISPLAY, M.TEST_BUTTONS, M.TEST_FLASH]))
    rig.until(lambda: rig.state()["screen"] == "selftest_pattern")
    rig.until(lambda: rig.state()["screen"] == "selftest_buttons", 8)
    for b in range(5):
        rig.ctl("click", button=b)
        time.sleep(0.1)
    res = rig.until(lambda: (m := ag.last(M.SELFTEST_RESULT)) and m.test == 6 and m)
    assert {r["item"]: r["ok"] for r in res.results} == {1: True, 2: True, 5: True}
    assert not ag.ratings  # selftest presses are not ratings


def test_qr_unit_static_qr_at_idle_case_qr_during_invite(fw_build: Path, tmp_path: Path) -> None:
    rig = Rig(fw_build, tmp_path, kind="qr")
    try:
        rig.up()
        cfg = config_msg()
        cfg.qr = {"size": 25, "bits": bytes([0b10110010] * 79)}
        rig.agent.send(cfg)
        rig.until(lambda: rig.state()["config_version"] == 7)
        idle = frame(rig, "qr_idle")
        f = rig.ctl("frame")
        assert (f["width"], f["height"], f["layout"]) == (240, 240, 2)
        case_qr = {"size": 29, "bits": bytes([0b01101001] * 106)}
        msg = invite(90)
        msg.qr = case_qr
        rig.agent.send(msg)
        rig.until(lambda: rig.state()["ui"] == "invite")
        during = frame(rig, "qr_invite")
        assert during != idle
        rig.agent.send(Message(M.CANCEL, invite=90))
        rig.until(lambda: rig.state()["ui"] == "idle")
        assert frame(rig) == idle  # back to the static code
        # A QR unit has no buttons: the control channel says so, nothing is recorded.
        assert not rig.ctl("click", button=0)["ok"]
        assert rig.state()["next_seq"] == 1
    finally:
        rig.close()
