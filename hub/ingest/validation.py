"""One item in, one validated model or one ``ItemError`` out, with zh-CN / en messages.

pydantic reports in English and by error type; the agent's operators read Chinese. So the
first error of an item becomes: code ``<prefix>.<top-level field>`` (``rating.level``,
``event.case_no``; ``<prefix>.unknown_field`` for a field the contract does not have), the
field path, a Chinese message built from the error type and the field's Chinese name, and
pydantic's own English. Rules that span fields (what a source or an event kind requires)
are checked here too, after the model, so every rejection comes from one place.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hub.errors import ItemError, Msg
from hub.ingest.models import EVENT_REQUIRES, CaseEvent, Flag, RatingItem, Source

M = TypeVar("M", bound=BaseModel)

FIELD_ZH = {
    "source": "来源",
    "device_id": "设备编号",
    "seq": "序号",
    "origin_id": "来源编号",
    "hall_id": "大厅编号",
    "window_id": "窗口编号",
    "staff_id": "工作人员账号",
    "case_no": "办件编号",
    "item_code": "事项编码",
    "item_name": "事项名称",
    "dept_code": "部门统一社会信用代码",
    "level": "评价等级",
    "reasons": "评价选项",
    "text": "文字评价",
    "channel": "评价渠道",
    "pf": "省级渠道代码",
    "flags": "标志",
    "rated_at": "评价时间",
    "invited_at": "邀评时间",
    "assess_number": "评价次数",
    "rater": "评价人",
    "name_masked": "脱敏姓名",
    "phone_masked": "脱敏电话",
    "real_name": "实名标志",
    "user_type": "评价人类型",
    "event_id": "事件编号",
    "kind": "事件类型",
    "occurred_at": "发生时间",
    "applicant": "申请人",
    "invited": "邀评标志",
    "sampled_at": "采样时间",
    "online": "在线状态",
    "board": "主板",
    "firmware": "固件版本",
    "last_seen_at": "最后通信时间",
    "uptime_s": "运行时长",
    "free_heap": "空闲内存",
    "outbox_depth": "待发队列长度",
    "outbox_dropped": "丢弃计数",
    "config_version": "配置版本",
    "link": "连接方式",
    "counters": "计数器",
}

# Messages that say more than the error type can (the field's rule, in both languages).
FIELD_MESSAGES = {
    "level": Msg(
        "评价等级必须是 1…5 的整数（1=非常满意 … 5=非常不满意）",
        "level must be an integer 1…5 (1 = very satisfied … 5 = very dissatisfied)",
    ),
    "name_masked": Msg(
        "姓名必须脱敏（含 *，例如 张*明，最多 32 个字符）；中心平台不接收未脱敏的个人信息",
        "a name must be masked (contain *, e.g. 张*明; at most 32 characters); "
        "the hub refuses unmasked personal data",
    ),
    "phone_masked": Msg(
        "电话号码必须脱敏（至少 4 个 *，例如 138****5678）；中心平台不接收未脱敏的个人信息",
        "a phone number must be masked (at least four *, e.g. 138****5678); "
        "the hub refuses unmasked personal data",
    ),
}

# Codes whose meaning is not "this field is wrong".
UNMASKED_FIELDS = ("name_masked", "phone_masked")

_TYPE_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不是约定的字段",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "bool_type": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "string_too_short": "不能为空",
    "string_too_long": "太长",
    "too_long": "项数太多",
    "too_short": "项数太少",
    "string_pattern_mismatch": "格式不对",
    "greater_than_equal": "太小",
    "less_than_equal": "太大",
    "timezone_aware": "必须带时区偏移（例如 +08:00）",
    "datetime_parsing": "不是 RFC 3339 时间",
    "datetime_from_date_parsing": "不是 RFC 3339 时间",
    "datetime_type": "不是 RFC 3339 时间",
}


def _limit(ctx: dict[str, Any] | None) -> int | None:
    if not ctx:
        return None
    for name in ("max_length", "le", "ge", "min_length"):
        value = ctx.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def item_error(prefix: str, error: ValidationError) -> ItemError:
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    top = loc[0] if loc else "item"
    path = ".".join(loc) or None
    leaf = next((part for part in reversed(loc) if not part.isdigit()), top)
    kind = first["type"]
    ctx = first.get("ctx")
    en = f"{path}: {first['msg']}" if path else first["msg"]
    if kind == "extra_forbidden":
        return ItemError(
            f"{prefix}.unknown_field",
            Msg(
                f"{path} 不是约定的字段（见 docs/hub-api.md）",
                f"{path} is not a field of the contract",
            ),
            field=path,
        )
    if kind == "hcp" and ctx:
        message = Msg(str(ctx["zh"]), f"{path}: {ctx['en']}")
    elif leaf in FIELD_MESSAGES and kind != "missing":
        message = FIELD_MESSAGES[leaf]
    else:
        reason = _TYPE_ZH.get(kind, "无效")
        limit = _limit(ctx)
        if limit is not None and kind in ("string_too_long", "too_long", "less_than_equal"):
            reason += f"（上限 {limit}）"
        elif limit is not None and kind == "greater_than_equal":
            reason += f"（下限 {limit}）"
        message = Msg(f"{FIELD_ZH.get(leaf, leaf)}（{path}）{reason}", en)
    code = f"{prefix}.{top}"
    if leaf in UNMASKED_FIELDS and kind == "string_pattern_mismatch":
        code = f"{prefix}.rater_unmasked"
    return ItemError(code, message, field=path, limit=_limit(ctx))


def validate(model: type[M], prefix: str, raw: object) -> M:
    if not isinstance(raw, dict):
        raise ItemError(
            "item.invalid",
            Msg("每一项都必须是 JSON 对象", "each item must be a JSON object"),
        )
    try:
        # The model's own core validator, as model_validate calls it: that Python wrapper
        # (keyword defaults, checks of options not used here) cost ~1 us per item, an
        # eighth of the validation itself.
        item: M = model.__pydantic_validator__.validate_python(raw)
        return item
    except ValidationError as e:
        raise item_error(prefix, e) from None


def _required(prefix: str, field: str, why_zh: str, why_en: str) -> ItemError:
    return ItemError(
        f"{prefix}.{field}",
        Msg(
            f"{why_zh}必须有{FIELD_ZH.get(field, field)}（{field}）",
            f"{why_en} requires {field}",
        ),
        field=field,
    )


def _distinct(prefix: str, field: str, values: list[Any]) -> None:
    # Checked here rather than by a pydantic validator: a Python call from pydantic-core
    # per list per item costs more than this whole check.
    if len(values) > 1 and len(set(values)) != len(values):
        raise ItemError(
            f"{prefix}.{field}",
            Msg(
                f"{FIELD_ZH.get(field, field)}（{field}）中有重复项",
                f"{field}: the list repeats an entry",
            ),
            field=field,
        )


def check_rating(item: RatingItem, *, hall_id: str, sources: frozenset[Source]) -> None:
    """Rules across fields (docs/hub-api.md, "Rating items")."""
    _distinct("rating", "reasons", item.reasons)
    _distinct("rating", "flags", item.flags)
    if item.source not in sources:
        raise ItemError(
            "rating.source_not_allowed",
            Msg(
                f"此凭据不能提交来源为 {item.source.value} 的评价（只能提交："
                f"{'、'.join(sorted(s.value for s in sources))}）",
                f"this credential may not send ratings from source {item.source.value} "
                f"(allowed: {', '.join(sorted(s.value for s in sources))})",
            ),
            field="source",
        )
    if item.hall_id != hall_id:
        raise ItemError(
            "rating.hall_mismatch",
            Msg(
                f"评价属于大厅 {item.hall_id}，但凭据属于大厅 {hall_id}",
                f"the rating is for hall {item.hall_id} but the credential is hall {hall_id}'s",
            ),
            field="hall_id",
        )
    if item.source is Source.DEVICE_PRESS:
        for field in ("device_id", "seq"):
            if getattr(item, field) is None:
                raise _required("rating", field, "按键评价", "a device press")
        # A device not (yet) bound to a window can only send unsolicited presses: they are
        # kept as evidence (self-rating signals) and never counted as case ratings.
        if item.window_id is None and Flag.UNSOLICITED not in item.flags:
            raise _required("rating", "window_id", "非主动按键评价", "a solicited device press")
        if item.origin_id is not None:
            raise ItemError(
                "rating.origin_id",
                Msg(
                    "按键评价以 (device_id, seq) 标识，不能带 origin_id",
                    "a device press is identified by (device_id, seq) and has no origin_id",
                ),
                field="origin_id",
            )
    elif item.origin_id is None:
        raise _required(
            "rating", "origin_id", f"来源 {item.source.value} 的评价", item.source.value
        )


def check_event(item: CaseEvent, *, hall_id: str) -> None:
    if item.hall_id != hall_id:
        raise ItemError(
            "event.hall_mismatch",
            Msg(
                f"事件属于大厅 {item.hall_id}，但凭据属于大厅 {hall_id}",
                f"the event is for hall {item.hall_id} but the credential is hall {hall_id}'s",
            ),
            field="hall_id",
        )
    for field in EVENT_REQUIRES[item.kind]:
        if getattr(item, field) is None:
            raise _required("event", field, f"事件 {item.kind.value} ", f"event {item.kind.value}")


def check_hall(prefix: str, item_hall: str, hall_id: str) -> None:
    if item_hall != hall_id:
        raise ItemError(
            f"{prefix}.hall_mismatch",
            Msg(
                f"数据属于大厅 {item_hall}，但凭据属于大厅 {hall_id}",
                f"the item is for hall {item_hall} but the credential is hall {hall_id}'s",
            ),
            field="hall_id",
        )
