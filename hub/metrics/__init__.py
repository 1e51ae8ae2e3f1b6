"""Reports for the DOMAIN.md metrics list: per period and per dimension, from stored ratings
and cases (``queries.py``), served as JSON (``views.py``) and by ``hcp hub report``."""

from hub.metrics.queries import (
    GROUP_COLUMNS,
    Dimension,
    MetricsError,
    MetricsRow,
    Period,
    PeriodKind,
    Report,
    excluded_ratings,
    infer_period,
    parse_period,
    rate,
    report,
)

__all__ = [
    "GROUP_COLUMNS",
    "Dimension",
    "MetricsError",
    "MetricsRow",
    "Period",
    "PeriodKind",
    "Report",
    "excluded_ratings",
    "infer_period",
    "parse_period",
    "rate",
    "report",
]
