"""``hcp labels``: the static one-code-one-account QR codes of a hall, as a print-ready sheet.

Strategy: one label per staff position (edge_agent.registry positions: 一码一账号, one staff
account, one QR code, one evaluator position). The code is the agent's own static staff
token (edge_agent.qr, case left empty) rendered by edge_agent.qr.render, so the printed
matrix is the very matrix ``hcp provision`` puts in a QR unit's offline bundle; a test reads
the modules back from the image and compares them.

A printed code cannot be refreshed daily, so its expiry is long and derived from the
position's start (edge_agent.qr.static_expiry), which makes the token (and the sheet) the
same on every run until the window is bound to someone else; the agent sends this same code
in CONFIG, so the QR unit shows the printed matrix.

Layout: A4 portrait at 300 dpi, 2 × 3 labels of 85 × 90 mm with cut margins, Chinese text
in WenQuanYi Zen Hei (Debian fonts-wqy-zenhei); PDF (one page per six labels) or PNG (one
file per page).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

if TYPE_CHECKING:
    from PIL import Image

    from edge_agent.config import AgentConfig
    from edge_agent.store import Store

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
DPI = 300
PAGE_MM = (210, 297)  # A4 portrait
COLS, ROWS = 2, 3
LABEL_MM = (85, 90)
QR_MM = 50  # ≥ 2 cm per side is a common scanning minimum; 5 cm reads from 50 cm away
QUIET = 4  # quiet zone in modules (ISO/IEC 18004)
TZ = dt.timezone(dt.timedelta(hours=8))

T = {
    "help": Text(
        "打印本大厅的一码一账号二维码标签（PDF 或 PNG）",
        "print the hall's one-code-one-account QR labels (PDF or PNG)",
    ),
    "output": Text("输出文件（.pdf 或 .png）", "output file (.pdf or .png)"),
    "window": Text("只打印这些窗口", "print only these windows"),
}
E = {
    "no_base": Text(
        "配置中没有 policy.qr_base_url，无法生成二维码", "policy.qr_base_url is not configured"
    ),
    "none": Text(
        "没有已绑定工作人员的窗口：先运行 hcp provision",
        "no window has a staff member bound: run hcp provision first",
    ),
    "format": Text("输出文件须以 .pdf 或 .png 结尾", "the output file must end in .pdf or .png"),
    "font": Text(
        "缺少字体 {p}（Debian：apt install fonts-wqy-zenhei）",
        "font {p} is missing (Debian: apt install fonts-wqy-zenhei)",
    ),
}
OK = {
    "wrote": Text("已写入 {p}：{n} 个标签，{g} 页", "wrote {p}: {n} labels on {g} page(s)"),
}


@dataclass(frozen=True)
class StaticCode:
    url: str
    size: int
    bits: bytes
    expires_s: int


def static_code(store: Store, cfg: AgentConfig, window_id: str, pos: dict[str, Any]) -> StaticCode:
    """The static staff code of a position: token, URL and the protocol's QR matrix."""
    from edge_agent import qr
    from edge_agent.service import QR_KID

    if not cfg.policy.qr_base_url:
        raise HcpError(E["no_base"])
    exp = qr.static_expiry(pos["since_ms"])
    token = qr.make_token(
        store.secret(f"qr.{QR_KID}"),
        qr.TokenClaims(QR_KID, cfg.hall_id, window_id, pos["staff_id"], None, exp),
    )
    url = qr.token_url(cfg.policy.qr_base_url, token)
    matrix = qr.render(url)
    return StaticCode(url, int(matrix["size"]), bytes(matrix["bits"]), exp)  # type: ignore[call-overload]


def _px(mm: float) -> int:
    return round(mm / 25.4 * DPI)


@dataclass(frozen=True)
class Placement:
    """Where one label's QR matrix is drawn on its page (for printing and for the test)."""

    page: int
    window_id: str
    x: int
    y: int
    module_px: int
    size: int


def layout(count: int) -> Iterator[tuple[int, int, int]]:
    """(page, x, y) of the top-left corner of each label."""
    pw, ph = _px(PAGE_MM[0]), _px(PAGE_MM[1])
    lw, lh = _px(LABEL_MM[0]), _px(LABEL_MM[1])
    mx, my = (pw - COLS * lw) // 2, (ph - ROWS * lh) // 2
    for i in range(count):
        page, slot = divmod(i, COLS * ROWS)
        r, c = divmod(slot, COLS)
        yield page, mx + c * lw, my + r * lh


