"""What a hall sends and what it gets back (docs/hub-api.md): pydantic models and limits.

These models are the contract: the OpenAPI document (docs/hub-api.openapi.json) is generated
from them. Each item of a batch is validated on its own (hub.ingest.service), so these models
describe one item; a failure becomes that item's rejection, never the batch's.

Types are strict where JSON is unambiguous (a level is an integer, not "3"; a flag is a
name, not a bit) and timestamps must carry an offset. Unknown fields are refused: a misspelt
field name (``case_number`` for ``case_no``) would otherwise lose data silently; the hub is
upgraded before the agents when fields are added.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from hub.policy.codes import Channel  # one enum for the API and the policy code maps
from hub.registry.codes import CodeError, check_uscc

# --- limits, each with its reason (docs/hub-api.md, "Limits") ---
MAX_BODY_BYTES = 4 * 1024 * 1024  # 1,000 ratings are ~0.6 MB of JSON; more is a mistake
MAX_DECODED_BYTES = 16 * 1024 * 1024  # gunzip stops here: no gzip bomb gets further
MAX_ITEMS = 1000  # one batch = one transaction: tens of ms, so no long write locks
TEXT_MAX = 500  # provincial interfaces take a comment of a few hundred characters
REASONS_MAX = 16  # a device attaches at most 4; the phone page shows one catalogue group
ID_MAX = 32  # the protocol's device and hall ids (protocol/messages.py ID_MAX)
CODE_MAX = 64  # case numbers, 事项 codes, origin and event ids
NAME_MAX = 200  # 事项 names
MASKED_MAX = 32  # masked names and phone numbers
SHORT_MAX = 24  # board and firmware names (protocol/messages.py)
COUNTERS_MAX = 32  # device error counters per health sample
U32 = 0xFFFFFFFF  # device sequence numbers are uint32 on the wire
U63 = 2**63 - 1  # BIGINT columns

Id = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=ID_MAX)]
Code = Annotated[StrictStr, Field(min_length=1, max_length=CODE_MAX)]
OriginId = Annotated[
    StrictStr, Field(pattern=r"^[A-Za-z0-9_.:-]+$", min_length=1, max_length=CODE_MAX)
]


def _hcp_error(zh: str, en: str) -> PydanticCustomError:
    # Type "hcp": hub.ingest.errors shows our own zh-CN / en text for it.
    return PydanticCustomError("hcp", "{en}", {"zh": zh, "en": en})


def _require_text_time(value: Any) -> Any:
    # JSON numbers would otherwise be taken as Unix times; the contract says RFC 3339 text.
    if not isinstance(value, str):
        raise _hcp_error("时间必须是带时区偏移的 RFC 3339 字符串", "a time is an RFC 3339 string")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_text_time)]


@functools.lru_cache(maxsize=4096)  # a hall's batches name the same few departments
def _uscc(value: str) -> str:
    try:
        return check_uscc(value)
    except CodeError as e:
        raise _hcp_error(e.zh, e.en) from e


DeptCode = Annotated[
    StrictStr,
    Field(min_length=18, max_length=18, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$"),
    AfterValidator(_uscc),
]


# Masking is checked by pattern (in pydantic-core, no Python call per item); the messages
# for these two fields are hub.ingest.errors.FIELD_MESSAGES["name_masked"/"phone_masked"].
MASKED_NAME_PATTERN = r"\*"  # 张*明, 张**: at least one character hidden
MASKED_PHONE_PATTERN = r"^[0-9+ -]*(\*[0-9+ -]*){4,}$"  # 138****5678: four digits hidden


class Source(StrEnum):
    """Where a rating came from (DOMAIN.md: every rating says so)."""

    DEVICE_PRESS = "device_press"
    QR_PHONE = "qr_phone"
    DEFAULT_RULE = "default_rule"
    IMPORT = "import"


class Flag(StrEnum):
    """Device RATING flags by name (docs/protocol.md); stored as the protocol's bits."""

    REPEAT = "repeat"
    UNSOLICITED = "unsolicited"
    PAUSED = "paused"
    REASON_TIMEOUT = "reason_timeout"
    REASON_SKIPPED = "reason_skipped"
    OFFLINE = "offline"


# protocol/messages.py FLAG_*; the hub does not import protocol (DESIGN.md), so they are
# repeated here and tests/hub/test_schema.py checks they agree.
FLAG_BITS: dict[Flag, int] = {
    Flag.REPEAT: 0x01,
    Flag.UNSOLICITED: 0x02,
    Flag.PAUSED: 0x04,
    Flag.REASON_TIMEOUT: 0x08,
    Flag.REASON_SKIPPED: 0x10,
    Flag.OFFLINE: 0x20,
}


class UserType(StrEnum):
    """userProp: 1 person, 2 legal entity."""

    PERSON = "person"
    LEGAL_ENTITY = "legal_entity"


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MaskedName = Annotated[StrictStr, Field(max_length=MASKED_MAX, pattern=MASKED_NAME_PATTERN)]
MaskedPhone = Annotated[StrictStr, Field(max_length=MASKED_MAX, pattern=MASKED_PHONE_PATTERN)]


class Rater(_Item):
    """The rater (or a case's applicant), masked. Real-name rating is encouraged, not required."""

    name_masked: MaskedName | None = None
    phone_masked: MaskedPhone | None = None
    real_name: StrictBool = False
    user_type: UserType = UserType.PERSON


