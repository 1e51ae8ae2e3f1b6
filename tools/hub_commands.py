"""``hcp hub …``: run the central hub and administer its halls and credentials.

    hcp hub migrate      [--database-url URL]
    hcp hub serve        [--database-url URL] [--host H] [--port P] [--migrate] [--ssl-…]
    hcp hub add-hall     HALL_ID --name NAME --area-code CODE
    hcp hub issue-token  --hall HALL_ID [--expires-days N] [--note TEXT]
    hcp hub revoke-token TOKEN_ID
    hcp hub openapi      [--output FILE]
    hcp hub report       --period 2026-Q1 [--by department] [--dept CODE] [--hall ID] [--csv]
    hcp hub default-ratings --policy PROFILE [--holiday-table FILE …]
    hcp hub add-user     USERNAME --name NAME --role ROLE [--dept CODE …] [--password-stdin]
    hcp hub set-password USERNAME [--password-stdin]
    hcp hub disable-user USERNAME
    hcp hub warnings     [--dept CODE]
    hcp hub sweep        [--policy PROFILE] [--holiday-table FILE …]

One registered command, ``hub``, with its own sub-commands (the registry in tools/cli.py is
flat). The database is ``--database-url``, else $HCP_HUB_DATABASE_URL, else the embedded
SQLite file var/hub/hub.sqlite3. Heavy imports (SQLAlchemy, FastAPI, uvicorn) happen inside
the handlers, so ``hcp --help`` stays fast. Every administrative change is written to the
hub's audit log with the OS user as the actor. A token is printed once, alone on stdout
(so ``TOKEN=$(hcp hub issue-token --hall …)`` works); the hub keeps only its hash.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.cli import HcpError, HcpParser, State, register
from tools.i18n import Text

if TYPE_CHECKING:
    from sqlalchemy import Engine

DEFAULT_HOST = "127.0.0.1"  # behind a TLS proxy by default; --host 0.0.0.0 to expose
DEFAULT_PORT = 8480

T = {
    "help": Text(
        "中心平台：运行服务、迁移数据库、管理大厅和令牌",
        "central hub: serve, migrate the database, manage halls and tokens",
    ),
    "sub": Text("子命令", "sub-commands"),
    "database_url": Text(
        "数据库地址：sqlite:///路径 或 postgresql://用户@主机/库（默认 $HCP_HUB_DATABASE_URL，"
        "否则 var/hub/hub.sqlite3）",
        "database URL: sqlite:///PATH or postgresql://USER@HOST/DB (default "
        "$HCP_HUB_DATABASE_URL, else var/hub/hub.sqlite3)",
    ),
    "migrate": Text("把数据库迁移到最新版本", "migrate the database to the latest schema"),
    "serve": Text("运行中心平台 HTTP 服务", "run the hub's HTTP service"),
    "host": Text("监听地址（默认 127.0.0.1）", "address to listen on (default 127.0.0.1)"),
    "port": Text(f"端口（默认 {DEFAULT_PORT}）", f"port (default {DEFAULT_PORT})"),
    "serve_migrate": Text(
        "启动前先迁移数据库（多个进程同时迁移也安全）",
        "migrate the database first (safe when several processes do it at once)",
    ),
    "certfile": Text("TLS 证书文件（PEM）", "TLS certificate file (PEM)"),
    "keyfile": Text("TLS 私钥文件（PEM）", "TLS private key file (PEM)"),
    "max_inflight": Text(
        "本进程同时处理的导入请求上限，超出回答 503",
        "ingest requests this process works on at once; more get 503",
    ),
    "hall_rate": Text(
        "每个大厅每秒最多导入的条数（0 = 不限），超出回答 429",
        "items per second per hall (0 = unlimited); more get 429",
    ),
    "add_hall": Text("登记一个大厅", "register a hall"),
    "hall_id": Text("大厅编号（1–32 个字母、数字、_ 或 -）", "hall id (1-32 of A-Z a-z 0-9 _ -)"),
    "name": Text("大厅名称", "the hall's name"),
    "area_code": Text("9 位行政区划代码", "9-digit area code (行政区划)"),
    "issue_token": Text(
        "为大厅签发一个新令牌（只显示一次）", "issue a new token for a hall (shown once)"
    ),
    "hall": Text("大厅编号", "hall id"),
    "expires_days": Text("有效天数（默认不过期）", "days until it expires (default: never)"),
    "note": Text("备注，例如用途或代理主机名", "a note, e.g. what it is for or the agent host"),
    "revoke_token": Text("吊销一个令牌", "revoke a token"),
    "token_id": Text("令牌编号（令牌中 hcpt_ 后的 12 位）", "token id (the 12 digits after hcpt_)"),
    "openapi": Text("输出中心平台 API 的 OpenAPI 文档", "print the hub API's OpenAPI document"),
    "output": Text("写入文件而不是标准输出", "write to a file instead of stdout"),
    "report": Text(
        "打印好差评统计（按周期、按维度）", "print rating metrics (per period, per dimension)"
    ),
    "period": Text(
        "统计周期（北京时间）：2026、2026-Q1、2026-03 或 2026-03-02",
        "period (China time): 2026, 2026-Q1, 2026-03 or 2026-03-02",
    ),
    "by": Text(
        "统计维度：all、department、hall、window、staff、item、channel（默认 all）",
        "dimension: all, department, hall, window, staff, item, channel (default all)",
    ),
    "dept": Text("只统计这个部门（统一社会信用代码）", "only this department (credit code)"),
    "report_hall": Text("只统计这个大厅", "only this hall"),
    "csv": Text("输出 CSV 而不是表格", "print CSV instead of a table"),
    "default_ratings": Text(
        "执行一次默认评价任务（超期未评价的办件给默认评价）",
        "run the default-rating job once (default ratings for unrated cases past the period)",
    ),
    "policy": Text("辖区配置名称，例如 mangshi", "jurisdiction profile name, e.g. mangshi"),
    "holiday_table": Text(
        "导入的节假日表文件（可多次给出；chinese-calendar 不知道的年份需要）",
        "holiday table file to import (repeatable; needed for years chinese-calendar lacks)",
    ),
    "serve_default_ratings": Text(
        "按 --policy 的辖区配置定时执行默认评价任务（多个进程同时运行也只有一个在执行）",
        "run the default-rating job on an interval with the --policy profile (with several "
        "processes, one at a time works)",
    ),
    "serve_interval": Text(
        "默认评价任务的间隔秒数（默认 600）", "seconds between default-rating runs (default 600)"
    ),
    "lookback": Text(
        "只看最近 N 天内办结的办件（默认 120；停机很久后补做时加大）",
        "only cases finished in the last N days (default 120; raise it to catch up after "
        "a long outage)",
    ),
    "job_done": Text(
        "默认评价任务：候选办件 {candidates}，到期 {due}，新增 {accepted}，重复 {duplicate}，"
        "拒绝 {rejected}",
        "default-rating job: {candidates} candidate cases, {due} due, {accepted} added, "
        "{duplicate} duplicate, {rejected} rejected",
    ),
    "job_busy": Text(
        "另一个中心平台进程正在执行默认评价任务；本次未执行",
        "another hub process holds the default-rating job; nothing done",
    ),
    "serve_policy": Text(
        "差评工单所用的辖区配置（默认 ningbo）",
        "jurisdiction profile of the 差评 work orders (default ningbo)",
    ),
    "add_user": Text("添加一个中心平台用户", "add a hub user"),
    "set_password": Text("设置用户密码（结束其全部会话）", "set a user's password (ends sessions)"),
    "disable_user": Text("停用一个用户（结束其全部会话）", "disable a user (ends sessions)"),
    "username": Text("用户名（小写字母开头，2–32 位）", "username (2-32, starts with a-z)"),
    "display_name": Text("姓名", "display name"),
    "role": Text(
        "角色：admin 管理员、dept_handler 责任部门经办人、hotline_verifier 12345 热线核实、"
        "auditor 审计（只读）",
        "role: admin, dept_handler, hotline_verifier, auditor (read-only)",
    ),
    "user_dept": Text(
        "经办人负责的部门（18 位统一社会信用代码，可多次给出）",
        "a department the handler acts for (18-character credit code; repeatable)",
    ),
    "password_stdin": Text(
        "从标准输入读取密码（第一行），不在终端询问",
        "read the password from stdin (first line) instead of asking",
    ),
    "password_prompt": Text("新密码：", "New password: "),
    "password_again": Text("再输入一次：", "Again: "),
    "password_mismatch": Text("两次输入的密码不一致", "the passwords do not match"),
    "user_added": Text("已添加用户 {u}（{role}）", "user {u} added ({role})"),
    "password_set": Text("已设置 {u} 的密码，其会话已结束", "password of {u} set; sessions ended"),
    "user_disabled": Text("已停用用户 {u}，其会话已结束", "user {u} disabled; sessions ended"),
    "warnings": Text(
        "列出超期预警：即将超期、已超期、期限未知的差评工单",
        "list overdue warnings: 差评 work orders upcoming, overdue or with an unknown deadline",
    ),
    "warnings_dept": Text("只看这个部门", "only this department"),
    "warnings_none": Text("没有超期预警", "no overdue warnings"),
    "warning_line": Text(
        "工单 {id}（{state}，部门 {dept}）：{deadline} {status}，期限 {due}",
        "work order {id} ({state}, department {dept}): {deadline} {status}, due {due}",
    ),
    "sweep": Text(
        "为尚无工单的差评补开工单（可重复执行）",
        "open work orders for 差评 that have none (safe to repeat)",
    ),
    "swept": Text("新开工单 {n} 个", "{n} work orders opened"),
    # messages
    "migrated": Text("数据库已迁移：{before} → {after}", "database migrated: {before} → {after}"),
    "up_to_date": Text("数据库已是最新版本（{rev}）", "database is up to date ({rev})"),
    "not_migrated": Text(
        "数据库版本是 {current}，需要 {head}：先运行 hcp hub migrate，或给 serve 加 --migrate",
        "the database is at {current}, the hub needs {head}: run `hcp hub migrate` first, "
        "or give serve --migrate",
    ),
    "db_error": Text("无法使用数据库 {url}：{error}", "cannot use the database {url}: {error}"),
    "hall_added": Text(
        "已登记大厅 {hall}（{name}，行政区划 {area}）",
        "hall {hall} registered ({name}, area code {area})",
    ),
    "token_issued": Text(
        "已为大厅 {hall} 签发令牌 {token_id}。令牌只显示这一次（下一行），"
        "请立即写入大厅代理的配置：",
        "token {token_id} issued for hall {hall}. It is shown this once (next line); "
        "put it in the hall agent's configuration now:",
    ),
    "token_revoked": Text(
        "已吊销大厅 {hall} 的令牌 {token_id}", "token {token_id} of hall {hall} revoked"
    ),
    "serving": Text(
        "中心平台在 {scheme}://{host}:{port} 提供服务（数据库：{db}）",
        "hub serving on {scheme}://{host}:{port} (database: {db})",
    ),
    "ssl_pair": Text(
        "--ssl-certfile 和 --ssl-keyfile 必须同时给出",
        "--ssl-certfile and --ssl-keyfile go together",
    ),
}


def _db_option(parser: HcpParser) -> None:
    parser.add_argument("--database-url", metavar="URL", help=parser.tr(T["database_url"]))


def _sub(parser: HcpParser, sub: Any, name: str, help_key: str) -> HcpParser:
    text = parser.tr(T[help_key])
    child: HcpParser = sub.add_parser(name, help=text, description=text, lang=parser.lang)
    child.add_lang_option()
    _db_option(child)
    return child


def _arguments(parser: HcpParser) -> None:
    sub = parser.add_subparsers(
        dest="hub_command",
        title=parser.tr(T["sub"]),
        metavar="<" + parser.tr(T["sub"]) + ">",
        parser_class=HcpParser,
        required=True,
    )
    _sub(parser, sub, "migrate", "migrate")

    serve = _sub(parser, sub, "serve", "serve")
    serve.add_argument("--host", default=DEFAULT_HOST, help=serve.tr(T["host"]))
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=serve.tr(T["port"]))
    serve.add_argument("--migrate", action="store_true", help=serve.tr(T["serve_migrate"]))
    serve.add_argument("--ssl-certfile", metavar="PEM", help=serve.tr(T["certfile"]))
    serve.add_argument("--ssl-keyfile", metavar="PEM", help=serve.tr(T["keyfile"]))
    serve.add_argument("--max-inflight", type=int, metavar="N", help=serve.tr(T["max_inflight"]))
    serve.add_argument("--hall-rate", type=float, metavar="N", help=serve.tr(T["hall_rate"]))
    serve.add_argument(
        "--default-ratings", action="store_true", help=serve.tr(T["serve_default_ratings"])
    )
    serve.add_argument(
        "--default-ratings-interval", type=float, default=600.0, metavar="S",
        help=serve.tr(T["serve_interval"]),
    )  # fmt: skip
    serve.add_argument(
        "--holiday-table", action="append", default=[], metavar="FILE",
        help=serve.tr(T["holiday_table"]),
    )  # fmt: skip
    serve.add_argument(
        "--policy", default="ningbo", metavar="PROFILE", help=serve.tr(T["serve_policy"])
    )

    add_user = _sub(parser, sub, "add-user", "add_user")
    add_user.add_argument("username", metavar="USERNAME", help=add_user.tr(T["username"]))
    add_user.add_argument("--name", required=True, help=add_user.tr(T["display_name"]))
    add_user.add_argument("--role", required=True, help=add_user.tr(T["role"]))
    add_user.add_argument(
        "--dept", action="append", default=[], metavar="CODE", help=add_user.tr(T["user_dept"])
    )
    add_user.add_argument(
        "--password-stdin", action="store_true", help=add_user.tr(T["password_stdin"])
    )
    set_pw = _sub(parser, sub, "set-password", "set_password")
    set_pw.add_argument("username", metavar="USERNAME", help=set_pw.tr(T["username"]))
    set_pw.add_argument(
        "--password-stdin", action="store_true", help=set_pw.tr(T["password_stdin"])
    )
    warn = _sub(parser, sub, "warnings", "warnings")
    warn.add_argument("--dept", metavar="CODE", help=warn.tr(T["warnings_dept"]))
    sweep = _sub(parser, sub, "sweep", "sweep")
    sweep.add_argument("--policy", default="ningbo", metavar="PROFILE", help=sweep.tr(T["policy"]))
    sweep.add_argument(
        "--holiday-table", action="append", default=[], metavar="FILE",
        help=sweep.tr(T["holiday_table"]),
    )  # fmt: skip
    disable = _sub(parser, sub, "disable-user", "disable_user")
    disable.add_argument("username", metavar="USERNAME", help=disable.tr(T["username"]))

    add_hall = _sub(parser, sub, "add-hall", "add_hall")
    add_hall.add_argument("hall_id", metavar="HALL_ID", help=add_hall.tr(T["hall_id"]))
    add_hall.add_argument("--name", required=True, help=add_hall.tr(T["name"]))
    add_hall.add_argument("--area-code", required=True, help=add_hall.tr(T["area_code"]))

    issue = _sub(parser, sub, "issue-token", "issue_token")
    issue.add_argument("--hall", required=True, metavar="HALL_ID", help=issue.tr(T["hall"]))
    issue.add_argument("--expires-days", type=int, metavar="N", help=issue.tr(T["expires_days"]))
    issue.add_argument("--note", help=issue.tr(T["note"]))

    revoke = _sub(parser, sub, "revoke-token", "revoke_token")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help=revoke.tr(T["token_id"]))

    rep = _sub(parser, sub, "report", "report")
    rep.add_argument("--period", required=True, help=rep.tr(T["period"]))
    rep.add_argument("--by", default="all", help=rep.tr(T["by"]))
    rep.add_argument("--dept", metavar="CODE", help=rep.tr(T["dept"]))
    rep.add_argument("--hall", metavar="HALL_ID", help=rep.tr(T["report_hall"]))
    rep.add_argument("--csv", action="store_true", help=rep.tr(T["csv"]))

    job = _sub(parser, sub, "default-ratings", "default_ratings")
    job.add_argument("--policy", required=True, metavar="PROFILE", help=job.tr(T["policy"]))
    job.add_argument(
        "--holiday-table", action="append", default=[], metavar="FILE",
        help=job.tr(T["holiday_table"]),
    )  # fmt: skip
    job.add_argument("--lookback-days", type=int, default=120, metavar="N",
                     help=job.tr(T["lookback"]))  # fmt: skip

    openapi = sub.add_parser(
        "openapi",
        help=parser.tr(T["openapi"]),
        description=parser.tr(T["openapi"]),
        lang=parser.lang,
    )
    openapi.add_lang_option()
    openapi.add_argument("--output", metavar="FILE", help=openapi.tr(T["output"]))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _url(args: argparse.Namespace) -> str:
    from hub.db.engine import default_database_url

    url: str | None = args.database_url
    return url or default_database_url()


def _engine(state: State, args: argparse.Namespace) -> Engine:
    from hub.db.engine import DatabaseUrlError, make_engine

    try:
        engine = make_engine(_url(args))
    except DatabaseUrlError as e:
        raise HcpError(Text(e.zh, e.en)) from e
    state.on_close(engine.dispose)
    return engine


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "?"


def _db_call(args: argparse.Namespace, fn: Callable[[], Any]) -> Any:
    """Run `fn`, turning database failures into one clear HcpError."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        return fn()
    except (OperationalError, DBAPIError) as e:
        detail = str(e.orig if e.orig is not None else e).strip().splitlines()[0][:300]
        raise HcpError(T["db_error"].fill(url=_safe_url(_url(args)), error=detail)) from e


