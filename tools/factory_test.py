"""``hcp factory-test``: drive a device's selftest over the protocol and keep the record.

Strategy: the device tests what only it can see (a press on each button, its flash, the
frames it received) and answers SELFTEST with SELFTEST_RESULT (docs/protocol.md §6); the
technician judges what only a person can see or hear (the display pattern, the LED, the
buzzer). The tool runs one item at a time, tells the technician what to do or look for,
and a check passes only when the device and, where one is asked, the technician agree.
The link is checked both ways by the exchange itself: the device's HELLO verified here
(up), the SELFTEST it answered (down), and the device's own link item.

Works before provisioning (no ``--device``: the provisioning key, the factory id as the
identity: the factory line) and after (``--device``: that device's key from the agent's
store: a technician in the hall). The report names the device, its board and firmware,
every item, and is saved as JSON and text under ``<data_dir>/factory-tests/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

BUTTONS, DISPLAY, LED, BUZZER, FLASH, LINK = 1, 2, 3, 4, 5, 6  # protocol SELFTEST items
ORDER = (LINK, FLASH, BUTTONS, DISPLAY, LED, BUZZER)
ITEM_NAMES = {
    BUTTONS: Text("按键", "buttons"),
    DISPLAY: Text("显示屏", "display"),
    LED: Text("指示灯", "LED"),
    BUZZER: Text("蜂鸣器", "buzzer"),
    FLASH: Text("存储", "flash"),
    LINK: Text("通信链路", "link"),
}
BY_NAME = {t.en.lower(): item for item, t in ITEM_NAMES.items()}
LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")  # buttons left to right
ITEM_TIMEOUT_S = {BUTTONS: 60.0}  # a person presses five buttons
DEFAULT_TIMEOUT_S = 10.0
TZ = dt.timezone(dt.timedelta(hours=8))

PROMPT = {
    BUTTONS: Text(
        "请从左到右依次按下每个按键：" + "、".join(LEVELS),
        "press each button in turn, left to right: " + ", ".join(LEVELS),
    ),
    DISPLAY: Text(
        "屏幕应显示测试图案：边框、左上棋盘格、右上竖条、两条对角线和中间的文字，"
        "无坏点、无缺行缺列、文字从左到右可读。是这样吗？",
        "the screen should show the test pattern: a border, a checkerboard top left, "
        "stripes top right, two diagonals and a text label, no dead pixels, no missing rows "
        "or columns, the text reading left to right. Is it so?",
    ),
    LED: Text(
        "指示灯应亮起约半秒。看到了吗？", "the LED should light for about half a second. Did it?"
    ),
    BUZZER: Text("蜂鸣器应短响一声。听到了吗？", "the buzzer should beep once. Did it?"),
}
ASK = {DISPLAY, LED, BUZZER}  # items a person confirms

T = {
    "help": Text(
        "出厂测试：按键、显示、指示灯、蜂鸣器、存储、链路",
        "factory test: buttons, display, LED, buzzer, flash, link",
    ),
    "port": Text("串口", "serial port"),
    "device": Text(
        "已配网设备的标识（缺省：未配网设备，使用配网密钥）",
        "a provisioned device's id (default: an unprovisioned device, provisioning key)",
    ),
    "items": Text("只测这些项目（逗号分隔）", "test only these items (comma-separated)"),
    "timeout": Text("等待设备的秒数", "seconds to wait for the device"),
    "yn": Text("[y/n] ", "[y/n] "),
}
E = {
    "unknown": Text("没有设备 {d} 或其没有密钥", "no device {d}, or it has no key"),
    "items": Text("未知的测试项目 {v}（可用：{c}）", "unknown test item {v} (choose from {c})"),
    "failed": Text(
        "出厂测试未通过：{n} 项失败（记录：{p}）", "factory test failed: {n} item(s) (record: {p})"
    ),
}
OK = {
    "hello": Text(
        "设备 {d}（{k}，板型 {b}，固件 {f}）已连接，链路双向验证中",
        "device {d} ({k}, board {b}, firmware {f}) connected; checking the link both ways",
    ),
    "passed": Text("出厂测试通过（记录：{p}）", "factory test passed (record: {p})"),
    "pass": Text("通过", "pass"),
    "fail": Text("失败", "FAIL"),
}


def _ask(state: State, question: str) -> bool:
    while True:
        sys.stdout.write(f"  {question} {state.text(T['yn'])}")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not sys.stdin.isatty():
            sys.stdout.write(line if line.endswith("\n") else line + "\n")  # show the answer
        if not line:
            return False  # no one to answer: not confirmed
        answer = line.strip().lower()
        if answer in ("y", "yes", "是", "好"):
            return True
        if answer in ("n", "no", "否", "不"):
            return False


def _parse_items(value: str) -> list[int]:
    out = []
    for part in value.split(","):
        item = BY_NAME.get(part.strip().lower())
        if item is None:
            raise argparse.ArgumentTypeError(
                E["items"].format("en", v=part, c=",".join(sorted(BY_NAME)))
            )
        out.append(item)
    return out


def run_test(
    state: State,
    *,
    port: str,
    key: bytes,
    session: int,
    mode: int,
    device_id: str | None,
    committed: int,
    items: list[int] | None,
    timeout_s: float,
) -> dict[str, Any]:
    """Run the selftest; returns the report (not saved)."""
    from edge_agent.registry import KIND_NAMES
    from protocol import messages as M
    from tools.provision_link import BenchLink, message

    started = time.time()
    results: list[dict[str, Any]] = []
    with BenchLink(port, key=key, session=session, mode=mode, device_id=device_id) as link:
        link.set_committed(committed)
        hello = link.wait_hello(timeout_s)
        print(
            state.text(
                OK["hello"],
                d=hello.device_id,
                k=KIND_NAMES.get(hello.kind, hello.kind),
                b=hello.board,
                f=hello.firmware,
            ),
            flush=True,
        )
        if items is None:  # a QR display unit has no rating buttons
            skip = BUTTONS if hello.kind == M.KIND_QR else None
            items = [i for i in ORDER if i != skip]
        for n, item in enumerate(items, 1):
            name = state.text(ITEM_NAMES[item])
            print(f"[{n}/{len(items)}] {name}", flush=True)
            if item in PROMPT and item not in ASK:
                print("  " + state.text(PROMPT[item]), flush=True)
            link.send(message(M.SELFTEST, test=n, items=[item]))
            wait = ITEM_TIMEOUT_S.get(item, DEFAULT_TIMEOUT_S)
            reply = link.wait(lambda: link.take(M.SELFTEST_RESULT), wait)
            entry: dict[str, Any] = {"item": item, "name": ITEM_NAMES[item].en}
            if reply is None or reply.test != n:
                entry.update(device_ok=False, detail=f"no answer within {wait:g} s")
            else:
                got = {r["item"]: r for r in reply.results}.get(item)
                entry.update(
                    device_ok=bool(got and got["ok"]), detail=got["detail"] if got else None
                )
            if item in ASK:
                entry["operator_ok"] = _ask(state, state.text(PROMPT[item]))
            entry["ok"] = entry["device_ok"] and entry.get("operator_ok", True)
            mark = state.text(OK["pass"] if entry["ok"] else OK["fail"])
            print(f"  → {mark}" + (f" ({entry['detail']})" if entry["detail"] else ""))
            results.append(entry)
        link_ok = hello is not None and not link.refused
    return {
        "device_id": hello.device_id,
        "mode": "provisioning" if mode else "normal",
        "kind": KIND_NAMES.get(hello.kind),
        "board": hello.board,
        "firmware": hello.firmware,
        "port": port,
        "started": dt.datetime.fromtimestamp(started, TZ).isoformat(timespec="seconds"),
        "finished": dt.datetime.now(TZ).isoformat(timespec="seconds"),
        "link": {"up": True, "down": bool(results), "refused": dict(link.refused), "ok": link_ok},
        "items": results,
        "passed": link_ok and all(r["ok"] for r in results),
    }


def render(state: State, report: dict[str, Any]) -> str:
    lines = [
        f"hcp factory-test  {report['device_id']}  ({report['kind']}, {report['board']}, "
        f"{report['firmware']})",
        f"{report['started']} … {report['finished']}  port {report['port']}",
    ]
    for r in report["items"]:
        mark = state.text(OK["pass"] if r["ok"] else OK["fail"])
        who = "" if "operator_ok" not in r else f" operator={'yes' if r['operator_ok'] else 'no'}"
        detail = f"  {r['detail']}" if r["detail"] else ""
        name = state.text(ITEM_NAMES[r["item"]])
        lines.append(
            f"  {name:<8} {mark:<4} device={'ok' if r['device_ok'] else 'no'}{who}{detail}"
        )
    verdict = state.text(OK["pass"] if report["passed"] else OK["fail"])
    lines.append(f"=> {verdict}")
    return "\n".join(lines) + "\n"


def _run(state: State, args: argparse.Namespace) -> int | None:
    import tools.agent_commands as ac
    from edge_agent import registry
    from protocol import messages as M
    from protocol.packet import PROVISIONING_KEY

    cfg = ac._load(args)
    store = ac._store(state, cfg)
    if args.device:
        key = registry.device_key(store, args.device)
        dev = registry.device(store, args.device)
        if key is None or dev is None:
            raise HcpError(E["unknown"].fill(d=args.device))
        mode, committed = M.NORMAL, dev.committed_seq
    else:
        key, mode, committed = PROVISIONING_KEY, M.PROVISIONING, 0
    report = run_test(
        state,
        port=args.port,
        key=key,
        session=store.allocate_agent_session(),
        mode=mode,
        device_id=args.device,
        committed=committed,
        items=args.items or None,
        timeout_s=args.timeout,
    )
    text = render(state, report)
    folder = cfg.data_dir / "factory-tests"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(TZ).strftime("%Y%m%dT%H%M%S")
    path = folder / f"{report['device_id']}-{stamp}"
    path.with_suffix(".json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    path.with_suffix(".txt").write_text(text, "utf-8")
    print(text, end="")
    failed = sum(1 for r in report["items"] if not r["ok"]) + (0 if report["link"]["ok"] else 1)
    if failed:
        raise HcpError(E["failed"].fill(n=failed, p=path.with_suffix(".json")))
    print(state.text(OK["passed"], p=path.with_suffix(".json")))
    return None


def _arguments(parser: HcpParser) -> None:
    import tools.agent_commands as ac

    parser.add_argument("--port", "-p", required=True, help=parser.tr(T["port"]))
    parser.add_argument("--device", "-d", type=ac._check_id, help=parser.tr(T["device"]))
    parser.add_argument("--items", type=_parse_items, help=parser.tr(T["items"]))
    parser.add_argument("--timeout", type=float, default=10.0, help=parser.tr(T["timeout"]))
    parser.add_argument("--config", "-c", metavar="FILE", help=parser.tr(ac.T["config"]))


register("factory-test", help=T["help"], arguments=_arguments, run=_run)
