"""Screen layouts for the evaluator's 128x64 mono OLED.

The 12 px font on a 13-row cell gives five text rows (y = 0, 13, 26, 39, 52) of ten hanzi.
A window label or staff name at its protocol limit (32 UTF-8 bytes: ten hanzi) fits one
row; a staff name of up to five hanzi is drawn twice as large; reasons (24 bytes: eight
hanzi) fit a row after their button number.
"""

from micropython import const

from firmware.ui import screens as S

# _NAME = const(...): inlined by mpy-cross, so no heap for the name or its value
_ROW = const(13)


class SmallScreens(S.Screens):
    def _header(self, ui):
        # Window label on the first row, "离线" at its right when the link is down.
        room = self.w
        if not ui.online:
            room -= self._offline_mark(self.w - 26, 0, 1) + 2
        room -= self._storage_mark(ui, room, 0)
        self.pen.text(ui.window, 0, 0, 1, 1, room)
        self.fb.hline(0, _ROW + 1, self.w, 1)

    def _idle(self, ui):
        self._header(ui)
        pen = self.pen
        staff = ui.staff
        if staff is None:
            pen.text(S.NO_STAFF_ZH, 0, 30, 1, 1, self.w, 1)
            return
        if pen.measure(staff["name"], 2) <= self.w:
            pen.text(staff["name"], 0, 17, 1, 2, self.w, 1)
        else:
            pen.text(staff["name"], 0, 24, 1, 1, self.w, 1)
        pen.text(self._staff_number(staff, 1, self.w), 0, 51, 1, 1, self.w, 1)

    def _paused(self, ui):
        self._header(ui)
        self.pen.text(S.PAUSED_ZH, 0, 18, 1, 2, self.w, 1)
        self.pen.text(ui.pause_reason or S.PAUSED_EN, 0, 50, 1, 1, self.w, 1)

    def _message(self, ui):
        self._header(ui)
        m = ui.message
        pen = self.pen
        used = pen.para(m.zh, 0, 17, self.w, 3, _ROW, 1, 1, 1) if m.zh else 0
        if m.en and used < 3:
            pen.para(m.en, 0, 17 + used * _ROW, self.w, 3 - used, _ROW, 1, 1, 1)

    def _invite(self, ui):
        pen = self.pen
        pen.text(S.INVITE_ZH_1, 0, 0, 1, 1, self.w, 1)
        pen.text(S.INVITE_ZH_2, 0, _ROW, 1, 1, self.w, 1)
        item = ui.invite.item if ui.invite is not None else None
        pen.text(item or S.INVITE_EN, 0, 2 * _ROW + 2, 1, 1, self.w, 1)
        pen.text(self._countdown(ui), 0, 44, 1, 1, self.w, 1)
        self._bar(ui, 59, 5, S.invite_total_s(ui))

    def _reason(self, ui):
        pen = self.pen
        fb = self.fb
        right = self.w
        if ui.skip_button >= 0:
            label = S.CIRCLED[ui.skip_button] + S.SKIP_ZH
            lw = pen.measure(label) + 2
            fb.fill_rect(self.w - lw, 0, lw, _ROW, 1)
            pen.text(label, self.w - lw + 1, 0, 0, 1, lw)
            right = self.w - lw - 2
        pen.text(S.REASON_ZH, 0, 0, 1, 1, right)
        # time left as a shrinking rule under the title
        fb.hline(0, _ROW - 1, self.w * ui.remaining_s // max(ui.reason_s, 1), 1)
        for i in range(ui.reason_slots):
            y = _ROW * (i + 1)
            pen.text(S.CIRCLED[i], 0, y, 1, 1, 12)
            pen.text(ui.reason_labels[i][0], 13, y, 1, 1, self.w - 13)

    def _thanks(self, ui):
        self.fb.rect(0, 0, self.w, self.h, 1)
        self.pen.text(S.THANKS_ZH, 0, 16, 1, 1, self.w, 1)
        self.pen.text(S.THANKS_EN, 0, 34, 1, 1, self.w, 1)

    def _notice(self, ui):
        pen = self.pen
        y = 8
        if ui.paused:
            pen.text(S.PAUSED_ZH, 0, 2, 1, 1, self.w, 1)
            y = 18
        pen.text(S.NOTICE_ZH, 0, y, 1, 1, self.w, 1)
        pen.para(S.NOTICE_EN, 0, y + 17, self.w, 2, _ROW, 1, 1, 1)