def _require_current(state: State, args: argparse.Namespace, engine: Engine) -> None:
    from hub.db import migrate

    current = _db_call(args, lambda: migrate.current_revision(engine))
    head = migrate.head_revision()
    if current != head:
        raise HcpError(T["not_migrated"].fill(current=current or "空/empty", head=head))


def _migrate(state: State, args: argparse.Namespace) -> None:
    from hub.db import migrate

    engine = _engine(state, args)
    before, after = _db_call(args, lambda: migrate.upgrade(engine))
    if before == after:
        print(state.text(T["up_to_date"], rev=after))
    else:
        print(state.text(T["migrated"], before=before or "∅", after=after))


def _serve(state: State, args: argparse.Namespace) -> None:
    import uvicorn

    from hub.app import create_app
    from hub.db import migrate
    from hub.settings import HubSettings

    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise HcpError(T["ssl_pair"])
    engine = _engine(state, args)
    if args.migrate:
        _db_call(args, lambda: migrate.upgrade(engine))
    _require_current(state, args, engine)
    options: dict[str, Any] = {}
    if args.max_inflight is not None:
        options["max_inflight"] = args.max_inflight
    if args.hall_rate is not None:
        options["hall_rate_per_s"] = args.hall_rate
    settings = HubSettings(database_url=_url(args), **options)
    from hub.workflow.service import WorkflowConfig

    workflow = WorkflowConfig(*_policy(args.policy, args.holiday_table))
    app = create_app(settings, engine=engine, workflow=workflow)
    if args.default_ratings:
        from hub.jobs.default_ratings import Scheduler

        scheduler = Scheduler(
            engine=engine,
            profile=workflow.profile,
            calendar=workflow.calendar,
            interval_s=args.default_ratings_interval,
        )
        scheduler.start()
        state.on_close(scheduler.stop)
    scheme = "https" if args.ssl_certfile else "http"
    print(
        state.text(
            T["serving"],
            scheme=scheme,
            host=args.host,
            port=args.port,
            db=_safe_url(settings.database_url),
        ),
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level="info",
        access_log=False,
    )


