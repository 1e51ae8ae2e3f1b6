"""What each UI screen shows: the words, and the parts shared by every panel size.

Strategy: the state machine (machine.py) decides which screen to show; a Screens object
draws it from the UI's public fields and shows it. The layouts differ by panel, so each
panel size has its own module, imported only by the devices that have that panel:
screens_small.py (128x64 mono OLED, the evaluator) and screens_large.py (240x240, the QR
unit and the combined unit). Pass `screens.render` to UI() as its render callback.

Rules every layout keeps (DOMAIN.md, issue 3): Chinese first, English as a second line
where it fits; the rating level is never drawn (nothing here reads it: the UI does not even
keep it after recording); staff name and 工号 are public ("亮证上岗"), rater data never
appears. Texts at their protocol limits fit (the screen tests check `pen.overflows`).
"""

from firmware.display.pen import Pen
from firmware.ui import machine as M

# ---- screen text (zh-CN first; English where it fits) ----
INVITE_ZH_1 = "请您对本次服务"
INVITE_ZH_2 = "进行评价"
INVITE_ZH = "请您对本次服务进行评价"
INVITE_EN = "Please rate our service"
SCAN_ZH = "请扫码评价本次服务"
PRESS_OR_SCAN_ZH = "请按键或扫码评价"
REASON_ZH = "请选择原因"
REASON_EN = "Why? Pick a reason"
SKIP_ZH = "跳过"
THANKS_ZH = "感谢您的评价"
THANKS_EN = "Thank you!"
NOTICE_ZH = "请在办理业务后评价"
NOTICE_EN = "Please rate after service"
PAUSED_ZH = "暂停服务"
PAUSED_EN = "Service paused"
NO_STAFF_ZH = "暂无工作人员"
NUMBER_ZH = "工号"
OFFLINE_ZH = "离线"
STORAGE_FULL_ZH = "存满"  # the outbox is near full or dropped ratings (outbox.py overflow policy)
SECONDS_ZH = "秒"
SCAN_IDLE_ZH = "扫码评价"
PATTERN_ZH = "显示自检"
BUTTONS_ZH = "按键自检"
BUTTONS_HINT_ZH = "请依次按下各键"
CIRCLED = "①②③④⑤"  # button numbers, left to right


