"""The canonical Level and Channel, and their external code maps, both ways for every value
(DOMAIN.md, "Rating levels": one canonical enum, explicit conversion, tested both ways)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.policy import (
    CHANNEL_KEYS,
    LEVEL_KEYS,
    Channel,
    ChannelCodes,
    CodeError,
    Level,
    LevelCodes,
    LevelOrder,
    load_profile,
    profile_names,
)

SHIPPED = [name for name in profile_names() if name != "base"]

GBT_39046 = {  # GB/T 39046-2020 Annex A.8
    1: "非常满意",
    2: "满意",
    3: "基本满意",
    4: "不满意",
    5: "非常不满意",
}
SATISFACTION = {  # provincial `satisfaction`
    1: "非常不满意",
    2: "不满意",
    3: "基本满意",
    4: "满意",
    5: "非常满意",
}


def test_level_enum_is_gbt_39046_order() -> None:
    assert [level.name for level in Level] == [
        "VERY_SATISFIED",
        "SATISFIED",
        "BASICALLY_SATISFIED",
        "DISSATISFIED",
        "VERY_DISSATISFIED",
    ]
    assert {level.value: level.zh for level in Level} == GBT_39046
    assert [level.is_bad for level in Level] == [False, False, False, True, True]
    assert LEVEL_KEYS == (
        "very_satisfied",
        "satisfied",
        "basically_satisfied",
        "dissatisfied",
        "very_dissatisfied",
    )
    assert Level.from_key("basically_satisfied") is Level.BASICALLY_SATISFIED
    assert all(level.en for level in Level)
    with pytest.raises(CodeError):
        Level.from_key("great")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("level", list(Level))
def test_level_codes_both_ways_in_every_profile(name: str, level: Level) -> None:
    profile = load_profile(name)
    gbt = profile.levels("gbt39046")
    satisfaction = profile.levels("satisfaction")
    # derived from the one canonical enum
    assert gbt.encode(level) == level.value
    assert satisfaction.encode(level) == 6 - level.value
    # and the labels are right on each side
    assert GBT_39046[gbt.encode(level)] == level.zh
    assert SATISFACTION[satisfaction.encode(level)] == level.zh
    # both ways
    assert gbt.decode(gbt.encode(level)) is level
    assert satisfaction.decode(satisfaction.encode(level)) is level
    assert gbt.decode(level.value) is level
    assert satisfaction.decode(6 - level.value) is level


@pytest.mark.parametrize("code", [0, 6, -1, True, "1", None, 1.0])
def test_unknown_level_codes_are_refused(code: object) -> None:
    codes = LevelCodes("satisfaction", LevelOrder.VERY_DISSATISFIED_FIRST, 1)
    with pytest.raises(CodeError) as caught:
        codes.decode(code)  # type: ignore[arg-type]
    assert caught.value.code == "level.unknown_code"
    assert "satisfaction" in caught.value.en and "1–5" in caught.value.en


@given(st.sampled_from(list(LevelOrder)), st.integers(min_value=0, max_value=9999))
def test_any_declared_numbering_round_trips(order: LevelOrder, first: int) -> None:
    codes = LevelCodes("x", order, first)
    encoded = [codes.encode(level) for level in Level]
    assert sorted(encoded) == list(range(first, first + 5))
    for level in Level:
        assert codes.decode(codes.encode(level)) is level
    best_first = order is LevelOrder.VERY_SATISFIED_FIRST
    assert codes.encode(Level.VERY_SATISFIED) == (first if best_first else first + 4)


def test_channel_enum_matches_the_hub_api() -> None:
    # docs/hub-api.md, `channel` values
    assert CHANNEL_KEYS == (
        "pc",
        "mobile",
        "qr_code",
        "hall_tablet",
        "hall_terminal",
        "phone",
        "sms",
        "system_default",
    )
    assert all(channel.zh and channel.en for channel in Channel)


GBT_CHANNEL_NAMES = {
    Channel.PC: "PC端",
    Channel.MOBILE: "移动服务端",
    Channel.QR_CODE: "二维码",
    Channel.HALL_TABLET: "政务大厅平板电脑",
    Channel.HALL_TERMINAL: "政务大厅其他终端",
    Channel.PHONE: "电话",
    Channel.SMS: "短信",
}
TYPICAL_PF = {
    Channel.PC: 1,
    Channel.MOBILE: 2,
    Channel.QR_CODE: 3,
    Channel.HALL_TABLET: 4,
    Channel.HALL_TERMINAL: 5,
    Channel.SMS: 6,
    Channel.SYSTEM_DEFAULT: 7,
}


@pytest.mark.parametrize("name", SHIPPED)
def test_channel_maps_both_ways_in_every_profile(name: str) -> None:
    profile = load_profile(name)
    gbt = profile.channels("gbt39046")
    pf = profile.channels("pf")
    assert dict(gbt.codes) == GBT_CHANNEL_NAMES
    assert dict(pf.codes) == TYPICAL_PF
    for channel, label in GBT_CHANNEL_NAMES.items():
        assert gbt.encode(channel) == label
        assert gbt.decode(label) is channel
    for channel, code in TYPICAL_PF.items():
        assert pf.encode(channel) == code
        assert pf.decode(code) is channel
        assert profile.channel_code("pf", channel) == code
    # the typical pf numbering has no code for telephone, GB/T none for a system default
    with pytest.raises(CodeError) as caught:
        pf.encode(Channel.PHONE)
    assert caught.value.code == "channel.no_code"
    with pytest.raises(CodeError):
        gbt.encode(Channel.SYSTEM_DEFAULT)


@pytest.mark.parametrize("code", [0, 8, "1", True, None])
def test_unknown_channel_codes_are_refused(code: object) -> None:
    pf = load_profile("ningbo").channels("pf")
    with pytest.raises(CodeError) as caught:
        pf.decode(code)  # type: ignore[arg-type]
    assert caught.value.code == "channel.unknown_code"


def test_unknown_code_systems_are_refused() -> None:
    profile = load_profile("ningbo")
    with pytest.raises(CodeError) as caught:
        profile.levels("gb2000")
    assert caught.value.code == "level.no_system"
    with pytest.raises(CodeError) as caught:
        profile.channels("channel")
    assert caught.value.code == "channel.no_system"


def test_channel_codes_are_read_only() -> None:
    codes = ChannelCodes("x", {Channel.PC: 1})
    with pytest.raises(TypeError):
        codes.codes[Channel.SMS] = 2  # type: ignore[index]