def _admin(state: State, args: argparse.Namespace, fn: Callable[..., Any]) -> Any:
    """Run an administrative service call in one transaction on a current database."""
    from hub.auth.service import CredentialError
    from hub.registry.service import RegistryError

    engine = _engine(state, args)
    _require_current(state, args, engine)

    def run() -> Any:
        with engine.begin() as connection:
            return fn(connection=connection, now=datetime.now(UTC), actor=_actor())

    try:
        return _db_call(args, run)
    except (CredentialError, RegistryError) as e:
        raise HcpError(Text(e.message.zh, e.message.en)) from e


def _add_hall(state: State, args: argparse.Namespace) -> None:
    from hub.registry.service import add_hall

    _admin(
        state,
        args,
        lambda **kw: add_hall(hall_id=args.hall_id, name=args.name, area_code=args.area_code, **kw),
    )
    print(state.text(T["hall_added"], hall=args.hall_id, name=args.name, area=args.area_code))


def _issue_token(state: State, args: argparse.Namespace) -> None:
    from hub.auth.service import issue_token

    new = _admin(
        state,
        args,
        lambda **kw: issue_token(
            hall_id=args.hall, expires_days=args.expires_days, note=args.note, **kw
        ),
    )
    print(state.text(T["token_issued"], hall=args.hall, token_id=new.token_id), file=sys.stderr)
    print(new.token, flush=True)


