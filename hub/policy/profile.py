"""A jurisdiction profile as typed, immutable Python objects.

Strategy: every value the rules let places choose (DOMAIN.md, "Time limits"; the 差评
workflow; "One rating per service") is a field here, filled from a policy file by
``hub.policy.loader`` and never written as a constant in code. The objects also do the small
amount of arithmetic that belongs to the policy: a ``DeadlineRule`` turns an event time into
a ``Deadline`` (last day, due instant, upcoming-warning instant) with the profile's counting
convention and the working-day calendar; ``Deadline.state`` says whether it is pending,
upcoming (超期预警) or overdue. Which event starts which clock is stated on each field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from hub.policy.catalogue import ReasonCatalogue
from hub.policy.codes import Channel, ChannelCodes, Level, LevelCodes
from hub.policy.errors import CodeError
from hub.workdays import (
    DayCount,
    Period,
    WorkCalendar,
    end_of_day,
    local_moment,
    start_of_day,
)


class DeadlineState(StrEnum):
    PENDING = "pending"  # before the upcoming warning
    UPCOMING = "upcoming"  # warning period: 即将超期
    OVERDUE = "overdue"  # 已超期


@dataclass(frozen=True)
class Deadline:
    """A computed deadline. On time means done strictly before ``due_at`` (24:00 China
    Standard Time of ``last_day``); the upcoming warning starts at ``warn_from``."""

    name: str
    last_day: date
    due_at: datetime
    warn_from: datetime

    def state(self, now: datetime) -> DeadlineState:
        local_moment(now)  # refuses a naive datetime (CalendarError), never guesses its zone
        if now >= self.due_at:
            return DeadlineState.OVERDUE
        if now >= self.warn_from:
            return DeadlineState.UPCOMING
        return DeadlineState.PENDING


@dataclass(frozen=True)
class DeadlineRule:
    """A time limit of the 差评 workflow: done ``within`` a period of its starting event;
    warned about from ``warn_before`` (same unit; 0 = on the last day itself)."""

    name: str
    within: Period
    warn_before: Period

    def deadline(
        self, start: date | datetime, *, calendar: WorkCalendar, rule: DayCount
    ) -> Deadline:
        last = calendar.add(start, self.within, rule=rule)
        warn_from = start_of_day(calendar.subtract(last, self.warn_before))
        if isinstance(start, datetime):
            # counting the event day can put the warning day on the event's own day; the
            # warning never starts before the event itself
            warn_from = max(warn_from, start)
        return Deadline(self.name, last, end_of_day(last), warn_from)


@dataclass(frozen=True)
class DefaultRating:
    """No rating ``after`` the service day → the case gets ``level`` (source "default rule",
    channel system default). Counted from the service (case completion) time."""

    after: Period
    level: Level

    def applies_from(
        self, service_at: date | datetime, *, calendar: WorkCalendar, rule: DayCount
    ) -> datetime:
        """The instant from which the default may be given (the period has ended)."""
        return end_of_day(calendar.add(service_at, self.after, rule=rule))


@dataclass(frozen=True)
class RatingRules:
    """How ratings are taken (DOMAIN.md, "One rating per service")."""

    invite_window_seconds: int  # a press counts only this long after the invite
    bad_rating_requires_reason: bool  # a 差评 needs ≥ 1 reason option or a text
    follow_up_ratings: int  # 追评 allowed after rectification feedback (0 or 1)
    reopen_on_unhappy_follow_up: bool  # a 差评 follow-up reopens the work order
    supplementary_window: Period | None  # late rating allowed within this of the service day
    default: DefaultRating | None

    def needs_reason(self, level: Level) -> bool:
        return self.bad_rating_requires_reason and level.is_bad

    def supplementary_until(
        self, service_at: date | datetime, *, calendar: WorkCalendar, rule: DayCount
    ) -> datetime | None:
        """End (exclusive) of the late-rating window, or None if the profile has none."""
        if self.supplementary_window is None:
            return None
        return end_of_day(calendar.add(service_at, self.supplementary_window, rule=rule))


@dataclass(frozen=True)
class Supervision:
    """Supervision settings (DOMAIN.md, the 差评 workflow step 5 and 6)."""

    revisit_sample_percent: int | None  # random revisit of at least this share of 差评
    annual_report_due: tuple[int, int] | None  # (month, day) of the annual 差评 report
    real_name_callback_target_percent: int
    real_name_rectification_target_percent: int


class UploadMode(StrEnum):
    REALTIME = "realtime"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class UploadPolicy:
    mode: UploadMode
    fallback: UploadMode | None  # used where ``mode`` is not possible


@dataclass(frozen=True)
class Profile:
    """One jurisdiction's policy, merged over the profiles it extends."""

    name: str
    version: str
    title_zh: str
    title_en: str
    sources: tuple[str, ...]
    lineage: tuple[tuple[str, str], ...]  # (name, version) from this profile to its root
    files: tuple[str, ...]  # the files read, this profile first, then catalogue
    digest: str  # sha256 over those files' bytes: which exact policy was in force
    day_count: DayCount
    callback: DeadlineRule  # from the 差评 entering the pool (差评入库)
    rectification: DeadlineRule  # from the 差评 entering the pool
    feedback: DeadlineRule  # from the 差评 entering the pool
    report_form: DeadlineRule | None  # from the rectification being done
    rating: RatingRules
    supervision: Supervision
    upload: UploadPolicy
    reasons: ReasonCatalogue
    level_codes: Mapping[str, LevelCodes]
    channel_codes: Mapping[str, ChannelCodes]

    def deadline_rules(self) -> Iterator[DeadlineRule]:
        yield self.callback
        yield self.rectification
        yield self.feedback
        if self.report_form is not None:
            yield self.report_form

    def deadline(
        self, rule: DeadlineRule, start: date | datetime, *, calendar: WorkCalendar
    ) -> Deadline:
        """``rule``'s deadline for an event at ``start``, counted the profile's way."""
        return rule.deadline(start, calendar=calendar, rule=self.day_count)

    def levels(self, system: str) -> LevelCodes:
        try:
            return self.level_codes[system]
        except KeyError:
            raise CodeError(
                "level.no_system",
                f"配置 {self.name} 没有等级编码 {system!r}（可用：{', '.join(self.level_codes)}）",
                f"profile {self.name} has no level coding {system!r} "
                f"(has: {', '.join(self.level_codes)})",
            ) from None

    def channels(self, system: str) -> ChannelCodes:
        try:
            return self.channel_codes[system]
        except KeyError:
            raise CodeError(
                "channel.no_system",
                f"配置 {self.name} 没有渠道编码 {system!r}"
                f"（可用：{', '.join(self.channel_codes)}）",
                f"profile {self.name} has no channel coding {system!r} "
                f"(has: {', '.join(self.channel_codes)})",
            ) from None

    def channel_code(self, system: str, channel: Channel) -> int | str:
        return self.channels(system).encode(channel)