def render_sheet(
    labels: list[dict[str, Any]], hall_name: str
) -> tuple[list[Image.Image], list[Placement]]:
    """Pages and where each QR went; labels: window_id, label, name, number, department,
    code (StaticCode)."""
    from PIL import Image, ImageDraw, ImageFont

    from edge_agent.qr import unpack_bits

    if not FONT.exists():
        raise HcpError(E["font"].fill(p=FONT))
    big = ImageFont.truetype(str(FONT), _px(6))
    mid = ImageFont.truetype(str(FONT), _px(4))
    small = ImageFont.truetype(str(FONT), _px(2.8))
    pw, ph = _px(PAGE_MM[0]), _px(PAGE_MM[1])
    lw, lh = _px(LABEL_MM[0]), _px(LABEL_MM[1])
    pages: list[Image.Image] = []
    placements: list[Placement] = []
    for item, (page, x, y) in zip(labels, layout(len(labels)), strict=True):
        while len(pages) <= page:
            pages.append(Image.new("L", (pw, ph), 255))
        img = pages[page]
        d = ImageDraw.Draw(img)
        d.rectangle((x, y, x + lw - 1, y + lh - 1), outline=160, width=2)  # cut line
        d.text((x + lw // 2, y + _px(4)), "请为我的服务评价", font=big, fill=0, anchor="mt")
        d.text((x + lw // 2, y + _px(12)), "政务服务“好差评”", font=small, fill=0, anchor="mt")
        code: StaticCode = item["code"]
        module = _px(QR_MM) // (code.size + 2 * QUIET)
        qx = x + (lw - module * code.size) // 2
        qy = y + _px(17) + module * QUIET
        for r, row in enumerate(unpack_bits(code.size, code.bits)):
            for c, dark in enumerate(row):
                if dark:
                    d.rectangle(
                        (
                            qx + c * module,
                            qy + r * module,
                            qx + (c + 1) * module - 1,
                            qy + (r + 1) * module - 1,
                        ),
                        fill=0,
                    )
        placements.append(Placement(page, item["window_id"], qx, qy, module, code.size))
        ty = qy + module * (code.size + QUIET) + _px(1)
        d.text((x + lw // 2, ty), f"{item['label']}", font=mid, fill=0, anchor="mt")
        d.text(
            (x + lw // 2, ty + _px(5.5)),
            f"{item['name']}  工号 {item['number']}",
            font=mid,
            fill=0,
            anchor="mt",
        )
        dept = item.get("department") or ""
        until = dt.datetime.fromtimestamp(code.expires_s, TZ).strftime("%Y-%m-%d")
        d.text(
            (x + lw // 2, ty + _px(11)),
            f"{dept}  {hall_name}".strip(),
            font=small,
            fill=0,
            anchor="mt",
        )
        d.text(
            (x + lw // 2, ty + _px(15)),
            f"一码一账号 · 有效期至 {until}",
            font=small,
            fill=80,
            anchor="mt",
        )
    return pages, placements


def collect(store: Store, cfg: AgentConfig, windows: list[str] | None) -> list[dict[str, Any]]:
    from edge_agent import registry

    out = []
    for pos in registry.positions(store):
        if windows and pos["window_id"] not in windows:
            continue
        item = dict(pos)
        item["code"] = static_code(store, cfg, pos["window_id"], pos)
        out.append(item)
    return out


def _run(state: State, args: argparse.Namespace) -> int | None:
    import tools.agent_commands as ac

    out = Path(args.output)
    if out.suffix.lower() not in (".pdf", ".png"):
        raise HcpError(E["format"])
    cfg = ac._load(args)
    store = ac._store(state, cfg)
    items = collect(store, cfg, args.window)
    if not items:
        raise HcpError(E["none"])
    pages, _ = render_sheet(items, cfg.hall_id)
    if out.suffix.lower() == ".pdf":
        pages[0].save(out, "PDF", resolution=DPI, save_all=True, append_images=pages[1:])
    elif len(pages) == 1:
        pages[0].save(out, "PNG", dpi=(DPI, DPI))
    else:
        for i, page in enumerate(pages, 1):
            page.save(out.with_name(f"{out.stem}-{i}{out.suffix}"), "PNG", dpi=(DPI, DPI))
    print(state.text(OK["wrote"], p=out, n=len(items), g=len(pages)))
    return None


def _arguments(parser: HcpParser) -> None:
    import tools.agent_commands as ac

    parser.add_argument("--config", "-c", metavar="FILE", help=parser.tr(ac.T["config"]))
    parser.add_argument("--output", "-o", required=True, help=parser.tr(T["output"]))
    parser.add_argument("--window", action="append", help=parser.tr(T["window"]))


register("labels", help=T["help"], arguments=_arguments, run=_run)