def _revoke_token(state: State, args: argparse.Namespace) -> None:
    from hub.auth.service import revoke_token

    hall = _admin(state, args, lambda **kw: revoke_token(token_id=args.token_id, **kw))
    print(state.text(T["token_revoked"], hall=hall, token_id=args.token_id))


def _openapi(state: State, args: argparse.Namespace) -> None:
    from hub.openapi import document

    text = document()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _policy(name: str, tables: list[str]) -> Any:
    """The jurisdiction profile and the working-day calendar (with imported tables)."""
    from hub.policy import PolicyError, load_profile
    from hub.workdays import CalendarError, HolidayTableError, WorkCalendar, load_holiday_table

    try:
        return load_profile(name), WorkCalendar([load_holiday_table(t) for t in tables])
    except PolicyError as e:
        raise HcpError(Text(e.zh, e.en)) from e
    except (CalendarError, HolidayTableError) as e:
        raise HcpError(Text(e.zh, e.en)) from e


def _report(state: State, args: argparse.Namespace) -> None:
    from hub.metrics import MetricsError, infer_period, report
    from hub.metrics.render import table, to_csv

    engine = _engine(state, args)
    _require_current(state, args, engine)
    scope = {k: v for k, v in (("dept_code", args.dept), ("hall_id", args.hall)) if v}
    try:
        period = infer_period(args.period)

        def run() -> Any:
            with engine.connect() as connection:
                return report(connection=connection, period=period, dimension=args.by, scope=scope)

        result = _db_call(args, run)
    except MetricsError as e:
        raise HcpError(Text(e.message.zh, e.message.en)) from e
    sys.stdout.write((to_csv if args.csv else table)(result, state.lang))


