"""The canonical rating level and channel, and the code maps that translate them at the edges.

Strategy (DOMAIN.md, "Rating levels"): the hub has one internal ``Level`` enum whose values are
the GB/T 39046-2020 Annex A.8 codes (1 = 非常满意 … 5 = 非常不满意). External numberings are
never stored; they are *derived* from the enum by a ``LevelCodes`` map that a jurisdiction
profile declares as data: which end comes first, and the first code. GB/T 39046 is
"very satisfied first from 1"; the provincial ``satisfaction`` field is "very dissatisfied
first from 1". Channels work the same way: the canonical ``Channel`` enum (the names of
docs/hub-api.md) and per-profile ``ChannelCodes`` maps (GB/T 39046 names; the provincial
``pf`` numbers, which differ between provinces). Conversion is explicit at every import and
export edge, and a code a map does not define is a ``CodeError``, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType

from hub.policy.errors import CodeError

LEVEL_COUNT = 5


class Level(IntEnum):
    """A rating level; the value is the GB/T 39046-2020 (Annex A.8) code."""

    VERY_SATISFIED = 1
    SATISFIED = 2
    BASICALLY_SATISFIED = 3
    DISSATISFIED = 4
    VERY_DISSATISFIED = 5

    @property
    def is_bad(self) -> bool:
        """不满意 and 非常不满意 are 差评 (DOMAIN.md, "Rating levels")."""
        return self >= Level.DISSATISFIED

    @property
    def key(self) -> str:
        """The name policy files use: ``basically_satisfied``."""
        return self.name.lower()

    @property
    def zh(self) -> str:
        return _LEVEL_ZH[self]

    @property
    def en(self) -> str:
        return _LEVEL_EN[self]

    @classmethod
    def from_key(cls, key: str) -> Level:
        try:
            return cls[key.upper()]
        except KeyError:
            raise CodeError(
                "level.unknown_key",
                f"未知的评价等级 {key!r}（可用：{', '.join(LEVEL_KEYS)}）",
                f"unknown level {key!r} (expected one of: {', '.join(LEVEL_KEYS)})",
            ) from None


_LEVEL_ZH = {
    Level.VERY_SATISFIED: "非常满意",
    Level.SATISFIED: "满意",
    Level.BASICALLY_SATISFIED: "基本满意",
    Level.DISSATISFIED: "不满意",
    Level.VERY_DISSATISFIED: "非常不满意",
}
_LEVEL_EN = {
    Level.VERY_SATISFIED: "very satisfied",
    Level.SATISFIED: "satisfied",
    Level.BASICALLY_SATISFIED: "basically satisfied",
    Level.DISSATISFIED: "dissatisfied",
    Level.VERY_DISSATISFIED: "very dissatisfied",
}
LEVEL_KEYS = tuple(level.key for level in Level)


class LevelOrder(StrEnum):
    """Which end of the scale an external numbering starts with."""

    VERY_SATISFIED_FIRST = "very_satisfied_first"  # GB/T 39046-2020 A.8
    VERY_DISSATISFIED_FIRST = "very_dissatisfied_first"  # provincial `satisfaction`


@dataclass(frozen=True)
class LevelCodes:
    """An external level numbering, derived from ``Level``: five consecutive codes from
    ``first_code`` in ``order``."""

    system: str
    order: LevelOrder
    first_code: int

    def encode(self, level: Level) -> int:
        rank = level - 1 if self.order is LevelOrder.VERY_SATISFIED_FIRST else LEVEL_COUNT - level
        return self.first_code + rank

    def decode(self, code: int) -> Level:
        rank = (
            code - self.first_code if isinstance(code, int) and not isinstance(code, bool) else -1
        )
        if not 0 <= rank < LEVEL_COUNT:
            last = self.first_code + LEVEL_COUNT - 1
            raise CodeError(
                "level.unknown_code",
                f"{self.system} 评价等级代码 {code!r} 无效（应为 {self.first_code}–{last}）",
                f"{self.system} level code {code!r} is not valid "
                f"(expected {self.first_code}–{last})",
            )
        return Level(
            rank + 1 if self.order is LevelOrder.VERY_SATISFIED_FIRST else LEVEL_COUNT - rank
        )


class Channel(StrEnum):
    """Where a rating was given: the GB/T 39046-2020 评价渠道 plus the system default rating
    (docs/hub-api.md, ``channel``)."""

    PC = "pc"
    MOBILE = "mobile"
    QR_CODE = "qr_code"
    HALL_TABLET = "hall_tablet"
    HALL_TERMINAL = "hall_terminal"
    PHONE = "phone"
    SMS = "sms"
    SYSTEM_DEFAULT = "system_default"

    @property
    def zh(self) -> str:
        return _CHANNEL_ZH[self]

    @property
    def en(self) -> str:
        return _CHANNEL_EN[self]


_CHANNEL_ZH = {
    Channel.PC: "PC端",
    Channel.MOBILE: "移动服务端",
    Channel.QR_CODE: "二维码",
    Channel.HALL_TABLET: "政务大厅平板电脑",
    Channel.HALL_TERMINAL: "政务大厅其他终端",
    Channel.PHONE: "电话",
    Channel.SMS: "短信",
    Channel.SYSTEM_DEFAULT: "系统默认",
}
_CHANNEL_EN = {
    Channel.PC: "PC",
    Channel.MOBILE: "mobile",
    Channel.QR_CODE: "QR code",
    Channel.HALL_TABLET: "service hall tablet",
    Channel.HALL_TERMINAL: "other service hall terminal",
    Channel.PHONE: "telephone",
    Channel.SMS: "SMS",
    Channel.SYSTEM_DEFAULT: "system default",
}
CHANNEL_KEYS = tuple(channel.value for channel in Channel)

ChannelCode = int | str


@dataclass(frozen=True)
class ChannelCodes:
    """An external channel coding (one value per channel; a channel may be absent)."""

    system: str
    codes: Mapping[Channel, ChannelCode]

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", MappingProxyType(dict(self.codes)))
        object.__setattr__(self, "_reverse", {code: ch for ch, code in self.codes.items()})

    def encode(self, channel: Channel) -> ChannelCode:
        try:
            return self.codes[channel]
        except KeyError:
            raise CodeError(
                "channel.no_code",
                f"渠道“{channel.zh}”在 {self.system} 编码中没有代码",
                f"channel {channel.value!r} has no code in the {self.system} coding",
            ) from None

    def decode(self, code: ChannelCode) -> Channel:
        reverse: dict[ChannelCode, Channel] = self.__dict__["_reverse"]
        if isinstance(code, bool) or code not in reverse:
            known = ", ".join(repr(c) for c in self.codes.values())
            raise CodeError(
                "channel.unknown_code",
                f"{self.system} 渠道代码 {code!r} 无效（可用：{known}）",
                f"{self.system} channel code {code!r} is not defined (known: {known})",
            )
        return reverse[code]
