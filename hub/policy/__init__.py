"""Jurisdiction policies as versioned data, checked on load (DESIGN.md, "Policies as data").

Every value a place may choose (DOMAIN.md, "Time limits", "One rating per service", the 差评
workflow, "Data record"): deadlines and their warnings, the default-rating rule, the late
rating window, the invite window, the reason catalogue, the level and channel code maps: lives
in a TOML profile (``profiles/``) or reason catalogue (``catalogues/``), one named profile per
jurisdiction, extending a shared base. ``PolicyLoader`` reads, merges and checks them and
builds immutable typed objects (``profile.py``); a bad file is a ``PolicyError`` naming the
file, key path and expectation. The canonical ``Level`` and ``Channel`` enums (``codes.py``)
are code, their external numberings are data. Deadline arithmetic uses hub.workdays.
"""

from hub.policy.catalogue import Indicator, ReasonCatalogue, ReasonOption
from hub.policy.codes import (
    CHANNEL_KEYS,
    LEVEL_KEYS,
    Channel,
    ChannelCodes,
    Level,
    LevelCodes,
    LevelOrder,
)
from hub.policy.errors import CodeError, PolicyError
from hub.policy.loader import (
    ALLOWED_DEFAULT_LEVELS,
    CATALOGUES_DIR,
    MAX_EXTENDS_DEPTH,
    MAX_FOLLOW_UPS,
    MAX_INVITE_WINDOW_SECONDS,
    MAX_LIMIT_DAYS,
    MIN_INVITE_WINDOW_SECONDS,
    PROFILES_DIR,
    PolicyLoader,
    load_profile,
    profile_names,
)
from hub.policy.profile import (
    Deadline,
    DeadlineRule,
    DeadlineState,
    DefaultRating,
    Profile,
    RatingRules,
    Supervision,
    UploadMode,
    UploadPolicy,
)
from hub.policy.reader import SCHEMA_VERSION

__all__ = [
    "ALLOWED_DEFAULT_LEVELS",
    "CATALOGUES_DIR",
    "CHANNEL_KEYS",
    "LEVEL_KEYS",
    "MAX_EXTENDS_DEPTH",
    "MAX_FOLLOW_UPS",
    "MAX_INVITE_WINDOW_SECONDS",
    "MAX_LIMIT_DAYS",
    "MIN_INVITE_WINDOW_SECONDS",
    "PROFILES_DIR",
    "SCHEMA_VERSION",
    "Channel",
    "ChannelCodes",
    "CodeError",
    "Deadline",
    "DeadlineRule",
    "DeadlineState",
    "DefaultRating",
    "Indicator",
    "Level",
    "LevelCodes",
    "LevelOrder",
    "PolicyError",
    "PolicyLoader",
    "Profile",
    "RatingRules",
    "ReasonCatalogue",
    "ReasonOption",
    "Supervision",
    "UploadMode",
    "UploadPolicy",
    "load_profile",
    "profile_names",
]