class Screens:
    """Draws UI screens on one display. Subclasses lay them out for their panel size."""

    def __init__(self, display, font, kind):
        self.display = display
        self.kind = kind
        self.pen = Pen(display.fb, display.width, display.height, font)
        self.fb = display.fb
        self.w = display.width
        self.h = display.height
        self.frames = 0

    def render(self, screen, ui):
        """The UI's render callback: draw `screen` and show it."""
        self.draw(screen, ui)
        self.display.show()

    def draw(self, screen, ui):
        self.fb.fill(0)
        getattr(self, "_" + screen)(ui)
        self.frames += 1

    # ---- shared by every layout ----
    def _selftest_pattern(self, ui):
        # Border, checkerboard, stripes and diagonals: dead pixels, stuck rows or columns,
        # and a shifted or mirrored image (the label must read left to right) all show.
        fb = self.fb
        w = self.w
        h = self.h
        fb.rect(0, 0, w, h, 1)
        cell = 4 if w < 200 else 8
        for y in range(2, h // 2, cell):
            for x in range(2, w // 2, cell):
                if ((x + y) // cell) & 1:
                    fb.fill_rect(x, y, cell, cell, 1)
        for x in range(w // 2 + 2, w - 2, 3):
            fb.vline(x, 2, h // 2 - 2, 1)
        fb.line(0, h - 1, w - 1, h // 2, 1)
        fb.line(0, h // 2, w - 1, h - 1, 1)
        scale = 1 if w < 200 else 2
        lw = self.pen.measure(PATTERN_ZH, scale) + 4
        lh = self.pen.line_h * scale + 2
        x = (w - lw) // 2
        y = h // 2 + (h // 2 - lh) // 2
        fb.fill_rect(x, y, lw, lh, 0)
        fb.rect(x, y, lw, lh, 1)
        self.pen.text(PATTERN_ZH, x + 2, y + 1, 1, scale, lw - 4)

    def _selftest_buttons(self, ui):
        n = len(ui.buttons)
        scale = 1 if self.w < 200 else 2
        lh = self.pen.line_h * scale
        self.pen.text(BUTTONS_ZH, 0, 0, 1, scale, self.w, 1)
        self.pen.text(BUTTONS_HINT_ZH, 0, lh, 1, scale, self.w, 1)
        if n == 0:
            return
        pitch = self.w // n
        size = pitch * 2 // 3
        y = 2 * lh + 4
        for i in range(n):
            x = i * pitch + (pitch - size) // 2
            if ui.selftest_pressed & (1 << i):
                self.fb.fill_rect(x, y, size, size, 1)
            else:
                self.fb.rect(x, y, size, size, 1)
            self.pen.text(str(i + 1), x, y + size + 1, 1, scale, size, 1)

    def _storage_mark(self, ui, right, y):
        """An inverted "存满" ending at x = right when the app set ui.storage_mark; its width.

        The app sets it from Outbox.mark(): near full, or ratings dropped by the overflow
        policy and not yet past the agent's ack. A technician must see it (never silent).
        """
        if not ui.storage_mark:
            return 0
        pen = self.pen
        w = pen.measure(STORAGE_FULL_ZH) + 2
        self.fb.fill_rect(right - w, y, w, pen.line_h, 1)
        pen.text(STORAGE_FULL_ZH, right - w + 1, y, 0, 1, w)
        return w

    def _offline_mark(self, x, y, scale):
        """An inverted "离线" at (x, y); returns its width."""
        pen = self.pen
        w = pen.measure(OFFLINE_ZH, scale) + 2 * scale
        self.fb.fill_rect(x, y, w, pen.line_h * scale, 1)
        pen.text(OFFLINE_ZH, x + scale, y, 0, scale, w)
        return w

    def _countdown(self, ui):
        return "%d%s" % (ui.remaining_s, SECONDS_ZH)

    def _bar(self, ui, y, h, total_s):
        # remaining time as a bar across the panel (a rater reads it at a glance)
        if total_s <= 0:
            return
        w = self.w * ui.remaining_s // total_s
        if w > self.w:
            w = self.w
        self.fb.fill_rect(0, y, w, h, 1)

    def _staff_number(self, staff, scale, room):
        # "工号 A0123"; a 16-character number alone when the label would not fit
        text = NUMBER_ZH + " " + staff["number"]
        if self.pen.measure(text, scale) > room:
            return staff["number"]
        return text

    def _fit_scale(self, text, scale, room):
        """scale if text fits room at it, else 1 (the large panel's fallback)."""
        if scale > 1 and self.pen.measure(text, scale) > room:
            return 1
        return scale


def invite_total_s(ui):
    inv = ui.invite
    if inv is not None and inv.timeout_s:
        return inv.timeout_s
    return ui.invite_s


def make_screens(display, font, kind):
    """The layout for this display: small panels (< 200 px wide) or large ones."""
    if display.width < 200:
        from firmware.ui.screens_small import SmallScreens

        return SmallScreens(display, font, kind)
    from firmware.ui.screens_large import LargeScreens

    return LargeScreens(display, font, kind)


# The screens every layout draws (machine.py's SCR_* names; draw() calls "_" + name).
SCREENS = (
    M.SCR_IDLE,
    M.SCR_PAUSED,
    M.SCR_MESSAGE,
    M.SCR_INVITE,
    M.SCR_REASON,
    M.SCR_THANKS,
    M.SCR_NOTICE,
    M.SCR_PATTERN,
    M.SCR_BUTTONS,
)