def _default_ratings(state: State, args: argparse.Namespace) -> None:
    from hub.jobs.default_ratings import run_once

    profile, calendar = _policy(args.policy, args.holiday_table)
    engine = _engine(state, args)
    _require_current(state, args, engine)
    result = _db_call(
        args,
        lambda: run_once(
            engine=engine,
            profile=profile,
            calendar=calendar,
            now=datetime.now(UTC),
            lookback_days=args.lookback_days,
        ),
    )
    if not result.held:
        print(state.text(T["job_busy"]), file=sys.stderr)
        return
    for error in result.errors:
        print(error, file=sys.stderr)
    counts = {k: v for k, v in result.as_json().items() if isinstance(v, int)}
    print(state.text(T["job_done"], **counts))


def _password(state: State, args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(state.text(T["password_prompt"]))
    if getpass.getpass(state.text(T["password_again"])) != first:
        raise HcpError(T["password_mismatch"])
    return first


def _user_admin(state: State, args: argparse.Namespace, fn: Callable[..., Any]) -> None:
    from hub.users.service import UserError

    try:
        _admin(state, args, fn)
    except UserError as e:
        raise HcpError(Text(e.message.zh, e.message.en)) from e


def _add_user(state: State, args: argparse.Namespace) -> None:
    from hub.users.service import add_user

    password = _password(state, args)
    _user_admin(
        state,
        args,
        lambda **kw: add_user(
            username=args.username,
            display_name=args.name,
            role=args.role,
            password=password,
            dept_codes=args.dept,
            **kw,
        ),
    )
    print(state.text(T["user_added"], u=args.username, role=args.role))


def _set_password(state: State, args: argparse.Namespace) -> None:
    from hub.users.service import set_password

    password = _password(state, args)
    _user_admin(
        state, args, lambda **kw: set_password(username=args.username, password=password, **kw)
    )
    print(state.text(T["password_set"], u=args.username))


def _disable_user(state: State, args: argparse.Namespace) -> None:
    from hub.users.service import disable_user

    _user_admin(state, args, lambda **kw: disable_user(username=args.username, **kw))
    print(state.text(T["user_disabled"], u=args.username))


_STATUS = {
    "upcoming": Text("即将超期", "upcoming"),
    "overdue": Text("已超期", "overdue"),
    "unknown": Text("期限未知（日历不含该年份）", "unknown (a year the calendar lacks)"),
}


def _warnings(state: State, args: argparse.Namespace) -> None:
    from hub.users.roles import Role
    from hub.users.service import Principal
    from hub.workflow import service
    from hub.workflow.machine import STATE_ZH, State

    engine = _engine(state, args)
    _require_current(state, args, engine)
    # the operator at the console reads like an auditor (everything, read-only)
    who = Principal("cli", Role.AUDITOR, frozenset())
    now = datetime.now(UTC)

    def run() -> list[Any]:
        with engine.connect() as connection:
            return service.warnings(connection=connection, who=who, now=now)

    shown = 0
    for row in _db_call(args, run):
        if args.dept and row.dept_code != args.dept:
            continue
        name, due, status = service.deadline_state(row, now)
        if status == "none" and row.deadline_error:
            status = "unknown"
        if status not in _STATUS:
            continue
        shown += 1
        print(
            state.text(
                T["warning_line"],
                id=row.id,
                state=STATE_ZH[State(row.state)] if state.lang != "en" else row.state,
                dept=row.dept_code or "—",
                deadline=name,
                status=state.text(_STATUS[status]),
                due=due.isoformat() if due else "—",
            )
        )
    if not shown:
        print(state.text(T["warnings_none"]))


def _sweep(state: State, args: argparse.Namespace) -> None:
    from hub.workflow.service import WorkflowConfig, open_missing

    config = WorkflowConfig(*_policy(args.policy, args.holiday_table))
    engine = _engine(state, args)
    _require_current(state, args, engine)

    def run() -> list[int]:
        with engine.begin() as connection:
            return open_missing(connection=connection, config=config, now=datetime.now(UTC))

    print(state.text(T["swept"], n=len(_db_call(args, run))))


HANDLERS: dict[str, Callable[[State, argparse.Namespace], None]] = {
    "warnings": _warnings,
    "sweep": _sweep,
    "add-user": _add_user,
    "set-password": _set_password,
    "disable-user": _disable_user,
    "migrate": _migrate,
    "serve": _serve,
    "add-hall": _add_hall,
    "issue-token": _issue_token,
    "revoke-token": _revoke_token,
    "openapi": _openapi,
    "report": _report,
    "default-ratings": _default_ratings,
}


def _run(state: State, args: argparse.Namespace) -> int | None:
    HANDLERS[args.hub_command](state, args)
    return None


register("hub", help=T["help"], arguments=_arguments, run=_run)