class RatingItem(_Item):
    """One rating. Identity: (device_id, seq) for device presses, else origin_id."""

    source: Source
    device_id: Id | None = None
    seq: Annotated[StrictInt, Field(ge=0, le=U32)] | None = None
    origin_id: OriginId | None = None
    hall_id: Id
    window_id: Id | None = None
    staff_id: Id | None = None
    case_no: Code | None = Field(
        default=None, description="办件编号 (projectNo); null if unsolicited"
    )
    item_code: Code | None = None
    item_name: Annotated[StrictStr, Field(max_length=NAME_MAX)] | None = None
    dept_code: DeptCode | None = None
    level: Annotated[StrictInt, Field(ge=1, le=5)] = Field(
        description="GB/T 39046-2020 A.8: 1 非常满意, 2 满意, 3 基本满意, 4 不满意, 5 非常不满意"
    )
    reasons: Annotated[
        list[Annotated[StrictInt, Field(ge=0, le=0xFFFF)]],
        Field(max_length=REASONS_MAX, description="distinct codes"),
    ] = []
    text: Annotated[StrictStr, Field(max_length=TEXT_MAX)] | None = None
    channel: Channel
    pf: Annotated[StrictInt, Field(ge=1, le=99)] | None = None
    flags: Annotated[list[Flag], Field(max_length=len(Flag), description="distinct names")] = []
    rated_at: Timestamp
    invited_at: Timestamp | None = None
    assess_number: Annotated[StrictInt, Field(ge=1, le=2)] = 1
    rater: Rater | None = None


class RatingBatch(BaseModel):
    """POST /api/v1/ingest/ratings. Items are validated one by one."""

    items: Annotated[list[RatingItem], Field(max_length=MAX_ITEMS)]


class CaseEventKind(StrEnum):
    CASE_OPENED = "case_opened"
    CASE_FINISHED = "case_finished"
    CASE_CANCELLED = "case_cancelled"
    STAFF_SIGNED_IN = "staff_signed_in"
    STAFF_SIGNED_OUT = "staff_signed_out"
    WINDOW_PAUSED = "window_paused"
    WINDOW_RESUMED = "window_resumed"


# What each kind needs besides the common fields (docs/hub-api.md, "Case events").
EVENT_REQUIRES: dict[CaseEventKind, tuple[str, ...]] = {
    CaseEventKind.CASE_OPENED: ("case_no",),
    CaseEventKind.CASE_FINISHED: ("case_no",),
    CaseEventKind.CASE_CANCELLED: ("case_no",),
    CaseEventKind.STAFF_SIGNED_IN: ("window_id", "staff_id"),
    CaseEventKind.STAFF_SIGNED_OUT: ("window_id", "staff_id"),
    CaseEventKind.WINDOW_PAUSED: ("window_id",),
    CaseEventKind.WINDOW_RESUMED: ("window_id",),
}


class CaseEvent(_Item):
    """One event from the hall's queue / acceptance systems, as the agent saw it."""

    event_id: OriginId
    kind: CaseEventKind
    hall_id: Id
    occurred_at: Timestamp
    window_id: Id | None = None
    staff_id: Id | None = None
    device_id: Id | None = None
    case_no: Code | None = None
    item_code: Code | None = None
    item_name: Annotated[StrictStr, Field(max_length=NAME_MAX)] | None = None
    dept_code: DeptCode | None = None
    applicant: Rater | None = None
    invited: StrictBool | None = None


class CaseEventBatch(BaseModel):
    """POST /api/v1/ingest/case-events. Items are validated one by one."""

    items: Annotated[list[CaseEvent], Field(max_length=MAX_ITEMS)]


class DeviceKind(StrEnum):
    EVALUATOR = "evaluator"
    QR = "qr"  # the QR display unit (the names of hardware/ and the agent registry)
    COMBINED = "combined"


class Link(StrEnum):
    SERIAL = "serial"
    MQTT = "mqtt"


Count = Annotated[StrictInt, Field(ge=0, le=U63)]
CounterName = Annotated[StrictStr, Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=32)]


class DeviceHealth(_Item):
    """One health sample of one device, taken by the agent."""

    device_id: Id
    hall_id: Id
    sampled_at: Timestamp
    online: StrictBool
    window_id: Id | None = None
    kind: DeviceKind | None = None
    board: Annotated[StrictStr, Field(max_length=SHORT_MAX)] | None = None
    firmware: Annotated[StrictStr, Field(max_length=SHORT_MAX)] | None = None
    last_seen_at: Timestamp | None = None
    uptime_s: Count | None = None
    free_heap: Count | None = None
    outbox_depth: Count | None = None
    outbox_dropped: Count | None = None
    config_version: Count | None = None
    link: Link | None = None
    counters: Annotated[dict[CounterName, Count], Field(max_length=COUNTERS_MAX)] = {}


class DeviceHealthBatch(BaseModel):
    """POST /api/v1/ingest/device-health. Items are validated one by one."""

    items: Annotated[list[DeviceHealth], Field(max_length=MAX_ITEMS)]


# --- answers ---


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine code, e.g. rating.level")
    message: str = Field(description="简体中文说明")
    message_en: str = Field(description="the same in English")
    field: str | None = None
    limit: int | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ItemResult(BaseModel):
    index: int = Field(description="position of the item in the request")
    key: str | None = Field(description="the item's identity, when it could be read")
    status: Literal["accepted", "duplicate", "rejected"]
    error: ErrorDetail | None = None


class IngestResponse(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


class Limits(BaseModel):
    max_body_bytes: int
    max_decoded_bytes: int
    max_items: int
    text_max: int
    reasons_max: int


class WhoAmI(BaseModel):
    hall_id: str
    token_id: str
    sources: list[Source] = Field(description="rating sources this credential may send")
    limits: Limits


class Health(BaseModel):
    status: Literal["ok"]
    database: str
