"""Screen layouts for the 240x240 panel: the QR display unit and the combined unit.

Text is the 12 px font drawn twice as large (24 px, ten hanzi a row): the panel has ~2.5 times
the OLED's pixel density, so this is the same size to the eye. The QR code is scaled to whole
pixels per module with its 4-module quiet zone, as large as the space between the title bar
and the bottom row allows (a version-10 code, 57 modules, still gets 2 px per module).

The QR display unit has no buttons: at idle it shows the staff's static one-code-one-account
QR (CONFIG), during an invite the case's dynamic QR (INVITE), falling back to the static
one when the invite has none. The combined unit shows the same plus the button prompts.
"""

from micropython import const

from firmware.display.pen import qr_scale
from firmware.ui import screens as S
from protocol.messages import KIND_QR

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_SCALE = const(2)
_ROW = const(26)  # one text row at _SCALE
_BAR = const(30)  # title bar height
_BOTTOM = const(212)  # top of the bottom text row


class LargeScreens(S.Screens):
    def _title(self, text, ui):
        # Paper-coloured text on an ink bar; "离线" at its right when the link is down.
        self.fb.fill_rect(0, 0, self.w, _BAR, 1)
        room = self.w - 8
        if not ui.online:  # at 12 px, so a window label keeps its 24 px
            mark = self.pen.measure(S.OFFLINE_ZH) + 4
            self.fb.fill_rect(self.w - mark - 4, 8, mark, 14, 0)
            self.pen.text(S.OFFLINE_ZH, self.w - mark - 2, 8, 1, 1, mark)
            room -= mark + 6
        m = self._storage_mark(ui, room + 4, 8)
        if m:
            room -= m + 4
        scale = self._fit_scale(text, _SCALE, room)
        self.pen.text(text, 4, 2 if scale == _SCALE else 9, 0, scale, room)

    def _qr_in(self, qr, top, bottom):
        size = qr["size"]
        scale = qr_scale(size, bottom - top)
        side = (size + 8) * scale
        x = (self.w - side) // 2
        y = top + (bottom - top - side) // 2
        self.pen.qr(size, qr["bits"], x, y, scale)
        self.last_qr = (x, y, scale, size)  # where the modules are (tests sample them)

    def _staff_line(self, ui, y):
        staff = ui.staff
        if staff is None:
            self.pen.text(S.NO_STAFF_ZH, 0, y, 1, _SCALE, self.w, 1)
            return
        text = staff["name"] + " " + self._staff_number(staff, _SCALE, self.w)
        scale = self._fit_scale(text, _SCALE, self.w)
        self.pen.text(text, 0, y if scale == _SCALE else y + 6, 1, scale, self.w, 1)

    def _idle(self, ui):
        self._title(ui.window, ui)
        pen = self.pen
        if ui.qr is not None:
            self._qr_in(ui.qr, _BAR + 2, _BOTTOM - 2)
            self._staff_line(ui, _BOTTOM)
            return
        staff = ui.staff
        if staff is None:
            pen.text(S.NO_STAFF_ZH, 0, 100, 1, _SCALE, self.w, 1)
            return
        big = 4 if pen.measure(staff["name"], 4) <= self.w else _SCALE
        pen.text(staff["name"], 0, 80 if big == 4 else 96, 1, big, self.w, 1)
        pen.text(self._staff_number(staff, _SCALE, self.w), 0, 150, 1, _SCALE, self.w, 1)

    def _paused(self, ui):
        self._title(ui.window, ui)
        self.pen.text(S.PAUSED_ZH, 0, 80, 1, 4, self.w, 1)
        self.pen.text(ui.pause_reason or S.PAUSED_EN, 0, 150, 1, _SCALE, self.w, 1)

    def _message(self, ui):
        self._title(ui.window, ui)
        m = ui.message
        pen = self.pen
        used = pen.para(m.zh, 4, _BAR + 8, self.w - 8, 5, _ROW + 2, 1, _SCALE, 1) if m.zh else 0
        if m.en and used < 7:
            pen.para(
                m.en, 4, _BAR + 8 + used * (_ROW + 2), self.w - 8, 7 - used, _ROW, 1, _SCALE, 1
            )

    def _invite(self, ui):
        pen = self.pen
        inv = ui.invite
        qr = inv.qr if inv is not None and inv.qr is not None else ui.qr
        if qr is None:  # a combined unit without any QR: the evaluator's invite, larger
            pen.text(S.INVITE_ZH_1, 0, 40, 1, _SCALE, self.w, 1)
            pen.text(S.INVITE_ZH_2, 0, 40 + _ROW, 1, _SCALE, self.w, 1)
            pen.text(S.INVITE_EN, 0, 40 + 2 * _ROW + 8, 1, 1, self.w, 1)
        else:
            title = S.SCAN_ZH if self.kind == KIND_QR else S.PRESS_OR_SCAN_ZH
            pen.text(title, 0, 2, 1, _SCALE, self.w, 1)
            self._qr_in(qr, _ROW + 4, _BOTTOM - 16)
        item = inv.item if inv is not None else None
        if item:
            pen.text(item, 0, _BOTTOM - 14, 1, 1, self.w, 1)
        pen.text(self._countdown(ui), 0, _BOTTOM, 1, _SCALE, self.w - 4, 2)
        self._bar(ui, 236, 4, S.invite_total_s(ui))

    def _reason(self, ui):
        pen = self.pen
        pen.text(S.REASON_ZH, 0, 2, 1, _SCALE, self.w, 1)
        pen.text(S.REASON_EN, 0, 2 + _ROW, 1, 1, self.w, 1)
        y = 46
        for i in range(ui.reason_slots):
            pen.text(S.CIRCLED[i], 0, y, 1, _SCALE, 24)
            pen.text(ui.reason_labels[i][0], 26, y, 1, _SCALE, self.w - 26)
            y += _ROW + 6
        if ui.skip_button >= 0:
            pen.text(S.CIRCLED[ui.skip_button], 0, y, 1, _SCALE, 24)
            pen.text(S.SKIP_ZH, 26, y, 1, _SCALE, self.w - 26)
        pen.text(self._countdown(ui), 0, _BOTTOM, 1, _SCALE, self.w - 4, 2)

    def _thanks(self, ui):
        self.pen.text(S.THANKS_ZH, 0, 90, 1, _SCALE, self.w, 1)
        self.pen.text(S.THANKS_EN, 0, 124, 1, _SCALE, self.w, 1)

    def _notice(self, ui):
        pen = self.pen
        y = 80
        if ui.paused:
            pen.text(S.PAUSED_ZH, 0, 40, 1, _SCALE, self.w, 1)
        pen.text(S.NOTICE_ZH, 0, y, 1, _SCALE, self.w, 1)
        pen.para(S.NOTICE_EN, 0, y + _ROW + 8, self.w, 2, _ROW, 1, _SCALE, 1)
